from __future__ import annotations

from datetime import datetime, timezone

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup import exact as dedup
from newsstream.dedup.exact import dedup_key, mark_duplicate
from newsstream.enrich.item import enrich

T0 = datetime(2026, 11, 25, 20, 35, tzinfo=timezone.utc)


def article(id_: str, title: str, body: str) -> RawArticle:
    return RawArticle(id=id_, source="s", title=title, body=body, fetched_at=T0)


def ticker(id_: str, text: str, attribution: str | None = "الخارجية التركية") -> RawTickerItem:
    return RawTickerItem(id=id_, source="s", time="22:35", published_at=T0, text=text,
                         attribution=attribution, thread_id="th", fetched_at=T0)


def test_enrichment_keeps_the_original_and_adds_language_hash_and_counts() -> None:
    raw = article("a_1", "عنوان", "أكّد وزير الخارجية أنّ المحادثات كانت بنّاءة ومثمرة للغاية.")
    enriched = enrich(raw, T0)
    assert enriched.raw == raw  # untouched
    e = enriched.enrichment
    assert e.language == "ar" and e.language_confidence > 0.5
    assert "ّ" not in e.normalized_text and e.normalized_text.startswith("اكد")
    assert e.word_count == 9
    assert e.duplicate_of is None and e.processed_at == T0


def test_republished_body_under_another_headline_has_the_same_content_hash() -> None:
    first = enrich(article("a_1", "عنوان أول", "أكّد الوزيـر أنّ الاتفاق نهائي"), T0)
    copy = enrich(article("a_2", "عنوان آخر تماماً", "أكد الوزير أن الاتفاق نهائي"), T0)
    other = enrich(article("a_3", "عنوان أول", "نفى الوزير أن الاتفاق نهائي"), T0)
    assert dedup_key(first) == dedup_key(copy) != dedup_key(other)


def test_ticker_content_ignores_the_attribution_but_never_matches_an_article() -> None:
    a = enrich(ticker("t_1", "إسرائيل تلعب دور المزعزع"), T0)
    b = enrich(ticker("t_2", "إسرائيل تلعب دور المزعزع", attribution="مصدر"), T0)
    art = enrich(article("a_1", "", "إسرائيل تلعب دور المزعزع"), T0)
    assert dedup_key(a) == dedup_key(b)
    assert a.enrichment.content_hash == art.enrichment.content_hash and dedup_key(a) != dedup_key(art)


def test_english_is_detected_too() -> None:
    e = enrich(article("a_1", "Port expansion", "The port authority approved a second container terminal."), T0)
    assert e.enrichment.language == "en"


def test_mark_duplicate_never_points_an_item_at_itself() -> None:
    e = enrich(ticker("t_1", "نص"), T0)
    assert mark_duplicate(e, None) is e
    assert mark_duplicate(e, "t_1") is e
    marked = mark_duplicate(e, "t_0")
    assert marked.enrichment.duplicate_of == "t_0" and e.enrichment.duplicate_of is None
    assert (marked.enrichment.duplicate_kind, marked.enrichment.duplicate_similarity) == ("exact", 1.0)


def test_first_item_claims_the_key_and_later_ones_are_duplicates_of_it() -> None:
    state: dict[str, object] = {}
    verdict, claimed = dedup.check_and_claim(state, "k", "a_1", partition=3, now=100.0, ttl_s=60)
    assert verdict == dedup.Verdict(None, True) and claimed == dedup.FirstSeen("a_1", 100.0, 3)
    assert state["k"] == ["a_1", 100.0, 3]  # JSON-friendly for the changelog
    verdict, claimed = dedup.check_and_claim(state, "k", "a_2", partition=3, now=120.0, ttl_s=60)
    assert verdict == dedup.Verdict("a_1", False) and claimed is None


def test_reprocessing_the_first_item_after_a_crash_is_not_a_duplicate() -> None:
    state: dict[str, object] = {"k": ["a_1", 100.0, 0]}  # recovered from the changelog
    verdict, claimed = dedup.check_and_claim(state, "k", "a_1", partition=0, now=130.0, ttl_s=60)
    assert verdict.first_id is None and claimed is None


def test_an_entry_older_than_the_window_is_forgotten() -> None:
    state: dict[str, object] = {"k": ["a_1", 100.0, 0]}
    verdict, claimed = dedup.check_and_claim(state, "k", "a_9", partition=0, now=161.0, ttl_s=60)
    assert verdict.first_id is None and claimed == dedup.FirstSeen("a_9", 161.0, 0)


def test_expiry_lists_only_old_keys_on_owned_partitions_each_on_its_own_stream_time() -> None:
    state: dict[str, object] = {"old0": ["a", 10.0, 0], "old1": ["b", 10.0, 1], "new0": ["c", 95.0, 0],
                                "old2": ["d", 10.0, 2]}
    assert list(dedup.expired_keys(state, stream_time={0: 100.0}, ttl_s=60)) == [("old0", 0)]
    # Partition 2's stream time is still close to its entry: kept.
    assert list(dedup.expired_keys(state, stream_time={0: 100.0, 2: 50.0}, ttl_s=60)) == [("old0", 0)]

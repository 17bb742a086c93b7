"""Near-duplicates on Arabic variants written for these tests (see texts.py)."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup.neardup import (
    NearDupConfig,
    NearDupIndex,
    band_keys,
    estimate_jaccard,
    jaccard,
    legacy_common_key,
    low8,
    lsh_params,
    partition_for_band,
    shingles,
    signature,
)
from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig
from newsstream.text.normalize import normalize_text

# The word-based mechanics (NEWSSTREAM_EMBEDDINGS=off): tests/dedup/test_stories_meaning.py covers vectors.
WORDS = PipelineConfig(embeddings=False)

from .texts import (
    BOILERPLATE,
    FOOTBALL_BODY,
    LIGHT_EDIT_BODY,
    OTHER_STORY_BODY,
    OWN_LEAD_BODY,
    REORDERED_BODY,
    TICKER_LINE,
    TICKER_OTHER,
    TICKER_REWORDED,
    WATER_BODY,
    WIRE_BODY,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
HOUR = 3600.0


def article(id_: str, body: str, *, source: str = "outlet-a", title: str = "", minutes: float = 0) -> RawArticle:
    at = T0 + timedelta(minutes=minutes)
    return RawArticle(id=id_, source=source, title=title, body=body, published_at=at, fetched_at=at)


def ticker(id_: str, text: str, *, source: str = "outlet-a", minutes: float = 0) -> RawTickerItem:
    at = T0 + timedelta(minutes=minutes)
    return RawTickerItem(id=id_, source=source, time=at.strftime("%H:%M"), published_at=at, text=text,
                         attribution="الرئاسة", thread_id=f"th_{id_}", fetched_at=at)


def near(index: NearDupIndex, id_: str, text: str, at: float = 0.0, source: str | None = None, kind: str = "article"):
    verdict, _ = index.check_and_add(id_, kind, normalize_text(text), at, source=source)
    return verdict


@pytest.mark.parametrize(
    "variant",
    [LIGHT_EDIT_BODY, REORDERED_BODY, OWN_LEAD_BODY],
    ids=["light-edits", "reordered-sentences", "own-lead-line"],
)
def test_a_republished_variant_of_wire_copy_is_a_near_duplicate_of_the_first(variant: str) -> None:
    index = NearDupIndex()
    assert near(index, "a1", WIRE_BODY).duplicate_of is None
    verdict = near(index, "a2", variant, at=600)
    assert verdict.duplicate_of == "a1"
    assert verdict.matched == "a1"
    assert 0.5 <= verdict.similarity <= 1.0


def test_a_different_headline_on_the_same_wire_copy_is_an_exact_duplicate_with_similarity_one() -> None:
    pipeline = Pipeline(WORDS)
    first = pipeline.process(article("a1", WIRE_BODY, title="الأردن يطلق مشروعاً لتخزين الكهرباء", source="wire"))
    second = pipeline.process(article("a2", WIRE_BODY, title="بطاريات معان: مئتا ميغاواط ساعة", source="outlet-b", minutes=30))
    assert first.enriched.enrichment.duplicate_of is None
    assert second.exact_of == "a1"
    assert second.enriched.enrichment.duplicate_of == "a1"
    assert second.near.similarity == 1.0
    # ... and the copy joins the first one's story.
    assert second.story.story_id == first.story.story_id
    assert second.story.joined_by == "duplicate"


def test_a_different_headline_and_light_edits_are_a_near_duplicate_through_the_pipeline() -> None:
    pipeline = Pipeline(WORDS)
    pipeline.process(article("a1", WIRE_BODY, title="الأردن يطلق مشروعاً لتخزين الكهرباء", source="wire"))
    done = pipeline.process(article("a2", LIGHT_EDIT_BODY, title="معان تستضيف محطة بطاريات", source="outlet-b", minutes=45))
    assert done.exact_of is None
    assert done.enriched.enrichment.duplicate_of == "a1"
    assert done.near.similarity >= 0.5


def test_another_story_on_the_same_topic_is_not_a_duplicate() -> None:
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY)
    verdict = near(index, "a2", OTHER_STORY_BODY, at=60)
    assert verdict == (None, 0.0, None)


def test_articles_that_share_only_the_site_boilerplate_are_not_duplicates() -> None:
    index = NearDupIndex()
    assert near(index, "f", FOOTBALL_BODY + "\n\n" + BOILERPLATE, source="site").duplicate_of is None
    assert near(index, "w", WATER_BODY + "\n\n" + BOILERPLATE, at=60, source="site").duplicate_of is None
    assert near(index, "o", OTHER_STORY_BODY + "\n\n" + BOILERPLATE, at=120, source="site").duplicate_of is None


def test_boilerplate_sentences_of_a_source_are_left_out_once_common() -> None:
    """When the shared footer is longer than the stories, only the per-source filter keeps them apart."""
    short = [
        "أعلن النادي تعاقده مع مدرب جديد لموسم كامل قابل للتجديد.",
        "ارتفعت أسعار الذهب في السوق المحلية بنسبة طفيفة خلال تعاملات اليوم.",
        "افتتحت البلدية حديقة عامة جديدة في الحي الشرقي بحضور المحافظ.",
        "أغلقت الشرطة طريقاً رئيسياً بسبب حادث سير بين شاحنتين صباح اليوم.",
        "أطلقت الجامعة برنامجاً للمنح الدراسية لطلاب الهندسة من المحافظات البعيدة.",
    ]
    texts = [f"{body} {BOILERPLATE}" for body in short]
    whole = [shingles(normalize_text(t)) for t in texts]
    assert jaccard(whole[3], whole[4]) >= 0.5  # compared whole, they look like copies

    filtered = NearDupIndex(NearDupConfig(boilerplate_min_items=3))
    verdicts = [near(filtered, f"s{i}", t, at=60.0 * i, source="site") for i, t in enumerate(texts)]
    # The first ones are compared whole (the footer is not known as boilerplate
    # yet); from the fourth on the footer is left out and nothing matches.
    assert verdicts[3].duplicate_of is None and verdicts[4].duplicate_of is None
    # The same footer at *another* source is not that source's boilerplate.
    other = NearDupIndex(NearDupConfig(boilerplate_min_items=3))
    for i, t in enumerate(texts[:3]):
        near(other, f"s{i}", t, at=60.0 * i, source="site")
    assert near(other, "x", texts[3], at=300, source="another-site").duplicate_of is not None


def test_a_lightly_reworded_ticker_line_is_a_near_duplicate_and_another_line_is_not() -> None:
    pipeline = Pipeline(WORDS)
    pipeline.process(ticker("t1", TICKER_LINE, source="outlet-a"))
    reworded = pipeline.process(ticker("t2", TICKER_REWORDED, source="outlet-b", minutes=2))
    other = pipeline.process(ticker("t3", TICKER_OTHER, source="outlet-b", minutes=3))
    assert reworded.enriched.enrichment.duplicate_of == "t1"
    assert other.enriched.enrichment.duplicate_of is None


def test_articles_and_ticker_lines_never_match_each_other() -> None:
    index = NearDupIndex()
    near(index, "a", TICKER_LINE, kind="article")
    assert near(index, "t", TICKER_LINE, kind="ticker").duplicate_of is None


def test_the_window_forgets_old_items() -> None:
    index = NearDupIndex(NearDupConfig(window_s=2 * HOUR))
    near(index, "a1", WIRE_BODY, at=0)
    assert near(index, "a2", LIGHT_EDIT_BODY, at=3 * HOUR).duplicate_of is None
    removed = list(index.expire(now=6 * HOUR))
    assert {w.key for w in removed if w.table == "items" and w.value is None} == {"a1", "a2"}
    assert not index.items and not index.bands


def test_reprocessing_an_item_gives_the_same_verdict_and_never_a_duplicate_of_itself() -> None:
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY)
    first = near(index, "a2", LIGHT_EDIT_BODY, at=60)
    assert near(index, "a1", WIRE_BODY, at=120).duplicate_of is None
    assert near(index, "a2", LIGHT_EDIT_BODY, at=120) == first


def test_a_copy_of_a_copy_points_to_the_first_item() -> None:
    index = NearDupIndex(NearDupConfig(threshold=0.6))
    near(index, "a1", WIRE_BODY)
    near(index, "a2", REORDERED_BODY, at=60)
    # Close to the reordered copy, matched against it or the original: either way, the root is a1.
    verdict = near(index, "a3", "\n\n".join(REORDERED_BODY.split("\n\n")[:-1]), at=120)
    assert verdict.duplicate_of == "a1"


def test_exact_verdicts_are_taken_over_and_not_indexed() -> None:
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY)
    verdict, writes = index.check_and_add("a2", "article", normalize_text(WIRE_BODY), 60, exact_of="a1")
    assert verdict == ("a1", 1.0, "a1") and writes == []
    assert "a2" not in index.items


class Partitioned(MutableMapping[str, object]):
    """A mapping whose keys live in per-partition dicts, as faust tables keep them."""

    def __init__(self, partitions: int) -> None:
        self.parts: list[dict[str, object]] = [{} for _ in range(partitions)]

    def _part(self, key: str) -> dict[str, object]:
        return self.parts[partition_for_band(key, len(self.parts))]

    def __getitem__(self, key: str) -> object:
        return self._part(key)[key]

    def __setitem__(self, key: str, value: object) -> None:
        self._part(key)[key] = value

    def __delitem__(self, key: str) -> None:
        del self._part(key)[key]

    def __iter__(self) -> Iterator[str]:
        for part in self.parts:
            yield from part

    def __len__(self) -> int:
        return sum(map(len, self.parts))


def test_band_keys_routed_to_partitions_find_the_same_duplicates_as_one_index() -> None:
    texts = [WIRE_BODY, OTHER_STORY_BODY, LIGHT_EDIT_BODY, REORDERED_BODY, FOOTBALL_BODY, OWN_LEAD_BODY, WATER_BODY]
    single = NearDupIndex()
    routed_bands = Partitioned(4)
    routed = NearDupIndex(bands=routed_bands)
    for i, text in enumerate(texts):
        assert near(single, f"i{i}", text, at=60.0 * i) == near(routed, f"i{i}", text, at=60.0 * i)
    assert sum(1 for part in routed_bands.parts if part) > 1  # the keys really were spread


def test_signatures_are_deterministic_and_band_keys_uniform() -> None:
    items = shingles(normalize_text(WIRE_BODY))
    assert signature(items) == signature(set(items))
    keys = band_keys(signature(items), 25, 5, "article")
    assert len(keys) == len(set(keys)) == 25
    assert all(k.startswith("article:b") for k in keys)
    assert 0 <= partition_for_band(keys[0], 4) < 4


def test_lsh_parameters_put_the_s_curve_at_the_threshold() -> None:
    bands, rows = lsh_params(0.5, 128)
    assert bands * rows <= 128
    midpoint = (1 / bands) ** (1 / rows)
    assert 0.4 <= midpoint <= 0.6


def test_datasketch_and_rensa_estimate_the_same_jaccard() -> None:
    pytest.importorskip("datasketch")
    a, b = shingles(normalize_text(WIRE_BODY)), shingles(normalize_text(LIGHT_EDIT_BODY))
    exact = jaccard(a, b)
    for backend in ("rensa", "datasketch"):
        est = estimate_jaccard(signature(a, backend=backend), signature(b, backend=backend))
        assert abs(est - exact) < 0.12, backend


def test_signatures_are_stored_as_8_bit_values() -> None:
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY)
    packed = index.items["a1"][2]  # type: ignore[index]
    assert len(packed) == 172 and len(base64.b64decode(packed)) == index.config.num_perm
    full = signature(shingles(normalize_text(WIRE_BODY)))
    assert np.array_equal(np.frombuffer(base64.b64decode(packed), dtype="u1"), np.asarray(full) & 0xFF)


@pytest.mark.parametrize("width", [4, 2], ids=["32-bit", "16-bit"])
def test_wider_signatures_stored_before_8_bit_ones_are_still_read(width: int) -> None:
    """A running deployment's changelog holds 32-bit or 16-bit signatures: they are cut to 8 bits on read."""
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY)
    old_format = NearDupIndex()
    near(old_format, "a1", WIRE_BODY)
    full = np.asarray(signature(shingles(normalize_text(WIRE_BODY))), dtype="<u4")
    old_format.items["a1"][2] = base64.b64encode(full.astype(f"<u{width}").tobytes()).decode()  # type: ignore[index]
    assert len(base64.b64decode(old_format.items["a1"][2])) == 128 * width  # type: ignore[index]
    old_format.bands.clear()
    assert old_format.rebuild_bands() == 1
    assert {k: list(v) for k, v in old_format.bands.items()} == {k: list(v) for k, v in index.bands.items()}
    expected = near(index, "a2", LIGHT_EDIT_BODY, at=60)
    assert expected.duplicate_of == "a1"
    assert near(old_format, "a2", LIGHT_EDIT_BODY, at=60) == expected


def test_the_estimate_compares_the_low_8_bits_and_takes_out_chance_equality() -> None:
    a = array("I", [0x0001_0105, 7, 9, 11])
    b = array("I", [0x0002_0205, 7, 10, 12])  # first slot differs in bits above the low 8 only
    chance = 1 / 256
    assert estimate_jaccard(a, b) == round((0.5 - chance) / (1 - chance), 4)
    assert estimate_jaccard(a, a) == 1.0
    assert estimate_jaccard(a, array("I", [1, 2, 3, 4])) == 0.0  # not below zero
    assert band_keys(a, 1, 4, "k") == band_keys(low8(a), 1, 4, "k")


def test_an_original_is_stored_without_an_empty_verdict_and_old_six_field_values_are_read() -> None:
    index = NearDupIndex()
    near(index, "a1", WIRE_BODY, at=1_764_057_600.0)
    near(index, "a2", LIGHT_EDIT_BODY, at=1_764_057_660.0)
    original, copy = index.items["a1"], index.items["a2"]
    assert len(original) == 3 and original[0] == 1_764_057_600 and isinstance(original[0], int)  # type: ignore[arg-type,index]
    assert copy[3] == "a1" and len(copy) == 5  # type: ignore[arg-type,index]  # matched == duplicate_of: not repeated
    assert index.stored_verdict("a1") == (None, 0.0, None)
    assert index.stored_verdict("a2") == ("a1", copy[4], "a1")  # type: ignore[index]
    # Six fields, as earlier versions wrote every item: the same verdicts.
    index.items["a1"] = [1_764_057_600.0, "article", original[2], None, 0.0, None]  # type: ignore[index]
    index.items["a2"] = [1_764_057_660.0, "article", copy[2], "a1", copy[4], "a1"]  # type: ignore[index]
    assert near(index, "a1", WIRE_BODY, at=1_764_057_700.0) == (None, 0.0, None)
    assert near(index, "a2", LIGHT_EDIT_BODY, at=1_764_057_700.0) == ("a1", copy[4], "a1")  # type: ignore[index]
    assert index.root_of("a2") == "a1" and index.root_of("a1") == "a1"
    # A copy of the copy still points to the root through either form.
    assert near(index, "a3", LIGHT_EDIT_BODY, at=1_764_057_720.0) == ("a1", 1.0, "a2")
    assert index.items["a3"][3:] == ["a1", 1.0, "a2"]  # type: ignore[index]  # matched another: kept
    assert index.stored_verdict("a3") == ("a1", 1.0, "a2") and index.stored_verdict("zz") is None


def test_boilerplate_counts_under_the_older_long_keys_are_read_and_moved() -> None:
    """State written before the short sentence keys (``article:<hex>``) keeps counting: a deployment
    that upgrades does not forget its boilerplate, and each old key is moved when next counted."""
    texts = [f"{body} {BOILERPLATE}" for body in (FOOTBALL_BODY, WATER_BODY, OTHER_STORY_BODY)]
    fresh = NearDupIndex(NearDupConfig(boilerplate_min_items=2))
    for i, t in enumerate(texts[:2]):
        near(fresh, f"s{i}", t, at=60.0 * i, source="site")
    assert fresh.common and all(len(k) == 12 and k[0] == "a" for k in fresh.common)

    upgraded = NearDupIndex(NearDupConfig(boilerplate_min_items=2))
    upgraded.items.update(fresh.items)
    upgraded.rebuild_bands()
    upgraded.common.update({legacy_common_key(k): v for k, v in fresh.common.items()})
    old_keys = set(upgraded.common)
    assert all(k.startswith("article:") and len(k) == 24 for k in old_keys)

    _, writes_fresh = fresh.check_and_add("s2", "article", normalize_text(texts[2]), now=120.0, source="site")
    verdict, writes = upgraded.check_and_add("s2", "article", normalize_text(texts[2]), now=120.0, source="site")
    assert verdict == fresh.stored_verdict("s2")
    assert upgraded.items["s2"] == fresh.items["s2"]  # the footer was left out alike: same signature
    counted = {w.key for w in writes_fresh if w.table == "common"}  # the sentences of s2, its footer among them
    assert any(fresh.common[k][0] == 3 for k in counted)  # the footer, carried by all three
    # Each count carried over: the ones s2 counted moved to the short key, the others wait under the old one.
    assert {k: upgraded.common.get(k, upgraded.common.get(legacy_common_key(k))) for k in fresh.common} == fresh.common
    assert all((k in upgraded.common) == (k in counted) for k in fresh.common)
    moved = {w.key for w in writes if w.table == "common" and w.value is None}
    assert moved == {legacy_common_key(k) for k in counted} & old_keys and not moved & set(upgraded.common)
    assert [w for w in writes if w.value is not None] == [w for w in writes_fresh if w.value is not None]

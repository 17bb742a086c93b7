"""Golden tests on the seed page: the whole worker enrichment (newsstream.enrich.item)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from newsstream.contract.models import EnrichedArticle, EnrichedTickerItem
from newsstream.enrich.item import enrich
from newsstream.ingest.events import events_from_page_text

FETCHED = datetime(2025, 4, 1, 20, 0, tzinfo=timezone.utc)  # a Tuesday, 2 weeks after mid-March


@pytest.fixture(scope="module")
def enriched(seed_text: str) -> list[EnrichedArticle | EnrichedTickerItem]:
    events = events_from_page_text(seed_text, source="almayadeen", fetched_at=FETCHED, tz=ZoneInfo("Asia/Beirut"),
                                   published_at=FETCHED)
    return [enrich(e, FETCHED) for e in events]


@pytest.fixture(scope="module")
def article(enriched) -> EnrichedArticle:
    (a,) = [e for e in enriched if e.kind == "article"]
    return a


@pytest.fixture(scope="module")
def ticker(enriched) -> list[EnrichedTickerItem]:
    return [e for e in enriched if e.kind == "ticker"]


def _ids(items, type_: str) -> set[str]:
    return {m.id for e in items for m in (e.enrichment.entities or []) if m.type == type_ and m.id}


def _countries(items) -> set[str]:
    return {m.country for e in items for m in (e.enrichment.entities or []) if m.type == "LOC" and m.country}


def test_persons_found_and_linked(article) -> None:
    persons = _ids([article], "PERS")
    for pid in ("person:sergey-lavrov", "person:wang-yi", "person:vladimir-putin", "person:xi-jinping",
                "person:alexei-overchuk", "person:donald-trump", "person:lin-jian"):
        assert pid in persons, pid
    # three spellings of one person resolve to one id: name, full name, role
    lavrov = [m for m in article.enrichment.entities if m.id == "person:sergey-lavrov"]
    assert {m.text for m in lavrov} >= {"لافروف", "سيرغي لافروف", "وزير الخارجية الروسي"}
    assert {m.source for m in lavrov} >= {"gazetteer", "role"}


def test_places_with_iso_codes(article, ticker) -> None:
    items = [article, *ticker]
    places = _ids(items, "LOC")
    for pid in ("country:RU", "country:CN", "geonames:524901", "geonames:1816670", "geonames:4140963",
                "country:YE", "country:SY", "country:LB", "geonames:281133", "country:IL"):
        assert pid in places, pid
    # Iran: named through its capital in the ticker (طهران) and as a country by ISO code
    assert "IR" in _countries(items)
    moscow = next(m for m in article.enrichment.entities if m.id == "geonames:524901")
    assert moscow.country == "RU" and moscow.name == "Moscow"


def test_organisations(ticker) -> None:
    orgs = _ids(ticker, "ORG")
    assert {"org:hamas", "org:houthis"} <= orgs


def test_offsets_point_into_the_raw_text(article, ticker) -> None:
    for e in [article, *ticker]:
        for m in e.enrichment.entities:
            src = {"title": getattr(e.raw, "title", ""), "body": getattr(e.raw, "body", ""),
                   "text": getattr(e.raw, "text", ""), "attribution": getattr(e.raw, "attribution", "")}[m.field]
            assert src[m.start:m.end] == m.text


def test_lavrovs_quotes_are_attributed_to_him(article) -> None:
    quotes = article.enrichment.quotes
    lavrov = [q for q in quotes if q.speaker_id == "person:sergey-lavrov"]
    texts = " ".join(q.text for q in lavrov)
    assert "روسيا والصين متّحدتان" in texts
    assert "هكذا يُرشدنا زعيمانا" in texts  # «مضيفاً: ...» continues his quote
    assert "سنبذل قصارى جهدنا" in texts  # «وأكّد وزير الخارجية الروسي: ...»
    assert any(q.kind == "direct" for q in lavrov)
    assert any(q.speaker_id == "person:alexei-overchuk" and "موسكو يجب أن توازن" in q.text for q in quotes)
    assert any(q.speaker_id == "person:lin-jian" for q in quotes)
    for q in quotes:
        assert article.raw.body[q.start:q.end] == q.text


def test_times_resolved_against_publication(article) -> None:
    times = {t.text: t for t in article.enrichment.times}
    mid_march = next(t for k, t in times.items() if "آذار/مارس" in k)
    assert (mid_march.value, mid_march.granularity, mid_march.modifier) == ("2025-03", "month", "mid")
    two_days = next(t for k, t in times.items() if "قبل يومين" in k)
    assert two_days.value == "2025-03-30"
    feb = next(t for k, t in times.items() if "شباط" in k)
    assert feb.value == "2025-02"


def test_topic_politics_region_urgency_versions(article) -> None:
    e = article.enrichment
    assert e.topics[0].code == "medtop:11000000"
    assert [r.country for r in e.regions][:2] == ["RU", "CN"]
    assert e.urgency == 4
    assert set(e.enrichment_versions) >= {"topics", "ner", "gazetteer", "quotes", "times", "urgency"}


def test_ticker_attributions(ticker) -> None:
    by_text = {t.raw.text[:12]: t.enrichment.attribution for t in ticker}
    attrs = [t.enrichment.attribution for t in ticker]
    assert all(a is not None for a in attrs)
    turkish = [a for a in attrs if a.text == "الخارجية التركية"]
    assert len(turkish) == 2 and turkish[0].speaker == "الخارجية التركية"
    assert (turkish[0].speaker_id, turkish[0].speaker_type) == ("org:foreign-ministry-tr", "ORG")
    telegraph = [a for a in attrs if a.text.startswith("تلغراف")]
    assert len(telegraph) == 2
    assert telegraph[0].source == "تلغراف" and telegraph[0].speaker == "مسؤول إيراني رفيع"
    assert telegraph[0].speaker_type == "PERS" and telegraph[0].speaker_id is None  # an unnamed Iranian official
    president = next(a for a in attrs if a.text == "الرئيس الإيراني")
    assert president.speaker_id == "person:masoud-pezeshkian"
    hamas = next(a for a in attrs if "حماس" in a.text)
    assert hamas.speaker_id == "org:hamas" and hamas.speaker_type == "ORG"
    assert by_text
    for t in ticker:
        assert t.enrichment.urgency in (2, 3)
        assert t.enrichment.enrichment_versions


def test_enriched_events_round_trip_through_the_public_schema(enriched) -> None:
    """The worker builds nested models without re-validation: check that what
    it emits validates against the models (and so the JSON Schemas)."""
    from newsstream.contract.wire import dumps, loads_enriched

    for e in enriched:
        again = loads_enriched(dumps(e))
        assert again == e
        assert again.enrichment.entities == e.enrichment.entities

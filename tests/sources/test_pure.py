"""Pure parts, no network: URL canonicalisation, decoding, feed and ticker parsing, registry, OpenAPI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsstream.ingest.sources.feed import FeedError, parse_feed
from newsstream.ingest.sources.page import page_outcome
from newsstream.ingest.sources.push import openapi_document
from newsstream.ingest.sources.registry import RegistryError, parse_registry
from newsstream.ingest.sources.textutil import decode_body
from newsstream.ingest.sources.ticker import (
    TickerFormatError,
    rethread,
    ticker_events,
)
from newsstream.ingest.sources.urls import canonical_url

FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.ORG:443/a/b?utm_source=x&b=2&a=1#frag", "https://example.org/a/b?a=1&b=2"),
        ("http://example.org", "http://example.org/"),
        ("http://example.org:8080/x?fbclid=1&gclid=2", "http://example.org:8080/x"),
        ("https://example.org/%d8%a3%d8%ae%d8%a8%d8%a7%d8%b1", "https://example.org/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1"),
        ("https://example.org/أخبار", "https://example.org/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1"),
        ("https://example.org/a%2Fb", "https://example.org/a%2Fb"),
        ("https://example.org/?id=5&ref=home&page=2", "https://example.org/?id=5&page=2"),
        ("https://example.org/x?q=a b", "https://example.org/x?q=a%20b"),
        ("ftp://example.org/x", None),
        ("", None),
        (None, None),
        ("not a url", None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected
    if expected:
        assert canonical_url(expected) == expected  # idempotent


def test_decode_body_declared_guessed_and_invalid() -> None:
    assert decode_body("نص".encode("cp1256"), "windows-1256").text == "نص"
    assert decode_body(b'<meta charset="windows-1256">' + "نص".encode("cp1256")).text.endswith("نص")
    assert decode_body("\ufeffنص".encode("utf-8")).text == "نص"
    with pytest.raises(UnicodeDecodeError):
        decode_body((FIX / "badbytes.html").read_bytes())


def test_feed_parsing_and_bad_entries() -> None:
    body = (FIX / "ar.rss.xml").read_bytes().replace(b"{base}", b"http://h.example")
    feed = parse_feed(body, content_type="application/rss+xml")
    assert feed.language == "ar" and len(feed.items) == 3
    first, _, no_link = feed.items
    assert first.link == "http://h.example/pages/ar-1.html"  # tracking parameters dropped
    assert first.title == "اجتماع وزاري لبحث أمن الطاقة" and first.invisible_chars == 2  # RLM + ZWSP cleaned
    assert first.published_at == datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
    assert no_link.link is None and no_link.published_at is None and no_link.key.startswith("h:")
    with pytest.raises(FeedError) as broken:
        parse_feed((FIX / "broken.xml").read_bytes())
    assert broken.value.kind == "broken_xml"
    with pytest.raises(FeedError) as enc:
        parse_feed(b"<rss version='2.0'><channel><title>\xff\xfe bad</title></channel></rss>")
    assert enc.value.kind == "invalid_encoding"


def test_page_extraction_strips_chrome_and_keeps_ticker() -> None:
    html = (FIX / "ar-1.html").read_text()
    out = page_outcome(html, source="s", url="http://h.example/pages/ar-1.html?utm_source=x", fetched_at=T0,
                       tz=ZoneInfo("Asia/Beirut"))
    article, *ticker = out.events
    assert article.kind == "article" and article.language == "ar"
    assert article.url == "http://h.example/pages/ar-1.html"
    assert article.title == "اجتماع وزاري لبحث أمن الطاقة في المنطقة"
    assert "اقرأ أيضاً" not in article.body and "الأكثر قراءة" not in article.body
    assert not article.body.startswith(article.title) and len(article.body.split("\n\n")) == 3
    assert article.published_at == datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
    assert [t.time for t in ticker] == ["22:35", "22:34", "22:30"]
    assert ticker[1].continues_previous and ticker[0].thread_id == ticker[1].thread_id != ticker[2].thread_id
    assert ticker[0].attribution == "الخارجية التركية"
    # Beirut is UTC+3 in May; 22:35 is after the 15:00 local fetch, so it was yesterday evening.
    assert ticker[0].published_at == datetime(2024, 4, 30, 19, 35, tzinfo=UTC)


def test_page_without_body_is_a_dead_letter() -> None:
    out = page_outcome((FIX / "nobody.html").read_text(), source="s", url="http://h/x", fetched_at=T0, tz=ZoneInfo("UTC"))
    assert out.events == [] and [d.reason for d in out.dead_letters] == ["empty_page"] and out.errors == {"empty_page": 1}


def _json_ticker(*items: dict) -> bytes:
    return json.dumps({"items": list(items)}, ensure_ascii=False).encode()


def test_ticker_midnight_rollover_and_time_zone() -> None:
    beirut = ZoneInfo("Asia/Beirut")
    body = _json_ticker({"time": "00:03", "text": "الرئاسة: بيان"}, {"time": "23:58", "text": "الرئاسة: - قبل منتصف الليل"})
    fetched = datetime(2024, 5, 1, 21, 5, tzinfo=UTC)  # 00:05 on 2 May in Beirut
    lines, bad = ticker_events(body, source="s", fetched_at=fetched, tz=beirut, content_type="application/json")
    assert bad == 0
    assert lines[0].published_at == datetime(2024, 5, 1, 21, 3, tzinfo=UTC)  # 00:03 on 2 May
    assert lines[1].published_at == datetime(2024, 5, 1, 20, 58, tzinfo=UTC)  # 23:58 on 1 May
    assert lines[1].continues_previous and lines[0].thread_id == lines[1].thread_id


def test_ticker_formats_and_bad_json() -> None:
    body = json.dumps([{"time": "10:00", "attribution": "الجيش", "text": "بيان أول"},
                       {"time": "09:59", "attribution": "الجيش", "continues": True, "text": "تفاصيل"},
                       "09:58 الأمم المتحدة: دعوة إلى التهدئة", 42], ensure_ascii=False).encode()
    lines, bad = ticker_events(body, source="s", fetched_at=T0, tz=ZoneInfo("UTC"), content_type="application/json")
    assert bad == 1 and [ln.attribution for ln in lines] == ["الجيش", "الجيش", "الأمم المتحدة"]
    assert lines[1].continues_previous and lines[0].thread_id == lines[1].thread_id
    with pytest.raises(TickerFormatError) as exc:
        ticker_events(b"{not json", source="s", fetched_at=T0, tz=ZoneInfo("UTC"), content_type="application/json")
    assert exc.value.kind == "invalid_json"
    with pytest.raises(TickerFormatError) as exc:
        ticker_events(b'{"items": "x"}', source="s", fetched_at=T0, tz=ZoneInfo("UTC"))
    assert exc.value.kind == "bad_shape"


def test_rethread_keeps_a_thread_after_its_oldest_line_scrolled_off() -> None:
    utc = ZoneInfo("UTC")
    # The seed's layout: the head of a story on top, its "-" continuations below it (older).
    first = _json_ticker({"time": "10:01", "text": "الجيش: بيان"}, {"time": "10:00", "text": "الجيش: - تفاصيل أولى"})
    lines1, _ = ticker_events(first, source="s", fetched_at=T0, tz=utc)
    assert lines1[0].thread_id == lines1[1].thread_id
    thread = lines1[0].thread_id
    stored = {ln.id: ln.thread_id for ln in lines1}
    # A new head arrives on top with a continuation: the parser itself keeps the id (derived from the oldest line).
    grown = _json_ticker({"time": "10:03", "text": "الجيش: خبر آخر"}, {"time": "10:01", "text": "الجيش: بيان"},
                         {"time": "10:00", "text": "الجيش: - تفاصيل أولى"})
    lines_grown, _ = ticker_events(grown, source="s", fetched_at=T0, tz=utc)
    assert lines_grown[1].thread_id == thread
    # The oldest line scrolled off the bottom: alone, the parser would give the head a new thread id.
    scrolled = _json_ticker({"time": "10:05", "text": "الجيش: تحديث"}, {"time": "10:01", "text": "الجيش: بيان"})
    lines3, _ = ticker_events(scrolled, source="s", fetched_at=T0, tz=utc)
    assert lines3[1].thread_id != thread
    fixed = rethread(lines3, known_thread=stored.get)
    assert fixed[1].thread_id == thread and fixed[0].thread_id == lines3[0].thread_id


REGISTRY = """
state = "state.sqlite"
[fetch]
timeout_s = 5
[push]
port = 0
[[push.tokens]]
name = "scraper"
token_env = "TEST_PUSH_TOKEN"
sources = ["scraper-a"]

[[sources]]
name = "ar-feed"
kind = "feed"
url = "https://example.org/feed.xml"
language = "ar"
tz = "Asia/Beirut"
interval_s = 60
[sources.auth]
type = "bearer"
env = "AR_FEED_TOKEN"
"""


def test_registry_credentials_by_env_reference_only() -> None:
    reg = parse_registry(REGISTRY)
    (src,) = reg.enabled_sources({"AR_FEED_TOKEN": "s3cret"})
    assert src.headers == {"Authorization": "Bearer s3cret"} and src.tz == ZoneInfo("Asia/Beirut")
    with pytest.raises(RegistryError, match="AR_FEED_TOKEN"):
        reg.enabled_sources({})
    with pytest.raises(RegistryError, match="carry credentials"):
        parse_registry(REGISTRY.replace("interval_s = 60", 'interval_s = 60\nheaders = { Authorization = "Bearer x" }'))
    with pytest.raises(RegistryError, match="environment variable name"):
        parse_registry(REGISTRY.replace('env = "AR_FEED_TOKEN"', 'env = "Bearer abc123"'))
    with pytest.raises(RegistryError, match="token"):
        parse_registry(REGISTRY.replace('token_env = "TEST_PUSH_TOKEN"', 'token = "abc"'))
    with pytest.raises(RegistryError, match="time zone"):
        parse_registry(REGISTRY.replace("Asia/Beirut", "Mars/Olympus"))
    with pytest.raises(RegistryError, match="duplicate"):
        parse_registry(REGISTRY + REGISTRY[REGISTRY.index("[[sources]]"):])


def test_example_registry_is_valid() -> None:
    reg = parse_registry((ROOT / "deploy" / "sources.example.toml").read_text())
    assert {s.kind for s in reg.sources} == {"feed", "page", "ticker"}


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads((ROOT / "docs" / "push-openapi.json").read_text())
    assert committed == openapi_document(), "run: python -m newsstream.ingest.sources.push > docs/push-openapi.json"


def test_state_marks_prunes_and_checkpoints(tmp_path: Path) -> None:
    import sqlite3
    import time as _time

    from newsstream.ingest.sources.state import SourceState

    path = tmp_path / "s.sqlite"
    with SourceState(path) as state:
        state.mark_seen("a", ["k1", "k2"])
        assert state.unseen("a", ["k1", "k3", "k3"]) == ["k3"] and state.unseen("b", ["k1"]) == ["k1"]
        state.set_validators("http://x/", '"e1"', "Wed, 01 May 2024 10:00:00 GMT")
        state.set_checkpoint("replay:f", 17)
        state.remember_threads("a", [("t1", "th_1", "", "2024-05-01T00:00:00+00:00")])
    with SourceState(path) as state:  # durable
        assert state.seen_count("a") == 2 and state.validators("http://x/") == ('"e1"', "Wed, 01 May 2024 10:00:00 GMT")
        assert state.checkpoint("replay:f") == 17 and state.thread_of("a", "t1") == "th_1"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE seen SET first_seen = ? WHERE key = 'k1'", (_time.time() - 40 * 86400,))
    with SourceState(path) as state:
        assert state.prune(30 * 86400) == 2  # k1 and the 2024 thread
        assert state.unseen("a", ["k1", "k2"]) == ["k1"] and state.thread_of("a", "t1") is None

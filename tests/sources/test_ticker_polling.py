"""Ticker polling across polls with a controlled clock: only new lines, midnight roll-over,
threads kept; plus source-level failures and metrics. The sink here is a list (the poller's
logic is under test); the Kafka hand-off is covered by test_polling_broker.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from newsstream.ingest.sources.base import Source, language_code
from newsstream.ingest.sources.http import Fetcher
from newsstream.ingest.sources.page import page_outcome
from newsstream.ingest.sources.runner import Poller, PollError, SourceRunner
from newsstream.ingest.sources.state import SourceState
from tests.sources.server import FixtureServer

BEIRUT = ZoneInfo("Asia/Beirut")


def _counter(name: str, source: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": source, "kind": kind}) or 0.0


class ListSink:
    def __init__(self) -> None:
        self.events: list = []
        self.dead: list = []
        self.flushes = 0

    async def emit(self, event) -> None:  # type: ignore[no-untyped-def]
        self.events.append(event)

    async def emit_dead_letter(self, letter) -> None:  # type: ignore[no-untyped-def]
        self.dead.append(letter)

    async def flush(self) -> None:
        self.flushes += 1


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _serve(site: FixtureServer, *items: dict) -> None:
    site.tickers["live.json"] = (json.dumps({"items": list(items)}, ensure_ascii=False).encode(), "application/json")


async def test_only_new_lines_across_midnight_with_threads(site: FixtureServer, tmp_path: Path) -> None:
    clock = Clock(datetime(2024, 5, 1, 20, 59, tzinfo=UTC))  # 23:59 in Beirut (UTC+3)
    source = Source(name="live", kind="ticker", url=site.url("/ticker/live.json"), tz=BEIRUT)
    sink = ListSink()
    head = {"time": "23:58", "text": "الرئاسة: انتهاء الاجتماع الطارئ"}
    cont = {"time": "23:50", "text": "الرئاسة: - الاجتماع يبحث الوضع الأمني"}
    _serve(site, head, cont)
    with SourceState(tmp_path / "s.sqlite") as state:
        async with Fetcher(timeout_s=2) as fetcher:
            runner = SourceRunner([source], fetcher=fetcher, sink=sink, state=state, clock=clock)
            await runner.poll_once(source)
            assert [e.time for e in sink.events] == ["23:58", "23:50"]
            thread = sink.events[0].thread_id
            assert sink.events[1].thread_id == thread
            assert sink.events[0].published_at == datetime(2024, 5, 1, 20, 58, tzinfo=UTC)

            # Two minutes later it is 2 May in Beirut; the same lines are still shown, plus a new one.
            clock.at = datetime(2024, 5, 1, 21, 1, tzinfo=UTC)  # 00:01 local
            _serve(site, {"time": "00:01", "text": "الجيش: بيان جديد"}, head, cont)
            await runner.poll_once(source)
            assert [e.time for e in sink.events[2:]] == ["00:01"]  # 23:58 resolved to 1 May again: not new
            assert sink.events[2].published_at == datetime(2024, 5, 1, 21, 1, tzinfo=UTC)

            # The oldest line scrolls off; the story's head is still there and nothing is re-emitted.
            _serve(site, {"time": "00:01", "text": "الجيش: بيان جديد"}, head)
            assert (await runner.poll_once(source)) is not None
            assert len(sink.events) == 3

            # Unchanged endpoint: a conditional GET answered 304.
            polls_304 = _counter("newsstream_source_polls_total", "live", "not_modified")
            out = await runner.poll_once(source)
            assert out is not None and out.not_modified and _counter("newsstream_source_polls_total", "live", "not_modified") == polls_304 + 1
        # A restart (new runner, same state file): only the new line is emitted.
        _serve(site, {"time": "00:05", "text": "الرئاسة: - تفاصيل إضافية"}, head)
        async with Fetcher(timeout_s=2) as fetcher:
            clock.at = datetime(2024, 5, 1, 21, 6, tzinfo=UTC)
            runner = SourceRunner([source], fetcher=fetcher, sink=sink, state=state, clock=clock)
            await runner.poll_once(source)
    new = sink.events[3:]
    assert [e.time for e in new] == ["00:05"]
    assert new[0].continues_previous  # the head below it was not emitted again after the restart


async def test_source_level_failures_are_counted_and_typed(site: FixtureServer) -> None:
    async with Fetcher(timeout_s=1) as fetcher:
        poller = Poller(fetcher)
        for path, kind in [("/bad/loop", "redirect_loop"), ("/dead/feed.xml", "http_status"),
                           ("/feeds/broken.xml", "broken_xml"), ("/slow/feed.xml", "timeout")]:
            with pytest.raises(PollError) as exc:
                await poller.poll(Source(name="x", kind="feed", url=site.url(path)))
            assert exc.value.kind == kind
        sink = ListSink()
        before = _counter("newsstream_source_poll_errors_total", "bad-feed", "broken_xml")
        runner = SourceRunner([Source(name="bad-feed", kind="feed", url=site.url("/feeds/broken.xml"), interval_s=2)],
                              fetcher=fetcher, sink=sink, state=SourceState(":memory:"), max_backoff_s=10)
        assert await runner.poll_once(runner.sources[0]) is None
        assert _counter("newsstream_source_poll_errors_total", "bad-feed", "broken_xml") == before + 1
        assert _counter("newsstream_source_polls_total", "bad-feed", "error") >= 1
        await runner.poll_once(runner.sources[0])
        assert 2 * 2 * 0.9 <= runner.next_delay(runner.sources[0]) <= 10  # exponential, capped


def test_unknown_language_and_invisible_characters() -> None:
    assert language_code("ar-LB") == "ar" and language_code("EN_gb") == "en"
    assert language_code("zz-123-!!") is None and language_code("") is None and language_code(None) is None
    html = ('<html lang="not a language"><head><title>t</title></head><body><article>'
            '<p>نص\u200f عربي\u200b طويل بما يكفي ليكون فقرة من مقال إخباري حقيقي عن الاجتماع الوزاري اليوم.</p>'
            '<p>فقرة ثانية\u202b فيها علامات اتجاه\u202c لا تُرى، يجب أن تُحذف من النص المخزن كلها.</p>'
            '</article></body></html>')
    out = page_outcome(html, source="s", url="http://h/x", fetched_at=datetime(2024, 5, 1, tzinfo=UTC),
                       tz=ZoneInfo("UTC"))
    (article,) = out.events
    assert article.language is None  # unknown: left to the worker's detector
    assert not any(ch in article.body for ch in "\u200f\u200b\u202b\u202c")
    assert out.cleaned["invisible_chars"] == 4 and out.cleaned["missing_date"] == 1


async def test_transient_page_failure_is_retried_next_poll_not_lost(site: FixtureServer) -> None:
    feed = (Path(__file__).parent / "fixtures" / "ar.rss.xml").read_bytes().replace(b"{base}", site.base.encode())
    feed = feed.replace(b"/pages/ar-2.html", b"/flaky/ar-2.html")
    site.feeds["flaky.rss.xml"] = (feed, "application/rss+xml")
    site.flaky = 1  # the page answers 503 once
    source = Source(name="flaky", kind="feed", url=site.url("/feeds/flaky.rss.xml"))
    sink = ListSink()
    async with Fetcher(timeout_s=2) as fetcher:
        runner = SourceRunner([source], fetcher=fetcher, sink=sink, state=SourceState(":memory:"))
        first = await runner.poll_once(source)
        assert first is not None and first.deferred == 1 and first.validators is None
        titles = [e.title for e in sink.events if e.kind == "article"]
        assert "تأهل الفريق إلى نصف النهائي" not in titles and len(titles) == 2
        second = await runner.poll_once(source)  # not a 304: the feed is fetched in full again
        assert second is not None and not second.not_modified and second.deferred == 0
        (semifinal,) = [e for e in sink.events[len(first.events):] if e.kind == "article"]
        assert semifinal.body.startswith("تأهل الفريق الوطني إلى الدور نصف النهائي من بطولة الكأس")  # the page
        third = await runner.poll_once(source)
        assert third is not None and third.not_modified
    assert _counter("newsstream_source_poll_errors_total", "flaky", "page_http_status") == 1

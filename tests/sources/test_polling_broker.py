"""Polling sources onto the real (Tansu) broker: exactly once across restarts, slow and dead hosts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.ingest.service import serve
from newsstream.ingest.sources.base import Source
from newsstream.ingest.sources.http import Fetcher
from newsstream.ingest.sources.registry import parse_registry
from newsstream.ingest.sources.runner import SourceRunner
from newsstream.ingest.sources.state import SourceState
from newsstream.platform.settings import Settings
from tests.sources.kafka_util import count_by_key, read_all
from tests.sources.server import FixtureServer

pytestmark = pytest.mark.integration

TICKER = {"items": [
    {"time": "22:35", "text": "الخارجية التركية: إسرائيل تلعب دور المخرب"},
    {"time": "22:34", "text": "الخارجية التركية: - التساؤل واجب"},
]}


def _counter(name: str, source: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": source, "kind": kind}) or 0.0


def _sources(site: FixtureServer, suffix: str = "") -> list[Source]:
    beirut = ZoneInfo("Asia/Beirut")
    return [
        Source(name=f"ar-feed{suffix}", kind="feed", url=site.url("/feeds/ar.rss.xml"), tz=beirut, interval_s=0.5),
        Source(name=f"en-feed{suffix}", kind="feed", url=site.url("/feeds/en.atom.xml"), interval_s=0.5),
        Source(name=f"ar-ticker{suffix}", kind="ticker", url=site.url("/ticker/ar.json"), tz=beirut, interval_s=0.5),
        Source(name=f"cp-page{suffix}", kind="page", url=site.url("/pages/cp1256.html"), interval_s=0.5),
        Source(name=f"slow{suffix}", kind="feed", url=site.url("/slow/feed.xml"), interval_s=0.5),
        Source(name=f"dead{suffix}", kind="feed", url=site.url("/dead/feed.xml"), interval_s=0.5),
    ]


async def _poll_once(settings: Settings, state_path: Path, sources: list[Source], timeout_s: float = 1.5):
    with SourceState(state_path) as state:
        async with RawEventProducer(settings) as producer, Fetcher(timeout_s=timeout_s) as fetcher:
            runner = SourceRunner(sources, fetcher=fetcher, sink=producer, state=state)
            results = await runner.run_once()
            return results, producer.report


async def test_items_land_exactly_once_across_restarts(site: FixtureServer, fast_settings: Settings, tmp_path: Path) -> None:
    site.tickers["ar.json"] = (json.dumps(TICKER, ensure_ascii=False).encode(), "application/json")
    state_path = tmp_path / "sources.sqlite"
    sources = _sources(site)
    dead_errors_before = _counter("newsstream_source_poll_errors_total", "dead", "http_status")

    results, report = await _poll_once(fast_settings, state_path, sources)
    assert results["slow"] is None and results["dead"] is None  # failed, counted, did not block the others
    assert all(results[s.name] is not None for s in sources[:4])
    # ar feed: 3 articles + 3 ticker lines of ar-1.html; en feed: 3 articles (+1 dead letter); ticker: 2; page: 1
    assert report.emitted == {"article": 7, "ticker": 5}
    assert report.dead_letters == {"redirect_loop": 1}
    assert _counter("newsstream_source_poll_errors_total", "dead", "http_status") == dead_errors_before + 1

    raw = await read_all(fast_settings, *topics.RAW_TOPICS, expect=12)
    counts = count_by_key(raw)
    assert len(raw) == 12 and set(counts.values()) == {1}
    assert {v["source"] for _, _, v in raw} == {"ar-feed", "en-feed", "ar-ticker", "cp-page"}

    # Restart: a new producer, fetcher and state handle on the same file. Nothing is emitted again, and the
    # feeds are asked conditionally (304).
    feed_hits_before = site.count("/feeds/ar.rss.xml")
    results, report = await _poll_once(fast_settings, state_path, sources)
    assert report.total_emitted == 0 and report.total_dead_letters == 0
    assert results["ar-feed"] is not None and results["ar-feed"].not_modified
    conditional = [h for h in site.hits if h.path == "/feeds/ar.rss.xml"][feed_hits_before:]
    assert conditional and all("If-None-Match" in h.headers for h in conditional)

    # The ticker gets a new line on top: only that line is emitted, in the thread of the line it continues.
    site.tickers["ar.json"] = (json.dumps({"items": [
        {"time": "22:36", "text": "الخارجية التركية: - ندعو إلى وقف التصعيد"}, *TICKER["items"]]},
        ensure_ascii=False).encode(), "application/json")
    _, report = await _poll_once(fast_settings, state_path, sources[2:3])
    assert report.emitted == {"ticker": 1}

    raw = await read_all(fast_settings, *topics.RAW_TOPICS, expect=13)
    counts = count_by_key(raw)
    assert len(raw) == 13 and set(counts.values()) == {1}
    dlq = await read_all(fast_settings, topics.DEAD_LETTERS, expect=1)
    assert [v["reason"] for _, _, v in dlq] == ["redirect_loop"]


async def test_a_slow_feed_never_blocks_the_others(site: FixtureServer, fast_settings: Settings, tmp_path: Path) -> None:
    site.slow_s = 20.0
    site.tickers["ar.json"] = (json.dumps(TICKER, ensure_ascii=False).encode(), "application/json")
    sources = _sources(site, suffix="-loop")
    stop = asyncio.Event()
    with SourceState(tmp_path / "s.sqlite") as state:
        async with RawEventProducer(fast_settings) as producer, Fetcher(timeout_s=10) as fetcher:
            runner = SourceRunner(sources, fetcher=fetcher, sink=producer, state=state, max_backoff_s=4)
            task = asyncio.create_task(runner.run(stop))
            started = time.monotonic()
            raw = await read_all(fast_settings, *topics.RAW_TOPICS, expect=12, idle_s=0.5, timeout_s=9)
            elapsed = time.monotonic() - started
            assert len(raw) == 12 and elapsed < 9  # everything else arrived while the slow feed still hangs
            deadline = time.monotonic() + 8
            while runner.failures["dead-loop"] < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert runner.failures["dead-loop"] >= 2  # retried ...
            assert runner.next_delay(sources[5]) > sources[5].interval_s  # ... with backoff
            assert site.count("/slow/feed.xml") == 1  # still on its first request
            stop.set()
            await asyncio.wait_for(task, 15)
    assert set(count_by_key(raw).values()) == {1}


def _registry_text(site: FixtureServer, state: Path) -> str:
    return f"""
state = "{state}"
[fetch]
timeout_s = 2
[[sources]]
name = "ar-feed"
kind = "feed"
url = "{site.url('/feeds/ar.rss.xml')}"
language = "ar"
tz = "Asia/Beirut"
[[sources]]
name = "en-page"
kind = "page"
url = "{site.url('/pages/en-1.html')}"
[[sources]]
name = "broken"
kind = "feed"
url = "{site.url('/feeds/broken.xml')}"
"""


async def test_registry_run_once_and_sources_check(site: FixtureServer, fast_settings: Settings, tmp_path: Path) -> None:
    text = _registry_text(site, tmp_path / "state.sqlite")
    code = await serve(fast_settings, parse_registry(text), poll=True, push=False, once=True)
    assert code == 1  # the broken feed failed; the others went through
    raw = await read_all(fast_settings, *topics.RAW_TOPICS, expect=7)
    assert sorted(v["source"] for _, _, v in raw) == ["ar-feed"] * 6 + ["en-page"]
    assert _counter("newsstream_source_poll_errors_total", "broken", "broken_xml") >= 1

    config = tmp_path / "sources.toml"
    config.write_text(text)
    result = await asyncio.to_thread(CliRunner().invoke, newsstream_cli, ["sources", "check", "-c", str(config)])
    assert result.exit_code == 1
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert "ok" in rows["ar-feed"] and "ok" in rows["en-page"] and "FAILED" in rows["broken"]
    assert "broken_xml" in rows["broken"]

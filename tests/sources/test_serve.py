"""`ingest serve`: pollers, push endpoint and /metrics in one process, on the real broker."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from newsstream.contract import topics
from newsstream.ingest.service import serve
from newsstream.ingest.sources.registry import parse_registry
from newsstream.platform.settings import Settings
from tests.sources.kafka_util import read_all
from tests.sources.server import FixtureServer

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} did not come up")
            await asyncio.sleep(0.1)


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The service's /metrics as {(name, sorted labels): value}."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


async def test_serve_polls_pushes_and_exports_metrics(site: FixtureServer, fast_settings: Settings, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_TEST_TOKEN", "serve-secret")
    push_port, metrics_port = _free_port(), _free_port()
    registry = parse_registry(f"""
state = "{tmp_path / 'state.sqlite'}"
[push]
host = "127.0.0.1"
port = {push_port}
[[push.tokens]]
name = "scraper"
token_env = "SERVE_TEST_TOKEN"
[[sources]]
name = "serve-ar"
kind = "feed"
url = "{site.url('/feeds/ar.rss.xml')}"
interval_s = 1
follow = false
""")
    settings = fast_settings.model_copy(update={"metrics_port": metrics_port})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, registry, poll=True, push=True, metrics=True, stop=stop))
    try:
        await _wait_http(f"http://127.0.0.1:{push_port}/healthz")
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{push_port}/v1/articles",
                                    data=json.dumps({"source": "scraper-x", "title": "t", "body": "pushed body"}),
                                    headers={"Authorization": "Bearer serve-secret"}) as resp:
                assert resp.status == 202
        raw = await read_all(fast_settings, topics.RAW_ARTICLES, expect=4)
        assert sorted(v["source"] for _, _, v in raw) == ["scraper-x", "serve-ar", "serve-ar", "serve-ar"]
        not_modified = ("newsstream_source_polls_total", (("kind", "not_modified"), ("source", "serve-ar")))
        deadline = asyncio.get_running_loop().time() + 15
        while (samples := await _scrape(metrics_port)).get(not_modified, 0) < 1:  # one more poll: a 304
            assert asyncio.get_running_loop().time() < deadline, "no second poll within 15 s"
            await asyncio.sleep(0.1)
        assert samples[("newsstream_source_polls_total", (("kind", "ok"), ("source", "serve-ar")))] == 1
        assert samples[("newsstream_source_polls_total", (("kind", "not_modified"), ("source", "serve-ar")))] >= 1
        assert samples[("newsstream_source_cleaned_total", (("kind", "missing_link"), ("source", "serve-ar")))] == 1
        assert ("newsstream_source_last_success_timestamp_seconds", (("kind", "feed"), ("source", "serve-ar"))) in samples
        assert any(name == "newsstream_source_fetch_seconds_count" for name, _ in samples)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0

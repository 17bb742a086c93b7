"""The fetcher and the `newsstream fetch` dry run, against the local fixture server (no Kafka)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import typer
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.ingest.sources.http import DEFAULT_USER_AGENT, Fetcher, FetchError
from tests.sources.server import FixtureServer

TICKER = {"items": [
    {"time": "22:35", "text": "الخارجية التركية: إسرائيل تلعب دور المخرب"},
    {"time": "22:34", "text": "الخارجية التركية: - التساؤل واجب"},
]}


def _app() -> typer.Typer:
    return newsstream_cli


def _fetch(*args: str) -> tuple[list[dict], str, int]:
    result = CliRunner().invoke(_app(), ["fetch", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return lines, result.stderr, result.exit_code


async def test_conditional_get_user_agent_and_limits(site: FixtureServer) -> None:
    async with Fetcher(timeout_s=2, max_bytes=1024 * 1024) as f:
        first = await f.get(site.url("/feeds/ar.rss.xml"))
        assert first.status == 200 and first.etag
        again = await f.get(site.url("/feeds/ar.rss.xml"), etag=first.etag, last_modified=first.last_modified)
        assert again.not_modified and again.body == b""
        hit = [h for h in site.hits if h.path == "/feeds/ar.rss.xml"][-1]
        assert hit.headers["If-None-Match"] == first.etag and hit.headers["User-Agent"] == DEFAULT_USER_AGENT

        with pytest.raises(FetchError) as loop:
            await f.get(site.url("/bad/loop"))
        assert loop.value.kind == "redirect_loop"
        started = time.monotonic()
        with pytest.raises(FetchError) as huge:
            await f.get(site.url("/bad/huge"))  # 20 MB, no Content-Length: stopped while reading
        assert huge.value.kind == "too_large" and time.monotonic() - started < 5
        with pytest.raises(FetchError) as slow:
            await f.get(site.url("/slow/feed.xml"))
        assert slow.value.kind == "timeout"
        with pytest.raises(FetchError) as dead:
            await f.get(site.url("/dead/feed.xml"))
        assert dead.value.kind == "http_status" and dead.value.status == 500
        with pytest.raises(FetchError) as refused:
            await f.get("http://127.0.0.1:9/nothing")
        assert refused.value.kind == "connection"


async def test_robots_txt_is_respected_for_pages(site: FixtureServer) -> None:
    async with Fetcher(timeout_s=2) as f:
        with pytest.raises(FetchError) as exc:
            await f.get(site.url("/private/secret.html"), check_robots=True)
        assert exc.value.kind == "robots_disallowed"
        assert (await f.get(site.url("/pages/en-1.html"), check_robots=True)).status == 200
        assert (await f.get(site.url("/private/secret.html"))).status == 200  # feeds/tickers: no robots check
    assert site.count("/robots.txt") == 1  # cached per origin


async def test_per_host_concurrency_limit(site: FixtureServer) -> None:
    site.slow_s = 0.5
    async with Fetcher(timeout_s=5, per_host_concurrency=1) as f:
        started = time.monotonic()
        await asyncio.gather(*(f.get(site.url("/slow/feed.xml")) for _ in range(3)))
        assert time.monotonic() - started >= 1.4  # one at a time
    async with Fetcher(timeout_s=5, per_host_concurrency=3) as f:
        started = time.monotonic()
        await asyncio.gather(*(f.get(site.url("/slow/feed.xml")) for _ in range(3)))
        assert time.monotonic() - started < 1.4


def test_fetch_page_prints_article_and_ticker(site: FixtureServer) -> None:
    events, err, code = _fetch(site.url("/pages/ar-1.html"), "--tz", "Asia/Beirut", "--source", "ar-site")
    assert code == 0, err
    assert [e["kind"] for e in events] == ["article", "ticker", "ticker", "ticker"]
    article = events[0]
    assert article["source"] == "ar-site" and article["language"] == "ar" and article["schema_version"] == 1
    assert article["url"] == site.url("/pages/ar-1.html") and article["published_at"] == "2024-05-01T06:30:00Z"
    assert {"id", "title", "body", "fetched_at"} <= article.keys()
    assert events[2]["continues_previous"] and events[1]["thread_id"] == events[2]["thread_id"]


def test_fetch_feed_follows_links_unless_no_follow(site: FixtureServer) -> None:
    events, err, code = _fetch(site.url("/feeds/ar.rss.xml"))
    assert code == 0, err
    articles = [e for e in events if e["kind"] == "article"]
    assert len(articles) == 3 and sum(e["kind"] == "ticker" for e in events) == 3  # ar-1.html has a ticker
    assert articles[0]["body"].startswith("عقد وزراء الطاقة في عدد من دول المنطقة")  # the page, not the summary
    assert articles[1]["url"] == "https://news.example/sport/semifinal"  # the page's og:url, canonical
    assert articles[2]["url"] is None and articles[2]["published_at"] is None  # no link, no date: cleaned
    assert "missing_link" in err and "missing_date" in err
    assert site.count("/pages/ar-1.html") == 1

    events, err, code = _fetch(site.url("/feeds/ar.rss.xml"), "--no-follow")
    assert code == 0 and [e["kind"] for e in events] == ["article"] * 3
    assert events[0]["body"] == "عقد وزراء الطاقة اجتماعاً موسعاً اليوم."
    assert events[0]["title"] == "اجتماع وزاري لبحث أمن الطاقة"  # RLM and ZWSP removed
    assert site.count("/pages/ar-1.html") == 1  # not fetched again


def test_fetch_feed_bad_links_fall_back_or_dead_letter(site: FixtureServer) -> None:
    events, err, code = _fetch(site.url("/feeds/en.atom.xml"))
    assert code == 0, err
    by_title = {e["title"]: e for e in events}
    assert by_title["UN water conference opens in Geneva"]["body"].startswith("Delegates from more than one hundred")
    assert by_title["A page far too large to fetch"]["body"] == "The summary of the huge page is all we keep of it."
    assert by_title["Disallowed by robots.txt"]["body"].startswith("Only the feed's own summary")
    assert "A link that redirects forever" not in by_title
    assert "redirect_loop" in err and "page_too_large" in err and "page_robots_disallowed" in err
    assert site.count("/private/secret.html") == 0


def test_fetch_ticker_endpoint_json_and_html(site: FixtureServer) -> None:
    site.tickers["ar.json"] = (json.dumps(TICKER, ensure_ascii=False).encode(), "application/json")
    events, err, code = _fetch(site.url("/ticker/ar.json"), "--tz", "Asia/Beirut")
    assert code == 0, err
    assert [(e["kind"], e["time"], e["attribution"]) for e in events] == [
        ("ticker", "22:35", "الخارجية التركية"), ("ticker", "22:34", "الخارجية التركية")]
    assert events[1]["continues_previous"] and events[0]["thread_id"] == events[1]["thread_id"]
    events, err, code = _fetch(site.url("/pages/ticker.html"), "--kind", "ticker")
    assert code == 0 and [e["time"] for e in events] == ["23:58", "23:50"]


def test_fetch_errors_are_reported_not_raised(site: FixtureServer) -> None:
    events, err, code = _fetch(site.url("/dead/feed.xml"))
    assert code == 1 and events == [] and "http_status" in err
    events, err, code = _fetch(site.url("/feeds/broken.xml"), "--kind", "feed")
    assert code == 1 and "broken_xml" in err
    events, err, code = _fetch(site.url("/pages/badbytes.html"))
    assert code == 0 and events == [] and "invalid_encoding" in err
    events, err, code = _fetch(site.url("/pages/nobody.html"))
    assert code == 0 and events == [] and "empty_page" in err
    events, err, code = _fetch(site.url("/pages/cp1256.html"))
    assert code == 0 and events[0]["title"] == "تأهل الفريق إلى نصف النهائي" and "decoded_charset" in err


async def test_credentials_never_leave_the_source_host(site: FixtureServer) -> None:
    from newsstream.ingest.sources.base import Source
    from newsstream.ingest.sources.runner import Poller

    other = FixtureServer().start()  # a second host (another port) for the linked pages
    try:
        feed = (site.url("/feeds/x.xml"), b"")
        body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                f'<item><title>elsewhere</title><link>{other.url("/pages/en-1.html")}</link><guid>1</guid></item>'
                f'<item><title>here</title><link>{site.url("/pages/ar-2.html")}</link><guid>2</guid></item>'
                '</channel></rss>').encode()
        site.feeds["x.xml"] = (body, "application/rss+xml")
        source = Source(name="auth", kind="feed", url=feed[0], headers={"Authorization": "Bearer s3cret"})
        async with Fetcher(timeout_s=2) as f:
            out = await Poller(f).poll(source)
        assert len(out.events) == 2
        assert [h.headers.get("Authorization") for h in site.hits if h.path in ("/feeds/x.xml", "/pages/ar-2.html")] \
            == ["Bearer s3cret", "Bearer s3cret"]
        assert all("Authorization" not in h.headers for h in other.hits)
        # Nor through a redirect to another host.
        async with Fetcher(timeout_s=2) as f:
            from urllib.parse import quote

            result = await f.get(site.url("/redirect?to=" + quote(other.url("/pages/en-1.html"))),
                                 headers={"Authorization": "Bearer s3cret"})
        assert result.url == other.url("/pages/en-1.html") and result.redirects
        assert [h.headers.get("Authorization") for h in other.hits if h.path == "/pages/en-1.html"] == [None, None]
    finally:
        other.stop()

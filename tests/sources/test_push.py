"""The push endpoint over real HTTP, writing to the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.ingest.sources.push import (
    PushClient,
    PushConfig,
    openapi_document,
    push_app,
)
from newsstream.platform.settings import Settings
from tests.sources.kafka_util import count_by_key, read_all

pytestmark = pytest.mark.integration

GOOD, SCOPED = "tok-good-1234567890", "tok-scoped-abcdef"
ARTICLE = {"source": "partner", "url": "https://news.example/a/1?utm_source=x#top", "title": "عنوان\u200f الخبر",
           "body": "نص\u200b الخبر عن الاجتماع الوزاري.", "published_at": "2024-05-01T09:30:00+03:00"}
TICKER = {"source": "partner", "time": "22:35", "text": "إسرائيل تلعب دور المخرب", "attribution": "الخارجية التركية"}


@pytest.fixture
async def push(fast_settings: Settings) -> AsyncIterator[str]:
    config = PushConfig(
        tokens={GOOD: PushClient("good"), SCOPED: PushClient("scoped", frozenset({"other"}), frozenset({"article"}))},
        max_body_bytes=64 * 1024, max_items=50,
    )
    async with RawEventProducer(fast_settings) as producer:
        runner = web.AppRunner(push_app(producer, config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


async def _post(base: str, path: str, body: object, token: str | None = GOOD, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    h = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    async with aiohttp.ClientSession() as session, session.post(base + path, data=data, headers=h) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def test_accepted_items_are_on_the_broker(push: str, fast_settings: Settings) -> None:
    status, body, _ = await _post(push, "/v1/articles", ARTICLE)
    assert status == 202 and body["accepted"] == 1
    status, body2, _ = await _post(push, "/v1/ticker?tz=Asia/Beirut", {"items": [TICKER, {**TICKER, "time": "22:34", "text": "التساؤل واجب"}]})
    assert status == 202 and body2["accepted"] == 2
    # Same article again (another tracking parameter): same id, an upsert downstream.
    status, body3, _ = await _post(push, "/v1/articles", [{**ARTICLE, "url": "https://news.example/a/1?fbclid=z"}])
    assert status == 202 and body3["ids"] == body["ids"]

    records = await read_all(fast_settings, *topics.RAW_TOPICS, expect=4)
    assert len(records) == 4 and count_by_key(records)[body["ids"][0].encode()] == 2
    article = next(v for t, _, v in records if t == topics.RAW_ARTICLES)
    assert article["url"] == "https://news.example/a/1" and article["title"] == "عنوان الخبر"
    assert article["body"] == "نص الخبر عن الاجتماع الوزاري." and article["published_at"] == "2024-05-01T06:30:00Z"
    ticker = [v for t, _, v in records if t == topics.RAW_TICKER]
    assert {v["id"] for v in ticker} == set(body2["ids"])
    assert all(v["thread_id"].startswith("th_") for v in ticker)
    assert {v["time"] for v in ticker} == {"22:35", "22:34"}


@pytest.mark.parametrize(
    ("token", "headers", "status", "error"),
    [
        (None, {}, 401, "invalid_request"),
        (None, {"Authorization": "Basic dXNlcjpwdw=="}, 401, "invalid_request"),
        ("wrong-token", {}, 401, "invalid_token"),
        (SCOPED, {}, 403, "insufficient_scope"),  # may not push for source "partner"
    ],
)
async def test_bad_tokens(push: str, token: str | None, headers: dict, status: int, error: str) -> None:
    got, body, resp_headers = await _post(push, "/v1/articles", ARTICLE, token=token, headers=headers)
    assert (got, body["error"]) == (status, error)
    assert "Bearer" in resp_headers["WWW-Authenticate"]


async def test_scoped_token_kind(push: str) -> None:
    got, body, _ = await _post(push, "/v1/ticker", {**TICKER, "source": "other"}, token=SCOPED)
    assert (got, body["error"]) == (403, "insufficient_scope")
    got, body, _ = await _post(push, "/v1/articles", {**ARTICLE, "source": "other"}, token=SCOPED)
    assert got == 202


async def test_bad_payloads_get_clear_400s(push: str, fast_settings: Settings) -> None:
    got, body, _ = await _post(push, "/v1/articles", None, raw=b"{not json")
    assert (got, body["error"]) == (400, "invalid_json")
    got, body, _ = await _post(push, "/v1/articles", None, raw=b'{"source": "\xff\xfe"}')
    assert (got, body["error"]) == (400, "invalid_encoding")
    got, body, _ = await _post(push, "/v1/articles", [ARTICLE, {"source": "partner", "title": "no body"}, 7])
    assert (got, body["error"]) == (400, "validation_error")
    assert {(d["index"], d["field"]) for d in body["details"]} == {(1, "body"), (2, "<root>")}
    assert "nothing was accepted" in body["message"]
    got, body, _ = await _post(push, "/v1/articles", {**ARTICLE, "colour": "red"})
    assert got == 400 and body["details"][0]["field"] == "colour"
    got, body, _ = await _post(push, "/v1/ticker", {**TICKER, "time": "25:99"})
    assert got == 400 and any(d["field"] == "time" for d in body["details"])
    got, body, _ = await _post(push, "/v1/ticker", {**TICKER, "kind": "article"})
    assert got == 400 and body["details"][0]["field"] == "kind"
    got, body, _ = await _post(push, "/v1/articles", [])
    assert got == 400
    # Nothing of the rejected requests reached the broker.
    assert await read_all(fast_settings, *topics.RAW_TOPICS, idle_s=1.0, timeout_s=3) == []


async def test_oversize_is_413(push: str) -> None:
    big = {**ARTICLE, "body": "كلمة " * 20000}  # ~200 KB > 64 KiB
    got, body, _ = await _post(push, "/v1/articles", big)
    assert (got, body["error"]) == (413, "too_large")

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(100):
            yield b" " * 1024

    async with aiohttp.ClientSession() as session:
        async with session.post(push + "/v1/articles", data=chunks(),
                                headers={"Authorization": f"Bearer {GOOD}"}) as resp:
            assert resp.status == 413
    got, body, _ = await _post(push, "/v1/articles", [ARTICLE] * 51)
    assert (got, body["error"]) == (413, "too_many_items")


async def test_openapi_document_is_served(push: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(push + "/openapi.json") as resp:
        assert resp.status == 200 and await resp.json() == json.loads(json.dumps(openapi_document()))


async def test_permanent_errors_are_4xx_never_500_or_503(fast_settings: Settings) -> None:
    """Before: 503 "retry later" for an item over the record limit, 500 for a timestamp that
    overflows in UTC and for JSON nested deeper than orjson writes back, a slow body held for ever."""
    settings = fast_settings.model_copy(update={"max_record_bytes": 20_000})
    config = PushConfig(tokens={GOOD: PushClient("good")}, max_body_bytes=64 * 1024, max_items=50, body_timeout_s=0.5)
    async with RawEventProducer(settings) as producer:
        runner = web.AppRunner(push_app(producer, config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "body": "كلمة " * 5000})  # ~50 KB
            assert (got, body["error"]) == (413, "too_large")
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "published_at": "0001-01-01T00:00:00+01:00"})
            assert got == 400 and body["details"][0]["field"] == "published_at"
            deep: object = "x"
            for _ in range(300):
                deep = {"a": deep}
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "title": deep})
            assert got == 400 and body["error"] == "validation_error"
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "id": "a\u0000b"})
            assert got == 400 and body["details"][0]["field"] == "id"
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "body": "\u200b\u200e"})
            assert got == 400 and body["details"][0]["field"] == "body"  # cleaned to nothing
            got, body, _ = await _post(base, "/v1/articles", {**ARTICLE, "published_at": "2099-01-01T00:00:00Z"})
            assert got == 400 and "timestamp_out_of_range" in body["details"][0]["message"]
            # A body that never completes is answered 408 after body_timeout_s.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/articles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + GOOD.encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"source\":")
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
            assert b" 408 " in status_line
            writer.close()
        finally:
            await runner.cleanup()
    assert await read_all(fast_settings, *topics.RAW_TOPICS, idle_s=1.0, timeout_s=3) == []

"""The HTTP push endpoint: scrapers and partners POST items, we put them on the raw topics.

* ``POST /v1/articles`` and ``POST /v1/ticker``: one item (a JSON object), a
  batch (a JSON array) or ``{"items": [...]}``; all-or-nothing per request.
* Authentication: ``Authorization: Bearer <token>``. Missing, malformed or
  unknown token: **401** (``WWW-Authenticate: Bearer``, RFC 6750
  ``invalid_token``); a known token not allowed to push for that source or
  kind: **403** (``insufficient_scope``).
* Body limit (``max_body_bytes``, default 1 MiB), item limit (``max_items``)
  and an item over the record limit (``NEWSSTREAM_MAX_RECORD_BYTES``): **413**,
  checked on Content-Length, while reading and before anything is sent. A
  body that does not arrive within ``body_timeout_s``: **408**.
* Bad input (not UTF-8, not JSON, failing the raw schema): **400** with
  ``{"error": reason, "message": ..., "details": [{"index", "field", "message"}]}``.
* **202** ``{"accepted": n, "ids": [...]}`` only after the broker
  acknowledged every item; **503** when it did not (the only answer worth a
  retry: every 4xx is permanent).

Pushed text is cleaned like fetched text (bidi controls and zero-width
characters removed, NFC) and article URLs are canonicalised, so a pushed
article and the same article fetched from its page have one id. A ticker
item may give ``time`` without ``published_at``: the time is resolved in the
zone given by ``?tz=`` (default UTC) like a polled ticker's; without
``thread_id`` a line is its own thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiohttp import web
from pydantic import ValidationError

from newsstream.contract import wire
from newsstream.contract.ids import stable_hash
from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.errors import DataError, NewsstreamError
from newsstream.ingest.events import (
    admit,
    event_from_record,
    resolve_clock_time,
    source_thread_id,
)
from newsstream.ingest.sources.textutil import clean, count_invisible
from newsstream.ingest.sources.urls import canonical_url
from newsstream.platform import metrics

log = logging.getLogger(__name__)

PUSH_KIND = "push"
_TEXT_FIELDS = ("title", "body", "text", "attribution", "source")


class AckSink(Protocol):
    async def emit_acked(self, events: list[RawArticle | RawTickerItem]) -> None: ...


@dataclass(frozen=True)
class PushClient:
    """A token holder: ``sources`` None means any source; ``kinds`` the endpoints it may use."""

    name: str
    sources: frozenset[str] | None = None
    kinds: frozenset[str] = frozenset({"article", "ticker"})


@dataclass
class PushConfig:
    tokens: Mapping[str, PushClient] = field(default_factory=dict)
    max_body_bytes: int = 1024 * 1024
    max_items: int = 500
    body_timeout_s: float = 30.0  # a body still incomplete after this is answered 408


class PushError(NewsstreamError):
    """A request the push API refuses, with its HTTP status and error code."""

    def __init__(self, status: int, error: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details or []

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            body["details"] = self.details
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = f'Bearer realm="newsstream", error="{self.error}"'
        elif self.status == 403:
            headers["WWW-Authenticate"] = 'Bearer realm="newsstream", error="insufficient_scope"'
        return web.Response(
            status=self.status, body=orjson.dumps(body), content_type="application/json", headers=headers
        )


def _authenticate(request: web.Request, config: PushConfig) -> PushClient:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise PushError(401, "invalid_request", "missing Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushError(401, "invalid_request", "Authorization must be 'Bearer <token>'")
    token = token.strip()
    for known, client in config.tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):  # constant time
            return client
    raise PushError(401, "invalid_token", "unknown token")


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PushError(413, "too_large", f"body of {request.content_length} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    try:
        # A client that stops sending must not hold a connection (and its buffer) for ever.
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise PushError(413, "too_large", f"body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise PushError(408, "timeout", f"the body did not arrive within {timeout_s:g} s") from None
    return b"".join(chunks)


def _items_of(body: bytes, max_items: int) -> list[Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushError(400, "invalid_encoding", f"body is not UTF-8: {exc}") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise PushError(400, "invalid_json", f"body is not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list) and set(data) == {"items"}:
        data = data["items"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise PushError(400, "validation_error", "no items in the request")
    if len(items) > max_items:
        raise PushError(413, "too_many_items", f"{len(items)} items exceed the limit of {max_items} per request")
    return items


def _prepare(record: dict[str, Any], kind: str, now: datetime, tz: ZoneInfo) -> tuple[dict[str, Any], int]:
    """Clean text fields, canonicalise the URL, fill ticker defaults. Returns (record, invisible chars removed)."""
    record = dict(record)
    record.setdefault("kind", kind)
    removed = 0
    for name in _TEXT_FIELDS:
        if isinstance(record.get(name), str):
            removed += count_invisible(record[name])
            record[name] = clean(record[name])
    if kind == "article" and isinstance(record.get("url"), str):
        record["url"] = canonical_url(record["url"]) or record["url"]
    if kind == "ticker":
        t = record.get("time")
        if not record.get("published_at") and isinstance(t, str) and len(t) == 5 and t[2] == ":" and t.replace(":", "").isdigit():
            try:
                record["published_at"] = resolve_clock_time(t, now, tz).isoformat()
            except ValueError:
                pass  # an impossible time like 25:99: the schema's error says so
        if not record.get("thread_id") and isinstance(record.get("source"), str):
            line = stable_hash(str(record.get("published_at")), str(record.get("text")), str(record.get("attribution")))
            record["thread_id"] = source_thread_id(record["source"], "push_" + line)
    return record, removed


def _validate(items: list[Any], kind: str, now: datetime, tz: ZoneInfo) -> tuple[list[RawArticle | RawTickerItem], int]:
    events: list[RawArticle | RawTickerItem] = []
    details: list[dict[str, Any]] = []
    removed = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            details.append({"index": index, "field": "<root>", "message": "an item must be a JSON object"})
            continue
        if item.get("kind", kind) != kind:
            details.append({"index": index, "field": "kind", "message": f"this endpoint takes kind {kind!r}"})
            continue
        record, n = _prepare(item, kind, now, tz)
        removed += n
        try:
            # A timestamp without an offset is read in ?tz= (default UTC); the event carries UTC.
            event = event_from_record(record, now, tz)
            admit(event, now)
            events.append(event)
        except ValidationError as exc:
            for err in exc.errors()[:10]:
                loc = ".".join(str(p) for p in err["loc"][1:] if p != kind) or ".".join(str(p) for p in err["loc"])
                details.append({"index": index, "field": loc or "<root>", "message": err["msg"]})
        except DataError as exc:
            details.append({"index": index, "field": "<root>", "message": f"{exc.reason}: {exc}"})
    if details:
        raise PushError(400, "validation_error", f"{len({d['index'] for d in details})} of {len(items)} item(s) invalid; nothing was accepted", details)
    return events, removed


def push_app(sink: AckSink, config: PushConfig, *, clock=wire.utcnow) -> web.Application:  # type: ignore[no-untyped-def]
    async def handle(request: web.Request, kind: str) -> web.Response:
        client_name = "anonymous"
        try:
            client = _authenticate(request, config)
            client_name = client.name
            if kind not in client.kinds:
                raise PushError(403, "insufficient_scope", f"token {client.name!r} may not push {kind} items")
            body = await _read_body(request, config.max_body_bytes, config.body_timeout_s)
            try:
                tz = ZoneInfo(request.query.get("tz", "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                raise PushError(400, "invalid_tz", f"unknown time zone {request.query.get('tz')!r}") from None
            events, removed = _validate(_items_of(body, config.max_items), kind, clock(), tz)
            denied = sorted({e.source for e in events if client.sources is not None and e.source not in client.sources})
            if denied:
                raise PushError(403, "insufficient_scope", f"token {client.name!r} may not push for source(s) {denied}")
        except PushError as exc:
            metrics.SOURCE_POLL_ERRORS.labels(client_name, f"push_{exc.status}").inc()
            return exc.response()
        try:
            await sink.emit_acked(events)
        except DataError as exc:  # an item over the record limit: retrying cannot help
            status = 413 if exc.reason == "too_large" else 400
            metrics.SOURCE_POLL_ERRORS.labels(client_name, f"push_{status}").inc()
            return PushError(status, exc.reason, f"{exc}; nothing was accepted").response()
        except Exception as exc:  # KafkaError and friends: the client must retry
            log.warning("push: broker did not acknowledge %d item(s): %s", len(events), exc)
            metrics.SOURCE_POLL_ERRORS.labels(client_name, "push_503").inc()
            return PushError(503, "unavailable", "the broker did not acknowledge the write; retry later").response()
        if removed:
            metrics.SOURCE_CLEANED.labels(client_name, "invisible_chars").inc(removed)
        return web.Response(
            status=202, content_type="application/json",
            body=orjson.dumps({"accepted": len(events), "ids": [e.id for e in events]}),
        )

    async def articles(request: web.Request) -> web.Response:
        return await handle(request, "article")

    async def ticker(request: web.Request) -> web.Response:
        return await handle(request, "ticker")

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2),
                            content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": "push"})

    # client_max_size is a backstop; the handler enforces the configured limit with a JSON 413.
    app = web.Application(client_max_size=config.max_body_bytes + 1024)
    app.router.add_post("/v1/articles", articles)
    app.router.add_post("/v1/ticker", ticker)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    return app


# ---------------------------------------------------------------------- OpenAPI

def _item_schema(model: type[RawArticle | RawTickerItem]) -> dict[str, Any]:
    # The edge refuses unknown fields (wire.validate_raw), though the topic's readers ignore them.
    schema = {"additionalProperties": False, **model.model_json_schema(mode="validation")}
    schema.pop("title", None)
    optional = {"id", "fetched_at", "schema_version", "kind"}
    if model is RawTickerItem:
        optional |= {"published_at", "thread_id"}
    schema["required"] = [r for r in schema.get("required", []) if r not in optional]
    return schema


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the push API (committed as docs/push-openapi.json)."""
    error = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "examples": ["validation_error", "invalid_json", "too_large", "invalid_token"]},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}}},
            },
        },
    }

    def body(ref: str) -> dict[str, Any]:
        item = {"$ref": f"#/components/schemas/{ref}"}
        return {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            item, {"type": "array", "items": item},
            {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": item}}},
        ]}}}}

    def err(desc: str) -> dict[str, Any]:
        return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    responses = {
        "202": {"description": "Accepted: every item was acknowledged by the broker.", "content": {"application/json": {
            "schema": {"type": "object", "required": ["accepted", "ids"], "properties": {
                "accepted": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}}}}}},
        "400": err("Not UTF-8, not JSON, or an item fails the raw schema; nothing was accepted."),
        "401": err("Missing, malformed or unknown bearer token."),
        "403": err("The token may not push this kind or for this source."),
        "413": err("Body larger than the limit, or too many items."),
        "503": err("The broker did not acknowledge the write; retry."),
    }
    tz_param = {"name": "tz", "in": "query", "required": False, "schema": {"type": "string", "default": "UTC"},
                "description": "IANA time zone of ticker clock times given without published_at."}
    return {
        "openapi": "3.1.0",
        "info": {"title": "newsstream push API", "version": "1.0.0",
                 "description": "Push raw articles and breaking-news ticker lines onto newsstream's raw topics."},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/articles": {"post": {"summary": "Push one article or a batch", "operationId": "pushArticles",
                                      "requestBody": body("RawArticleIn"), "responses": responses}},
            "/v1/ticker": {"post": {"summary": "Push one ticker line or a batch", "operationId": "pushTicker",
                                    "parameters": [tz_param], "requestBody": body("RawTickerItemIn"),
                                    "responses": responses}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"RawArticleIn": _item_schema(RawArticle), "RawTickerItemIn": _item_schema(RawTickerItem),
                        "Error": error},
        },
    }


if __name__ == "__main__":  # python -m newsstream.ingest.sources.push > docs/push-openapi.json
    import sys

    sys.stdout.buffer.write(orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2) + b"\n")

"""Polling sources and handing their events to the broker exactly once.

:class:`Poller` turns one poll of a source into an :class:`Outcome` (fetch,
parse, keep only what the state has not seen); :func:`commit` emits the
outcome, waits for the broker's acknowledgement, and only then records the
seen keys, thread ids and HTTP validators. A crash between the two re-emits
the same events with the same ids on the next start (harmless downstream),
and a clean restart emits nothing twice.

:class:`SourceRunner` runs one task per source: interval on success,
exponential backoff with jitter on failure, so a slow or dead feed only ever
delays itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import orjson

from newsstream.contract import wire
from newsstream.contract.ids import article_id, stable_hash
from newsstream.contract.models import DeadLetter, RawArticle, RawTickerItem
from newsstream.errors import InfrastructureError
from newsstream.ingest.sources.base import STAGE, Outcome, RawItem, Source
from newsstream.ingest.sources.feed import (
    FeedError,
    FeedItem,
    looks_like_feed,
    parse_feed,
)
from newsstream.ingest.sources.http import Fetcher, FetchError, FetchResult
from newsstream.ingest.sources.page import page_outcome
from newsstream.ingest.sources.state import SourceState
from newsstream.ingest.sources.textutil import decode_body
from newsstream.ingest.sources.ticker import (
    TickerFormatError,
    attribution_key,
    rethread,
    ticker_events,
)
from newsstream.ingest.sources.urls import host_of
from newsstream.platform import metrics

log = logging.getLogger(__name__)


class EventSink(Protocol):
    async def emit(self, event: RawArticle | RawTickerItem, input_ref: str | None = None) -> None: ...
    async def emit_dead_letter(self, letter: DeadLetter) -> None: ...
    async def flush(self) -> None: ...


def transient(exc: FetchError) -> bool:
    """Worth another try on the next poll (timeouts, refused connections, 5xx, 429); the rest is final."""
    if exc.kind in ("timeout", "connection"):
        return True
    return exc.kind == "http_status" and (exc.status or 0) in range(500, 600) or exc.status == 429


class PollError(InfrastructureError):
    """A source-level failure (the feed itself, not one item): counted and retried with backoff."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def item_key(event: RawItem) -> str:
    """Seen-key of an event: a ticker line by id; an article by id *and* content, so an edit is re-emitted."""
    if isinstance(event, RawTickerItem):
        return event.id
    return f"{event.id}:{stable_hash(event.title, event.body, size=8)}"


def detect_kind(result: FetchResult) -> str:
    if looks_like_feed(result.body, result.content_type):
        return "feed"
    if "json" in result.content_type or result.body.lstrip()[:1] in (b"{", b"["):
        return "ticker"
    return "page"


class Poller:
    def __init__(
        self, fetcher: Fetcher, state: SourceState | None = None, *, clock: Callable[[], datetime] = wire.utcnow,
        page_attempts: int = 3,
    ) -> None:
        self.fetcher = fetcher
        self.state = state
        self.clock = clock
        self.page_attempts = page_attempts  # polls that try a linked page before using the entry's own text
        self._attempts: dict[tuple[str, str], int] = {}

    # --------------------------------------------------------------- fetching

    async def _fetch(self, source: Source, url: str, *, conditional: bool, robots: bool, what: str) -> FetchResult:
        etag = last_modified = None
        if conditional and self.state is not None:
            etag, last_modified = self.state.validators(url)
        # The source's headers (credentials included) go to the source's own host only, not to article
        # pages elsewhere that its items link to.
        headers = source.headers if host_of(url) == host_of(source.url) else {}
        started = time.monotonic()
        try:
            return await self.fetcher.get(
                url, etag=etag, last_modified=last_modified, headers=headers, check_robots=robots
            )
        finally:
            metrics.SOURCE_FETCH_SECONDS.labels(source.name, what).observe(time.monotonic() - started)

    # --------------------------------------------------------------- polls

    async def poll(self, source: Source, kind: str | None = None) -> Outcome:
        """One poll. Raises :class:`PollError` for a source-level failure."""
        kind = kind or source.kind
        try:
            result = await self._fetch(source, source.url, conditional=True, robots=kind == "page", what=kind)
        except FetchError as exc:
            raise PollError(exc.kind, exc.message) from None
        if result.not_modified:
            return Outcome(not_modified=True)
        if kind == "auto":
            kind = detect_kind(result)
        if kind == "feed":
            out = await self._feed(source, result)
        elif kind == "ticker":
            out = self._ticker(source, result)
        else:
            out = self._page(source, result)
        # An item deferred for a transient failure must be seen again: no validators, no 304 next time.
        out.validators = None if out.deferred else (source.url, result.etag, result.last_modified)
        return out

    def _filter_new(self, source: Source, out: Outcome) -> Outcome:
        """Keep only events the state has not seen; rethread ticker lines."""
        lines = [e for e in out.events if isinstance(e, RawTickerItem)]
        if self.state is not None and lines:
            state = self.state
            lines = rethread(
                lines,
                known_thread=lambda item_id: state.thread_of(source.name, item_id),
            )
        events: list[RawItem] = [e for e in out.events if isinstance(e, RawArticle)] + lines
        keys = [item_key(e) for e in events]
        new = set(self.state.unseen(source.name, keys)) if self.state is not None else set(keys)
        out.events = [e for e, k in zip(events, keys) if k in new]
        out.seen_keys = [k for k in keys if k in new]
        out.threads = [
            (e.id, e.thread_id, attribution_key(e), e.published_at.isoformat())
            for e in out.events if isinstance(e, RawTickerItem)
        ]
        return out

    def _page(self, source: Source, result: FetchResult) -> Outcome:
        fetched_at = self.clock()
        try:
            decoded = decode_body(result.body, result.charset)
        except UnicodeDecodeError as exc:
            return _dead(result.body, "invalid_encoding", f"neither the declared charset nor UTF-8: {exc}", result.url)
        out = page_outcome(
            decoded.text, source=source.name, url=result.url, fetched_at=fetched_at, tz=source.tz,
            language=source.language, payload=result.body, plain_text=result.content_type.startswith("text/plain"),
        )
        if decoded.declared and decoded.encoding not in ("utf-8", "utf8"):
            out.clean("decoded_charset")
        return self._filter_new(source, out)

    def _ticker(self, source: Source, result: FetchResult) -> Outcome:
        try:
            lines, bad = ticker_events(
                result.body, source=source.name, fetched_at=self.clock(), tz=source.tz,
                content_type=result.content_type, charset=result.charset,
            )
        except TickerFormatError as exc:
            return _dead(result.body, exc.kind, str(exc), result.url)
        out = Outcome(events=list(lines))
        if bad:
            out.error("bad_item", bad)
        return self._filter_new(source, out)

    async def _feed(self, source: Source, result: FetchResult) -> Outcome:
        try:
            feed = parse_feed(result.body, content_type=result.content_type, charset=result.charset, url=result.url)
        except FeedError as exc:
            if exc.kind == "invalid_encoding":
                return _dead(result.body, exc.kind, exc.message, result.url)
            raise PollError(exc.kind, exc.message) from None
        out = Outcome()
        if feed.loose:
            out.clean("loose_xml")
        items = feed.items[: source.max_items]
        keys = [i.key for i in items]
        new = set(self.state.unseen(source.name, keys)) if self.state is not None else set(keys)
        fresh = [i for i in items if i.key in new]
        for item_out in await asyncio.gather(*(self._feed_item(source, i, feed.language) for i in fresh)):
            out.extend(item_out)
        return out

    async def _feed_item(self, source: Source, item: FeedItem, feed_language: str | None) -> Outcome:
        out = Outcome(seen_keys=[item.key])
        out.clean("invisible_chars", item.invisible_chars)
        if item.published_at is None:
            out.clean("missing_date")
        language = item.language or source.language or feed_language
        failure: tuple[str, str] | None = None
        if item.link and source.follow:
            try:
                result = await self._fetch(source, item.link, conditional=False, robots=True, what="page")
                decoded = decode_body(result.body, result.charset)
                page = page_outcome(
                    decoded.text, source=source.name, url=item.link, fetched_at=self.clock(), tz=source.tz,
                    language=language, fallback_title=item.title, fallback_published=item.published_at,
                    payload=result.body, plain_text=result.content_type.startswith("text/plain"),
                )
                if page.events:
                    page.seen_keys = []
                    page = self._filter_new(source, page)  # ticker lines of a page already seen
                    page.seen_keys.append(item.key)
                    return page
                failure = ("empty_page", "the linked page has no article text")
            except FetchError as exc:
                failure = (exc.kind, exc.message)
                if transient(exc) and self._attempts.get((source.name, item.key), 0) + 1 < self.page_attempts:
                    # The outlet's server is having a bad moment: try this item again next poll
                    # instead of settling for the feed's summary.
                    self._attempts[(source.name, item.key)] = self._attempts.get((source.name, item.key), 0) + 1
                    deferred = Outcome(deferred=1)
                    deferred.error("page_" + exc.kind)
                    return deferred
            except UnicodeDecodeError as exc:
                failure = ("invalid_encoding", str(exc))
            out.error("page_" + failure[0])
        self._attempts.pop((source.name, item.key), None)
        if not item.link:
            out.clean("missing_link")
        if item.text:
            event = RawArticle(
                id=article_id(source.name, item.link, item.title, item.text), source=source.name, url=item.link,
                title=item.title, body=item.text, language=language, published_at=item.published_at,
                fetched_at=self.clock(),
            )
            out.events.append(event)
            return out
        if failure is None:
            out.error("empty_item")
        reason, detail = failure or ("empty_item", "feed entry without text" + ("" if item.link else " or link"))
        letter = wire.dead_letter(
            orjson.dumps({"title": item.title, "link": item.link, "key": item.key}),
            stage=STAGE, reason=reason, error=detail, input_ref=item.link or f"{source.url}#{item.key}",
        )
        out.dead_letters.append(letter)
        return out


def _dead(payload: bytes, reason: str, error: str, ref: str) -> Outcome:
    out = Outcome(dead_letters=[wire.dead_letter(payload, stage=STAGE, reason=reason, error=error, input_ref=ref)])
    out.error(reason)
    return out


async def commit(source: Source, out: Outcome, sink: EventSink, state: SourceState | None) -> None:
    """Emit, wait for the broker's ack, then remember (see the module doc)."""
    for event in out.events:
        await sink.emit(event)
    for letter in out.dead_letters:
        await sink.emit_dead_letter(letter)
    await sink.flush()
    if state is not None:
        if out.threads:
            state.remember_threads(source.name, out.threads)
        if out.seen_keys:
            state.mark_seen(source.name, out.seen_keys)
        if out.validators is not None:
            state.set_validators(*out.validators)
    for kind, n in out.errors.items():
        metrics.SOURCE_POLL_ERRORS.labels(source.name, kind).inc(n)
    for kind, n in out.cleaned.items():
        metrics.SOURCE_CLEANED.labels(source.name, kind).inc(n)


class SourceRunner:
    """One polling task per source, sharing a fetcher, a sink and the state."""

    def __init__(
        self,
        sources: list[Source],
        *,
        fetcher: Fetcher,
        sink: EventSink,
        state: SourceState,
        max_backoff_s: float = 900.0,
        clock: Callable[[], datetime] = wire.utcnow,
    ) -> None:
        self.sources = sources
        self.poller = Poller(fetcher, state, clock=clock)
        self.sink = sink
        self.state = state
        self.max_backoff_s = max_backoff_s
        self.failures: dict[str, int] = {s.name: 0 for s in sources}
        self.last_error: dict[str, str] = {}

    async def poll_once(self, source: Source) -> Outcome | None:
        """Poll and commit one source; None when the poll failed (counted, logged)."""
        try:
            out = await self.poller.poll(source)
        except PollError as exc:
            self.failures[source.name] += 1
            self.last_error[source.name] = str(exc)
            metrics.SOURCE_POLLS.labels(source.name, "error").inc()
            metrics.SOURCE_POLL_ERRORS.labels(source.name, exc.kind).inc()
            log.warning("source %s: %s (failure %d)", source.name, exc, self.failures[source.name])
            return None
        await commit(source, out, self.sink, self.state)
        self.failures[source.name] = 0
        metrics.SOURCE_POLLS.labels(source.name, "not_modified" if out.not_modified else "ok").inc()
        metrics.observe_poll_success(source.name, source.kind)
        return out

    def next_delay(self, source: Source) -> float:
        n = self.failures[source.name]
        if n == 0:
            return source.interval_s
        return min(source.interval_s * 2 ** min(n, 16), self.max_backoff_s) * random.uniform(0.9, 1.1)

    async def run_source(self, source: Source, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once(source)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one source's handling must not end its loop or the others
                self.failures[source.name] += 1
                metrics.SOURCE_POLL_ERRORS.labels(source.name, "internal").inc()
                log.exception("source %s: unexpected error", source.name)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.next_delay(source))
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await asyncio.gather(*(self.run_source(s, stop) for s in self.sources))

    async def run_once(self) -> dict[str, Outcome | None]:
        """Poll every source once, concurrently."""
        results = await asyncio.gather(*(self.poll_once(s) for s in self.sources))
        return dict(zip((s.name for s in self.sources), results))

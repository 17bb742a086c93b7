"""The ingest service's Kafka shell: validated raw events onto the raw topics.

Every event is keyed by its stable id, so a partition holds all versions of
an item in order and re-ingesting is idempotent downstream. Input that fails
validation goes to the dead-letter topic with its reason; it never stops the
producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from newsstream.contract import topics, wire
from newsstream.contract.models import DeadLetter, RawArticle, RawTickerItem
from newsstream.errors import DataError
from newsstream.ingest.events import (
    admit,
    event_from_json_line,
    events_from_page_text,
    page_text,
    read_jsonl,
)
from newsstream.platform import metrics
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.settings import Settings
from newsstream.text.wording import counted

log = logging.getLogger(__name__)

SERVICE = "ingest"
LOGGED_DEAD_LETTERS = 10  # logged one by one; after that one line per thousand
MAX_PENDING = 10_000  # deliveries awaited at once; then the producer flushes
# What an event kind is called in a summary line.
KIND_NOUNS = {"article": "article", "ticker": "ticker line"}


@dataclass
class IngestReport:
    emitted: Counter[str] = field(default_factory=Counter)  # by kind
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason

    @property
    def total_emitted(self) -> int:
        return sum(self.emitted.values())

    @property
    def total_dead_letters(self) -> int:
        return sum(self.dead_letters.values())

    def summary(self) -> str:
        kinds = ", ".join(counted(n, KIND_NOUNS.get(kind, kind)) for kind, n in sorted(self.emitted.items())) or "nothing"
        text = f"emitted {kinds}"
        if self.dead_letters:
            # Reasons are codes (invalid_json), not nouns: counted as they are.
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dead_letters.items()))
            text += f"; {counted(self.total_dead_letters, 'dead letter')}: {reasons}"
        return text


class RawEventProducer:
    """Async context manager: ``async with RawEventProducer(settings) as p: await p.emit(event)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.report = IngestReport()
        self._producer: AIOKafkaProducer | None = None
        # Delivery futures since the last flush: aiokafka's flush() waits for
        # batches but never raises, so failures are only seen on these.
        self._pending: list[asyncio.Future[object]] = []

    async def __aenter__(self) -> "RawEventProducer":
        await ensure_topics(self.settings)
        self._producer = await start_producer(self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            try:
                await self.flush()
            finally:
                await self._producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "use RawEventProducer as an async context manager"
        return self._producer

    def _checked(self, event: RawArticle | RawTickerItem) -> bytes:
        """The event's record value, once it passes the checks every entry point applies
        (:func:`newsstream.ingest.events.admit`, and the record size limit); raises :class:`DataError`."""
        admit(event, wire.utcnow())
        value = wire.dumps(event)
        if len(value) > self.settings.max_record_bytes:
            raise DataError(
                f"the event is {len(value):,} bytes, over the record limit of {self.settings.max_record_bytes:,}"
                " (NEWSSTREAM_MAX_RECORD_BYTES)", reason="too_large",
            )
        return value

    async def emit(self, event: RawArticle | RawTickerItem, input_ref: str | None = None) -> None:
        """Send one event; one that fails the checks becomes a dead letter and the run goes on."""
        topic = topics.RAW_TOPIC_BY_KIND[event.kind]
        ref = input_ref or getattr(event, "url", None) or event.id
        try:
            value = self._checked(event)
            # send() only buffers; delivery is confirmed by flush(), which raises
            # when any send since the last flush failed.
            await self._send(topic, value, event.id)
        except (DataError, MessageSizeTooLargeError) as exc:
            # Refused before it left: the item itself is the problem, not the broker.
            reason = exc.reason if isinstance(exc, DataError) else "too_large"
            await self.emit_dead_letter(
                wire.dead_letter(wire.dumps(event), stage=SERVICE, reason=reason, error=str(exc), input_ref=ref)
            )
            metrics.observe_source_error(event.source, reason)
            return
        metrics.ITEMS_OUT.labels(SERVICE, topic).inc()
        metrics.observe_item_source(event.source, event.kind)  # freshness: the "no news from X" alert
        self.report.emitted[event.kind] += 1

    async def emit_dead_letter(self, letter: DeadLetter) -> None:
        await self._send(topics.DEAD_LETTERS, wire.dumps(letter), letter.id)
        metrics.DEAD_LETTERS.labels(SERVICE, topics.DEAD_LETTERS, letter.reason).inc()
        self.report.dead_letters[letter.reason] += 1
        total = self.report.total_dead_letters
        # The first few one by one, then a line now and then: a file of bad lines
        # must not turn into a flood of identical warnings.
        if total <= LOGGED_DEAD_LETTERS:
            log.warning(
                "dead letter %s: %s %s", letter.input_ref, letter.reason, letter.error[:200],
                extra={"input_ref": letter.input_ref, "reason": letter.reason, "dead_letter_id": letter.id},
            )
        if total == LOGGED_DEAD_LETTERS or (total > LOGGED_DEAD_LETTERS and total % 1000 == 0):
            log.warning("%d dead letters so far (%s); further ones are counted, not logged one by one", total,
                        ", ".join(f"{n} {reason}" for reason, n in self.report.dead_letters.most_common()))

    async def send_record(self, topic: str, key: str, value: bytes) -> None:
        """Send a record as it is, without the checks of :meth:`emit` (a re-driven dead letter's raw
        event: ``newsstream dlq replay``); delivery is confirmed by :meth:`flush`, which raises on a failure."""
        await self._send(topic, value, key)

    async def _send(self, topic: str, value: bytes, key: str) -> None:
        self._pending.append(await self.producer.send(topic, value, key=key.encode()))
        if len(self._pending) >= MAX_PENDING:  # bounded memory on a long import
            await self.flush()

    async def flush(self) -> None:
        """Wait until the broker acknowledged everything sent so far; raise the first failure."""
        pending, self._pending = self._pending, []
        await self.producer.flush()
        if pending:
            await asyncio.gather(*pending)

    async def emit_acked(self, events: list[RawArticle | RawTickerItem]) -> None:
        """Send events and return only when the broker acknowledged every one of them.

        For callers that answer someone only after the write is durable (the
        HTTP push endpoint answers 202 after this returns). Raises
        :class:`DataError` before sending anything when an event fails the
        checks, and the delivery error (a ``KafkaError``) if any send failed.
        """
        values = [self._checked(e) for e in events]  # all or nothing: check every one before sending any
        futures = [
            await self.producer.send(topics.RAW_TOPIC_BY_KIND[e.kind], value, key=e.id.encode())
            for e, value in zip(events, values)
        ]
        if futures:
            await asyncio.gather(*futures)
        observe_source = getattr(metrics, "observe_item_source", None)
        for event in events:
            metrics.ITEMS_OUT.labels(SERVICE, topics.RAW_TOPIC_BY_KIND[event.kind]).inc()
            if observe_source is not None:
                observe_source(event.source, event.kind)
            self.report.emitted[event.kind] += 1

    async def ingest_page(
        self,
        path: Path,
        *,
        source: str,
        url: str | None = None,
        tz: ZoneInfo = ZoneInfo("UTC"),
        fetched_at: datetime | None = None,
    ) -> None:
        """One page file: its article and ticker lines, or one dead letter if it cannot be read."""
        raw = path.read_bytes()
        try:
            events = events_from_page_text(
                page_text(raw), source=source, url=url, tz=tz, fetched_at=fetched_at or wire.utcnow()
            )
        except Exception as exc:
            letter = wire.dead_letter_for(raw, exc, stage=SERVICE, input_ref=str(path))
            await self.emit_dead_letter(letter)
            metrics.observe_source_error(source, letter.reason)
            return
        if not events:
            metrics.observe_source_error(source, "empty_page")
            await self.emit_dead_letter(
                wire.dead_letter(
                    raw, stage=SERVICE, reason="empty_page", error="no article text and no ticker lines found",
                    input_ref=str(path),
                )
            )
        for event in events:
            await self.emit(event, input_ref=str(path))

    async def ingest_jsonl(self, path: Path, fetched_at: datetime | None = None, tz: ZoneInfo | None = None) -> None:
        """Every line a raw event; bad lines become dead letters, the rest go on."""
        await self.ingest_json_lines(((f"{path}:{n}", line) for n, line in read_jsonl(str(path))), fetched_at, tz)

    async def ingest_json_lines(self, lines: Iterable[tuple[str, bytes]], fetched_at: datetime | None = None,
                                tz: ZoneInfo | None = None) -> None:
        """``tz``: the zone of timestamps without an offset (without it such a line is a dead letter)."""
        fetched_at = fetched_at or wire.utcnow()
        for ref, line in lines:
            try:
                event = event_from_json_line(line, fetched_at, tz)
            except Exception as exc:
                await self.emit_dead_letter(wire.dead_letter_for(line, exc, stage=SERVICE, input_ref=ref))
                continue
            await self.emit(event, input_ref=ref)

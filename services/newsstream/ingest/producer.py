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
from newsstream.ingest.events import (
    event_from_json_line,
    events_from_page_text,
    read_jsonl,
)
from newsstream.platform import metrics
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "ingest"


@dataclass
class IngestReport:
    emitted: Counter[str] = field(default_factory=Counter)  # by kind
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason
    dead_letter_refs: list[str] = field(default_factory=list)

    @property
    def total_emitted(self) -> int:
        return sum(self.emitted.values())

    @property
    def total_dead_letters(self) -> int:
        return sum(self.dead_letters.values())

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.emitted.items())) or "nothing"
        text = f"emitted {kinds}"
        if self.dead_letters:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dead_letters.items()))
            text += f"; {self.total_dead_letters} dead letter(s): {reasons}"
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

    async def emit(self, event: RawArticle | RawTickerItem) -> None:
        topic = topics.RAW_TOPIC_BY_KIND[event.kind]
        value = wire.dumps(event)
        try:
            # send() only buffers; delivery is confirmed by flush(), which raises
            # when any send since the last flush failed.
            self._pending.append(await self.producer.send(topic, value, key=event.id.encode()))
        except MessageSizeTooLargeError as exc:
            # Refused before it left: the item itself is the problem, not the broker.
            await self.emit_dead_letter(
                wire.dead_letter(value, stage=SERVICE, reason="too_large", error=str(exc), input_ref=event.url or event.id)
            )
            return
        metrics.ITEMS_OUT.labels(SERVICE, topic).inc()
        metrics.observe_item_source(event.source, event.kind)  # freshness: the "no news from X" alert
        self.report.emitted[event.kind] += 1

    async def emit_dead_letter(self, letter: DeadLetter) -> None:
        self._pending.append(await self.producer.send(topics.DEAD_LETTERS, wire.dumps(letter), key=letter.id.encode()))
        metrics.DEAD_LETTERS.labels(SERVICE, topics.DEAD_LETTERS, letter.reason).inc()
        self.report.dead_letters[letter.reason] += 1
        self.report.dead_letter_refs.append(f"{letter.input_ref}: {letter.reason}: {letter.error[:160]}")
        log.warning(
            "dead letter %s: %s %s", letter.input_ref, letter.reason, letter.error[:200],
            extra={"input_ref": letter.input_ref, "reason": letter.reason, "dead_letter_id": letter.id},
        )

    async def flush(self) -> None:
        """Wait until the broker acknowledged everything sent so far; raise the first failure."""
        pending, self._pending = self._pending, []
        await self.producer.flush()
        if pending:
            await asyncio.gather(*pending)

    async def emit_acked(self, events: list[RawArticle | RawTickerItem]) -> None:
        """Send events and return only when the broker acknowledged every one of them.

        For callers that answer someone only after the write is durable (the
        HTTP push endpoint answers 202 after this returns). Raises the
        delivery error (a ``KafkaError``) if any send failed.
        """
        futures = [
            await self.producer.send(topics.RAW_TOPIC_BY_KIND[e.kind], wire.dumps(e), key=e.id.encode())
            for e in events
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
                raw.decode("utf-8"), source=source, url=url, tz=tz, fetched_at=fetched_at or wire.utcnow()
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
            await self.emit(event)

    async def ingest_jsonl(self, path: Path, fetched_at: datetime | None = None) -> None:
        """Every line a raw event; bad lines become dead letters, the rest go on."""
        await self.ingest_json_lines(((f"{path}:{n}", line) for n, line in read_jsonl(str(path))), fetched_at)

    async def ingest_json_lines(self, lines: Iterable[tuple[str, bytes]], fetched_at: datetime | None = None) -> None:
        fetched_at = fetched_at or wire.utcnow()
        for ref, line in lines:
            try:
                event = event_from_json_line(line, fetched_at)
            except Exception as exc:
                await self.emit_dead_letter(wire.dead_letter_for(line, exc, stage=SERVICE, input_ref=ref))
                continue
            await self.emit(event)

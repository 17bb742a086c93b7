"""The sink: enriched topics, story events and dead letters -> SQLite or PostgreSQL.

Delivery guarantee: at-least-once into the store, effectively exactly-once in
it. Kafka offsets are committed only after the batch they cover is durable in
the store, so a crash never loses an item; the batch is then re-delivered and
rewritten, which changes nothing because every write is an upsert by id.

Nothing is dropped silently:

* a message on an enriched topic that does not decode becomes a
  :class:`~newsstream.contract.models.DeadLetter` on the dead-letter topic (and this
  sink then stores it like any other dead letter);
* a message on the dead-letter topic that does not decode is wrapped in a dead
  letter and stored directly (sending it back to the DLQ would loop forever);
* a failed store write is retried with capped exponential backoff, without
  committing, until it succeeds or the sink is stopped (then the batch is
  re-delivered to whoever consumes the partition next).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from newsstream.contract import topics
from newsstream.contract.models import DeadLetter, EnrichedArticle, EnrichedTickerItem
from newsstream.contract.wire import (
    dead_letter,
    dead_letter_for,
    dumps,
    loads_dead_letter,
    loads_enriched,
    loads_story,
    utcnow,
)
from newsstream.errors import is_programming_error
from newsstream.platform.health import start_health_server
from newsstream.platform.kafka import ensure_topics, make_consumer, start_producer
from newsstream.platform.metrics import (
    DEAD_LETTERS,
    ITEMS_IN,
    PROCESSING_SECONDS,
    SINK_BATCH_SIZE,
    SINK_LAST_WRITE,
    SINK_WRITE_ERRORS,
    SINK_WRITE_SECONDS,
    SINK_WRITES,
    LagRecorder,
    observe_stored,
)
from newsstream.platform.settings import Settings
from newsstream.sink.stores import (
    Store,
    StoredEvent,
    StoryTombstone,
    is_data_error,
    open_store,
    redact_url,
    row_id,
    table_for,
)

log = logging.getLogger(__name__)

SERVICE = "sink"
STAGE = "sink"
SOURCE_TOPICS = (topics.ENRICHED_ARTICLES, topics.ENRICHED_TICKER, topics.DEAD_LETTERS, topics.STORIES)

# Backoff for store and DLQ failures: quick first retries for a blip, capped so
# that a sink waiting for PostgreSQL to come back notices within half a minute.
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0

T = TypeVar("T")


def _record_time(msg: ConsumerRecord) -> datetime:
    """When the record was produced (its Kafka timestamp), or now when the broker gives none."""
    return datetime.fromtimestamp(msg.timestamp / 1000, UTC) if msg.timestamp and msg.timestamp > 0 else utcnow()


class _Stopped(Exception):
    """Raised inside the sink when a stop request interrupts a retry loop."""


async def _wait_for(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes; True if it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def _retry(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: asyncio.Event,
    on_error: Callable[[], None],
    context: dict[str, object] | None = None,
    permanent: Callable[[BaseException], bool] = lambda exc: False,
) -> T:
    """Run ``op`` until it succeeds, backing off exponentially (capped).

    Never gives up on a transient error: skipping would lose data. An error
    ``permanent`` says no retry can fix is raised at once (the caller isolates
    the rows at fault), and so is a bug in newsstream
    (:func:`newsstream.errors.is_programming_error`): retried forever it would
    only hide. A stop request ends the wait with :class:`_Stopped`,
    leaving the work uncommitted.
    """
    delay = RETRY_INITIAL_S
    attempt = 0
    while True:
        try:
            return await op()
        except Exception as exc:
            on_error()
            if permanent(exc) or is_programming_error(exc):
                raise
            attempt += 1
            # A full traceback the first time, then one line per attempt: a long
            # outage should not bury the log in identical tracebacks.
            log.warning(
                "%s failed (attempt %d), retrying in %.1fs: %s: %s",
                what, attempt, delay, type(exc).__name__, exc, exc_info=attempt == 1,
                extra={"attempt": attempt, "error_type": type(exc).__name__, **(context or {})},
            )
            if stop.is_set() or await _wait_for(stop, delay):
                raise _Stopped(what) from exc
            delay = min(delay * 2, RETRY_MAX_S)


class _Sink:
    """State of one running sink; :func:`run_sink` is the public entry point."""

    def __init__(self, settings: Settings, stop: asyncio.Event) -> None:
        self.settings = settings
        self.stop = stop
        self.store: Store = open_store(settings.store_url)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.lag = LagRecorder(SERVICE)
        # Where each event of the batch in hand came from (id(event) -> topic, partition, offset).
        self._origin: dict[int, tuple[str, int, int]] = {}

    async def ready(self) -> bool:
        """Readiness: partitions assigned and the store answering."""
        return bool(self.consumer is not None and self.consumer.assignment()) and await self.store.ping()

    async def run(self) -> None:
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            # Health first: /healthz answers (and /readyz says "not ready") while Kafka
            # and the store are awaited.
            runner = await start_health_server(SERVICE, settings.metrics_host, settings.metrics_port_for(SERVICE),
                                              self.ready)
            stack.push_async_callback(runner.cleanup)
            log.info("sink: health and metrics on %s", ", ".join(f"{a[0]}:{a[1]}" for a in runner.addresses))
            await ensure_topics(settings)

            async def open_and_migrate() -> None:
                await self.store.connect()
                await self.store.migrate()

            log.info("sink: opening store %s", redact_url(settings.store_url))
            try:
                await _retry(open_and_migrate, what="opening the store", stop=self.stop, on_error=self._count("connect"))
            except _Stopped:
                await self.store.close()
                return
            stack.push_async_callback(self.store.close)

            self.producer = await start_producer(settings)
            stack.push_async_callback(self.producer.stop)

            self.consumer = make_consumer(settings, *SOURCE_TOPICS, group_id=settings.sink_group_id)
            # Registered last so it runs first on exit: leaving the group promptly
            # lets a restarted or remaining sink take the partitions over at once.
            stack.push_async_callback(self.consumer.stop)
            await self.consumer.start()  # returns once the group is joined (~3 s with short timings)
            log.info("sink: consuming %s as group %r", ", ".join(SOURCE_TOPICS), settings.sink_group_id)

            while not self.stop.is_set():
                records = await self.consumer.getmany(
                    timeout_ms=settings.sink_batch_wait_ms, max_records=settings.sink_batch_size
                )
                await self.lag.update(self.consumer)  # at most once a second
                if not records:
                    continue
                try:
                    await self.handle(records)
                except _Stopped:
                    log.warning("sink: stopped before the batch was written; it will be re-delivered")
                    break
        log.info("sink: stopped")

    def _count(self, target: str) -> Callable[[], None]:
        return lambda: SINK_WRITE_ERRORS.labels(self.store.kind, target).inc()

    def decode(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> tuple[list[StoredEvent], list[DeadLetter]]:
        """(events to store, dead letters to send to the DLQ topic)."""
        batch: list[StoredEvent] = []
        to_dlq: list[DeadLetter] = []
        self._origin = {}
        for tp, messages in records.items():
            ITEMS_IN.labels(SERVICE, tp.topic).inc(len(messages))
            on_dlq = tp.topic == topics.DEAD_LETTERS
            for msg in messages:
                if msg.value is None and tp.topic == topics.STORIES:
                    # A tombstone: stage 3 forgot the story (past its TTL), so it is no longer live.
                    batch.append(StoryTombstone(story_id=(msg.key or b"").decode("utf-8", "replace"),
                                                expired_at=_record_time(msg)))
                    self._origin[id(batch[-1])] = (tp.topic, tp.partition, msg.offset)
                    continue
                payload: bytes = msg.value if msg.value is not None else b""
                try:
                    if on_dlq:
                        batch.append(loads_dead_letter(payload))
                    elif tp.topic == topics.STORIES:
                        batch.append(loads_story(payload))
                    else:
                        batch.append(loads_enriched(payload))
                    self._origin[id(batch[-1])] = (tp.topic, tp.partition, msg.offset)
                except Exception as exc:
                    letter = dead_letter_for(
                        payload, exc, stage=STAGE,
                        source_topic=tp.topic, source_partition=tp.partition, source_offset=msg.offset,
                    )
                    DEAD_LETTERS.labels(SERVICE, tp.topic, letter.reason).inc()
                    log.warning(
                        "sink: %s at %s[%d]@%d -> dead letter %s", letter.reason, tp.topic, tp.partition, msg.offset, letter.id,
                        extra={
                            "item_id": msg.key.decode("utf-8", "replace") if msg.key else None,
                            "topic": tp.topic, "partition": tp.partition, "offset": msg.offset,
                            "reason": letter.reason, "dead_letter_id": letter.id,
                        },
                    )
                    # A bad message on the DLQ itself is stored directly: sending
                    # it back to the DLQ would bring it round again forever.
                    (batch if on_dlq else to_dlq).append(letter)
        return batch, to_dlq

    async def send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        assert self.producer is not None
        producer = self.producer

        async def send_all() -> None:
            # Wait for every acknowledgement before the offsets are committed.
            futures = [
                await producer.send(topics.DEAD_LETTERS, value=dumps(dl), key=dl.id.encode("utf-8")) for dl in letters
            ]
            await asyncio.gather(*futures)

        await _retry(
            send_all, what="sending dead letters", stop=self.stop, on_error=self._count("dlq"),
            context={"dead_letter_ids": [dl.id for dl in letters[:20]]},
        )

    async def write(self, batch: Sequence[StoredEvent], context: dict[str, object] | None = None) -> None:
        """Store the batch; rows the database rejects go to the dead-letter topic.

        A transient failure is retried forever. A rejected batch (a constraint,
        a value the database cannot hold) is split in halves until the rows at
        fault are alone; each of those becomes a dead letter and the rest is
        stored, so one poison row cannot stop the sink.
        """
        store = self.store
        started = time.perf_counter()

        async def attempt() -> None:
            # Each attempt is timed on its own: a slow or failing database shows in
            # the write latency even while the retries hide it from the batch total.
            with SINK_WRITE_SECONDS.labels(store.kind).time():
                await store.upsert(batch)

        try:
            await _retry(attempt, what="writing the batch", stop=self.stop, on_error=self._count("store"),
                         context=context, permanent=is_data_error)
        except _Stopped:
            raise
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(batch) > 1:
                half = len(batch) // 2
                await self.write(batch[:half], context)
                await self.write(batch[half:], context)
            else:
                await self.reject(batch[0], exc)
            return
        stored_at = time.time()
        PROCESSING_SECONDS.labels(SERVICE, "upsert").observe(time.perf_counter() - started)
        SINK_BATCH_SIZE.labels(store.kind).observe(len(batch))
        SINK_LAST_WRITE.labels(store.kind).set(stored_at)
        for event in batch:
            if isinstance(event, (EnrichedArticle, EnrichedTickerItem)):
                observe_stored(event.kind, event.raw.published_at, event.raw.fetched_at, stored_at)
        # Rows, not messages: an id repeated within the batch is one row.
        for table, rows in Tally(table for table, _ in {(table_for(e), row_id(e)) for e in batch}).items():
            SINK_WRITES.labels(store.kind, table).inc(rows)

    async def reject(self, event: StoredEvent, exc: BaseException) -> None:
        """A row the store refused: to the dead-letter topic with the reason, and counted."""
        topic, partition, offset = self._origin.get(id(event), (None, None, None))
        DEAD_LETTERS.labels(SERVICE, topic or "", "store_rejected").inc()
        log.error(
            "sink: the store rejected %s (%s: %s)", row_id(event), type(exc).__name__, exc,
            extra={"item_id": row_id(event), "topic": topic, "partition": partition, "offset": offset,
                   "reason": "store_rejected", "error_type": type(exc).__name__},
        )
        if isinstance(event, DeadLetter):
            # Sending it back to the dead-letter topic would bring it round again
            # forever; it stays on that topic (retained for weeks) and in the log.
            return
        letter = dead_letter(
            dumps(event), stage=STAGE, reason="store_rejected", error=f"{type(exc).__name__}: {exc}",
            source_topic=topic, source_partition=partition, source_offset=offset,
        )
        await self.send_dead_letters([letter])

    async def handle(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Decode, write, and only then commit one batch of records."""
        assert self.consumer is not None
        batch, to_dlq = self.decode(records)
        if to_dlq:
            await self.send_dead_letters(to_dlq)
        if batch:
            # Where the batch came from, for the logs of a failing write: offsets, never payloads.
            context: dict[str, object] = {
                "batch": [
                    {"topic": tp.topic, "partition": tp.partition, "first_offset": m[0].offset, "last_offset": m[-1].offset}
                    for tp, m in records.items() if m
                ]
            }
            await self.write(batch, context)
        offsets = {tp: messages[-1].offset + 1 for tp, messages in records.items() if messages}
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # Typically a rebalance took the partition away meanwhile. The rows are
            # durable; the new owner re-reads them and the upserts change nothing.
            log.warning(
                "sink: offset commit failed (%s: %s); the batch will be re-delivered", type(exc).__name__, exc,
                extra={"offsets": [{"topic": tp.topic, "partition": tp.partition, "offset": o} for tp, o in offsets.items()]},
            )
        log.debug("sink: stored %d events, %d sent to the DLQ", len(batch), len(to_dlq))


async def run_sink(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the sink until ``stop`` is set or the task is cancelled.

    Either way the batch in hand is finished (written and committed) before the
    consumer, producer, store and health server are closed. A second
    cancellation while finishing interrupts it; the batch is then re-delivered.
    """
    stop = stop if stop is not None else asyncio.Event()
    task = asyncio.create_task(_Sink(settings, stop).run(), name="newsstream-sink")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.done():
            raise
        stop.set()
        await task  # finishing the current batch; a second cancel lands here and cancels it
        raise


def main(settings: Settings) -> None:
    """Blocking entry point for the CLI: SIGINT/SIGTERM stop the sink gracefully.

    The first signal asks for a graceful stop; the handlers are then removed,
    so a second Ctrl-C interrupts at once.
    """

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def on_signal() -> None:
            log.info("sink: stop requested, finishing the current batch")
            stop.set()
            for sig in signals:
                loop.remove_signal_handler(sig)

        for sig in signals:
            loop.add_signal_handler(sig, on_signal)
        try:
            await run_sink(settings, stop=stop)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    asyncio.run(amain())

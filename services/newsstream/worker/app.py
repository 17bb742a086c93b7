"""The stream processor: a faust-streaming app in two stages.

::

    news.raw.articles.v1 ─┐  stage 1: validate, normalise,   ┌─> <app>-by-content (envelopes, partitioned by content hash)
    news.raw.ticker.v1  ──┴─ enrich (batched, stateless) ────┤
                                                             └─> news.dlq.v1 (invalid input, errors)
    <app>-by-content ── stage 2: exact dedup against a changelog-backed table
                        (same hash -> same partition -> same worker) ──> <app>-placement (one partition)
    <app>-placement ─── stage 3: near-duplicates, ticker threads, stories in
                        changelog-backed tables (one ordered input, one writer) ─┬─> news.enriched.{articles,ticker}.v1
                                                                                 └─> news.stories.v1 (keyed by story id)

With ``NEWSSTREAM_STORIES_ENABLED=false`` stage 2 writes the enriched topics
itself and stage 3 does not run.

Why two stages: raw topics are keyed by item id, but duplicates share a
content hash, not an id. Re-partitioning by hash puts every copy of one text
on one partition, so any number of workers find the same duplicates as one does.

Why stage 3 runs on one partition: a near copy shares no key with its
original (only LSH band keys, 32 of them), and a story gathers items with
nothing in common but their words. One ordered input and one writer give
the same duplicates, threads and stories whether one worker runs or ten
(the others stand by and take over the partition, recovering its tables
from the changelogs). The price is a ceiling of a few hundred items a second
for stage 3 (``bench/dedup.py``), far above a newsroom's rate; stages 1 and 2,
where the cost is, scale with partitions. ``docs/dedup.md`` has the design,
its limits and the way past the ceiling.

Why batches: faust spends ~100-200 µs of CPU per event on its own
bookkeeping. Stage 1 takes events in batches (``take_events``) and ships its
results to stage 2 in envelopes, one message per partition per batch (see
:mod:`newsstream.worker.envelope`), so stage 2 pays faust's cost per envelope
rather than per item, and forwards a first occurrence's bytes untouched.
Events are acked after their batch is handed to the producer, and faust
flushes the producer before it commits offsets: at-least-once, made
exactly-once in the store by id-keyed upserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import faust
import orjson

from newsstream.contract import topics, wire

from newsstream.platform import metrics
from newsstream.platform.settings import Settings
from newsstream.dedup import exact
from newsstream.dedup.exact import dedup_key, mark_duplicate, partition_for
from newsstream.enrich.item import enrich
from newsstream.worker.envelope import EnvelopeBuilder, EnvelopeItem, read_envelope
from newsstream.dedup.placement import CHANGELOGGED_TABLES, Placement, PlacementConfig, event_time
from newsstream.worker.recovery import OrderedResumeTableManager
from newsstream.worker.changelog import ChangelogWrites, add_missing_entries, sync_with_changelog

log = logging.getLogger(__name__)

SERVICE = "worker"


def _faust_broker_settings(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "broker": ";".join(f"kafka://{h.strip()}" for h in (settings.kafka_bootstrap_servers or "").split(",")),
        "broker_session_timeout": settings.session_timeout_s,
        "broker_rebalance_timeout": settings.rebalance_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "producer_compression_type": "zstd",
        "producer_linger_ms": 5,
        "producer_max_batch_size": 1024 * 1024,
    }
    if settings.kafka_security_protocol != "PLAINTEXT":
        kwargs["broker_credentials"] = _faust_credentials(settings)
    return kwargs


def _faust_credentials(settings: Settings) -> Any:
    from faust.auth import SASLCredentials, SSLCredentials

    ssl_context = settings.kafka_client_kwargs().get("ssl_context")
    if settings.kafka_sasl_mechanism:
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context,
        )
    return SSLCredentials(ssl_context)


# Replaced in tests; os._exit skips faust's shutdown, which would commit offsets.
_hard_exit = os._exit
DELIVERY_FAILURE_EXIT_CODE = 70


def fail_stop_on_delivery_error(delivery: asyncio.Future[Any]) -> None:
    """Done-callback of every record the worker produces: a record the broker
    finally refused (after the producer's own retries) stops the process at once.

    faust acks a batch once its records are handed to the producer and
    commits after flushing it, and aiokafka's flush waits but never raises:
    a refused record would be committed past and lost. Exiting before the
    next commit makes the batch come back to whoever takes the partition
    over (fail-stop, as Kafka Streams does by default). Awaiting the
    deliveries inside the batch loop instead stalled the worker after a
    restart; a callback adds no wait.
    """
    if delivery.cancelled() or delivery.exception() is None:
        return
    exc = delivery.exception()
    log.critical("a record the worker produced was refused by the broker (%s: %s): exiting without committing",
                 type(exc).__name__, exc, extra={"error_type": type(exc).__name__})
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a closed stream must not stop the exit
            handler.flush()
    _hard_exit(DELIVERY_FAILURE_EXIT_CODE)


def build_app(settings: Settings) -> faust.App:
    """A configured worker app; run it with :func:`run_worker`."""
    app = faust.App(
        settings.worker_app_id,
        store="memory://",  # state is rebuilt from the changelog topic on start
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        web_enabled=False,  # /metrics, /healthz and /readyz are served by newsstream.platform.metrics
        datadir=settings.worker_datadir,
        table_cleanup_interval=60.0,
        TableManager=OrderedResumeTableManager,  # faust#596: see newsstream.worker.recovery
        **_faust_broker_settings(settings),
    )

    raw_in = app.topic(*topics.RAW_TOPICS, key_serializer="raw", value_serializer="raw")
    by_content = app.topic(
        f"{settings.worker_app_id}-by-content",
        partitions=settings.partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="raw",
    )
    # kind:content_hash -> [first item id, first seen (epoch s), partition]
    # No key_type/value_type: both default to JSON, and faust would try to
    # call .from_data() on a plain type while recovering from the changelog.
    first_seen = app.Table("dedup-first-seen", default=None, partitions=settings.partitions)
    ttl_s = settings.dedup_window_hours * 3600.0

    def first_seen_changelog() -> str:
        # Written with the worker's own awaited sends, like stage 3's tables
        # (see flush_placement_state), in the JSON faust's table codec reads.
        return first_seen.changelog_topic.get_topic_name()

    batch, within = settings.worker_batch_size, settings.worker_batch_within_s

    async def send(topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        delivery = await app.producer.send(topic, key, value, partition, None, None)
        delivery.add_done_callback(fail_stop_on_delivery_error)  # type: ignore[attr-defined]

    async def send_dead_letter(
        topic: str, partition: int, offset: int, payload: bytes | None, exc: BaseException, item_id: str | None = None
    ) -> None:
        letter = wire.dead_letter_for(
            payload or b"", exc, stage=SERVICE, source_topic=topic, source_partition=partition, source_offset=offset
        )
        await send(topics.DEAD_LETTERS, letter.id.encode(), wire.dumps(letter))
        metrics.DEAD_LETTERS.labels(SERVICE, topic, letter.reason).inc()
        log.warning(
            "dead letter: %s (%s) topic=%s partition=%s offset=%s",
            letter.reason, letter.error[:200], topic, partition, offset,
            extra={
                "item_id": item_id, "topic": topic, "partition": partition, "offset": offset,
                "reason": letter.reason, "dead_letter_id": letter.id, "error_type": type(exc).__name__,
            },
        )

    # Tansu answers ListOffsets with the start of a partition's last batch, so
    # faust's recovery stops short of the records after it; on Apache Kafka it
    # reads everything. Before stage 2 handles anything after an assignment,
    # the owned changelog partitions are read to the fetch highwater (which is
    # right on both) and the claims recovery missed are added. Without this a
    # restarted worker on the embedded broker could miss a duplicate.
    tail_checked: set[tuple[str, int]] = set()

    @app.on_partitions_assigned.connect
    async def _changelog_tail_unchecked(_app: faust.App, assigned: set[Any], **_: Any) -> None:
        tail_checked.clear()

    async def repair_changelog_tail(tables: list[Any], sync: bool = False) -> bool:
        """``sync=False``: add missing keys (exact dedup: claims never change);
        ``sync=True``: make the table equal to its changelog (stage 3: values change).
        True when a newly assigned partition was checked."""
        checked = False
        for table in tables:
            changelog = table.changelog_topic.get_topic_name()
            owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
            unchecked = sorted(p for p in owned if (changelog, p) not in tail_checked)
            if not unchecked:
                continue
            repair = sync_with_changelog if sync else add_missing_entries
            changed = await repair(settings, changelog, unchecked, table.data)
            tail_checked.update((changelog, p) for p in unchecked)
            checked = True
            if changed:
                log.warning("%s: %d entries were missing or stale after recovery and were fixed from the changelog",
                            table.name, changed)
        return checked

    @app.agent(raw_in)
    async def enrich_raw(stream: faust.StreamT) -> None:
        by_content_topic = by_content.get_topic_name()
        async for events in stream.take_events(batch, within=within):
            started = time.perf_counter()
            now = wire.utcnow()
            envelopes = EnvelopeBuilder()
            for event in events:
                msg = event.message
                metrics.ITEMS_IN.labels(SERVICE, msg.topic).inc()
                try:
                    enriched = enrich(wire.loads_raw(msg.value), now)
                    metrics.ENRICHED.labels(enriched.kind, enriched.enrichment.language).inc()
                    content_key = dedup_key(enriched)
                    envelopes.add(
                        partition_for(content_key, settings.partitions),
                        content_key, enriched.id, enriched.kind, wire.dumps(enriched),
                    )
                except Exception as exc:  # bad input must never stop the worker
                    key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None
                    await send_dead_letter(msg.topic, msg.partition, msg.offset, msg.value, exc, key)
            for partition, envelope in envelopes.drain():
                await send(by_content_topic, None, envelope, partition)
            metrics.PROCESSING_SECONDS.labels(SERVICE, "enrich").observe(time.perf_counter() - started)

    @app.agent(by_content)
    async def deduplicate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max(1, batch // 50), within=within):
            await repair_changelog_tail([first_seen])
            started = time.perf_counter()
            now = time.time()
            to_placement = EnvelopeBuilder()
            for event in events:
                msg = event.message
                for item in read_envelope(msg.value):
                    if not isinstance(item, EnvelopeItem):
                        line, exc = item
                        await send_dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
                        continue
                    try:
                        verdict, claimed = exact.check_and_claim(
                            first_seen.data, item.content_key, item.item_id, msg.partition, now, ttl_s
                        )
                        if claimed is not None:
                            # Written straight to the changelog partition of the envelope being
                            # processed: faust's table[key] = v would use the batch's last event.
                            await send(first_seen_changelog(), orjson.dumps(item.content_key),
                                       orjson.dumps(list(claimed)), msg.partition)
                        out_topic = topics.ENRICHED_TOPIC_BY_KIND[item.kind]
                        value = item.value  # a first occurrence is forwarded as it is
                        if verdict.first_id is not None:
                            value = wire.dumps(mark_duplicate(wire.loads_enriched(value), verdict.first_id))
                        if settings.stories_enabled:
                            to_placement.add(0, item.content_key, item.item_id, item.kind, value)
                            continue
                    except Exception as exc:
                        await send_dead_letter(msg.topic, msg.partition, msg.offset, item.line, exc, item.item_id)
                        continue
                    await send(out_topic, item.item_id.encode(), value)
                    metrics.ITEMS_OUT.labels(SERVICE, out_topic).inc()
                    if verdict.first_id is not None:
                        metrics.DUPLICATES.labels(SERVICE, out_topic, "exact").inc()
            for partition, envelope in to_placement.drain():
                await send(placement_topic_name, None, envelope, partition)
            metrics.PROCESSING_SECONDS.labels(SERVICE, "dedup").observe(time.perf_counter() - started)

    placement_in = app.topic(
        f"{settings.worker_app_id}-placement",
        partitions=1,
        internal=True,
        key_serializer="raw",
        value_serializer="raw",
    )
    placement_topic_name = placement_in.get_topic_name()
    placement_tables = {
        name: app.Table(f"placement-{name.replace('_', '-')}", default=None, partitions=1)
        for name in CHANGELOGGED_TABLES
    }
    placement_state = {name: ChangelogWrites(lambda t=table: t.data) for name, table in placement_tables.items()}
    near_bands: dict[str, Any] = {}  # derived from near_items: rebuilt, not changelogged
    placement = Placement(PlacementConfig.from_settings(settings), {"near_bands": near_bands, **placement_state})
    # Windows run on event time; "now" for expiry is the latest event time seen
    # (stream time, as in Kafka Streams), so an archive replay keeps its state.
    stream_time = [0.0]
    placement_lock = asyncio.Lock()

    async def flush_placement_state() -> None:
        """Send each state key changed since the last call to its table's changelog, once.

        Awaited sends, like the outputs, and not faust's ``send_changelog``:
        that one queues in faust's producer buffer, which throttles the stream
        when it holds more than 100 records and whose flush before a commit
        gives up on a record slower than 0.1 s. A commit of stage 3's input
        could then overtake state that had not reached the changelog, and a
        crash would lose it. aiokafka's flush before each commit waits for
        every awaited send. Keys and values are JSON, as faust's table codecs
        read them back.
        """
        for name, writes in placement_state.items():
            changelog = placement_tables[name].changelog_topic.get_topic_name()
            for key, value in writes.drain():
                await send(changelog, orjson.dumps(key), None if value is None else orjson.dumps(value), 0)

    async def emit_placed(enriched: Any, story_event: Any) -> None:
        out_topic = topics.ENRICHED_TOPIC_BY_KIND[enriched.kind]
        await send(out_topic, enriched.id.encode(), wire.dumps(enriched))
        metrics.ITEMS_OUT.labels(SERVICE, out_topic).inc()
        kind = enriched.enrichment.duplicate_kind
        if kind is not None:
            metrics.DUPLICATES.labels(SERVICE, out_topic, kind).inc()
        if story_event is not None:
            await send(topics.STORIES, story_event.story_id.encode(), wire.dumps(story_event))

    @app.agent(placement_in)
    async def place_items(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max(1, batch // 50), within=within):
            if await repair_changelog_tail(list(placement_tables.values()), sync=True):
                indexed = placement.near.rebuild_bands()
                log.info("stage 3 state ready: %d near-dup signatures indexed, %d thread keys, %d story keys",
                         indexed, len(placement_tables["threads"].data), len(placement_tables["stories"].data))
            started = time.perf_counter()
            items = []
            for event in events:
                msg = event.message
                for item in read_envelope(msg.value):
                    try:
                        if not isinstance(item, EnvelopeItem):
                            raise item[1]
                        items.append(wire.loads_enriched(item.value))
                    except Exception as exc:
                        line = item.line if isinstance(item, EnvelopeItem) else item[0]
                        await send_dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
            # Event-time order within a batch: the earlier of two copies that
            # arrive together is the original, whatever partition each came from.
            items.sort(key=lambda e: (event_time(e.raw), e.id))
            async with placement_lock:  # the expiry timer mutates the same state
                for enriched in items:
                    try:
                        placed = placement.place(enriched, enriched.enrichment.duplicate_of)
                    except Exception as exc:  # a clustering bug must not cost the item
                        metrics.PLACEMENT_ERRORS.inc()
                        log.exception("placement failed; emitting the item with its exact verdict only",
                                      extra={"item_id": enriched.id, "error_type": type(exc).__name__})
                        await emit_placed(enriched, None)
                        continue
                    stream_time[0] = max(stream_time[0], event_time(enriched.raw))
                    story_event = placed.story.event
                    if story_event is None:
                        # Seen before (re-delivered after a restart): publish the story's
                        # current state again, in case the first event was lost with the
                        # crash. Same story id, no "created": a compacted topic absorbs it.
                        story_event = placement.stories.current_event(placed.story.story_id, enriched.id)
                        if story_event is not None:
                            metrics.STORY_EVENTS.labels("replayed").inc()
                    else:
                        metrics.STORY_EVENTS.labels(story_event.event).inc()
                    await emit_placed(placed.enriched, story_event)
                await flush_placement_state()
            metrics.PROCESSING_SECONDS.labels(SERVICE, "placement").observe(time.perf_counter() - started)

    @app.timer(interval=60.0)
    async def expire_placement_state() -> None:
        """Forget near-dup entries, threads and stories past their windows (in stream time)."""
        changelog = placement_tables["stories"].changelog_topic.get_topic_name()
        if not any(tp.topic == changelog for tp in app.assignor.assigned_actives()) or not stream_time[0]:
            return
        async with placement_lock:  # one writer: its changelog records stay in order
            removed = placement.expire(stream_time[0])
            await flush_placement_state()
        if removed:
            log.info("placement state: expired %d keys", removed)
        for name, table in placement_tables.items():
            metrics.PLACEMENT_STATE_KEYS.labels(name).set(len(table.data))
        metrics.PLACEMENT_STATE_KEYS.labels("near_bands").set(len(near_bands))

    @app.timer(interval=60.0)
    async def expire_dedup_state() -> None:
        """Forget content hashes older than the dedup window, so memory stays bounded."""
        owned = [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == first_seen.changelog_topic.get_topic_name()]
        removed = 0
        for key, partition in exact.expired_keys(first_seen.data, time.time(), ttl_s, owned):
            first_seen.data.pop(key, None)
            await send(first_seen_changelog(), orjson.dumps(key), None, partition)
            removed += 1
        if removed:
            log.info("dedup state: expired %d content hashes", removed)
        metrics.DEDUP_STATE_KEYS.set(len(first_seen.data))

    lag = metrics.LagRecorder(SERVICE)

    @app.timer(interval=5.0)
    async def record_lag() -> None:
        """Lag of the raw topics (stage 1's input): how far the worker is behind the producers."""
        if app.rebalancing:
            return
        await lag.update(_RawTopicsOnly(app.consumer), force=True)

    app.newsstream_agents = (enrich_raw, deduplicate, place_items)  # type: ignore[attr-defined]
    return app


class _RawTopicsOnly:
    """faust's consumer seen through the raw-topic partitions only.

    The worker also consumes its internal topics (by-content, changelog); their
    lag is faust's business and would only add noise next to the raw topics.
    """

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer

    def assignment(self) -> list[Any]:
        return [tp for tp in self._consumer.assignment() if tp.topic in topics.RAW_TOPICS]

    def highwater(self, tp: Any) -> int | None:
        return self._consumer.highwater(tp)

    async def position(self, tp: Any) -> int | None:
        return await self._consumer.position(tp)


def is_ready(app: faust.App) -> bool:
    """Connected, partitions assigned and table recovery finished."""
    try:
        return bool(app.consumer.assignment()) and not app.rebalancing and app.tables.recovery.completed.is_set()
    except Exception:
        return False


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker until SIGINT/SIGTERM (blocking)."""

    from faust.worker import Worker

    from newsstream.platform.kafka import ensure_topics
    from newsstream.platform.logs import configure_logging
    from newsstream.enrich.item import warm_up

    # One loop for the start-up call and for faust: asyncio.run() would close its loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    warm_up()  # load the models now, not inside the first batch (see enrich.warm_up)
    app = build_app(settings)

    @app.task
    async def serve_health() -> None:
        await metrics.start_health_server(SERVICE, settings.metrics_host, settings.metrics_port, lambda: is_ready(app))

    class _Worker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # faust (mode) replaces the root handlers with its own colour formatter
            # when it starts; put the structured (JSON in production) handler back,
            # so the worker's logs parse like every other service's.
            configure_logging(settings.log_level, settings.log_format)

    worker = _Worker(app, loop=loop, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


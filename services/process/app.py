"""The stream processor: a faust-streaming app in two stages.

::

    news.raw.articles.v1 ─┐  stage 1: validate, normalise,   ┌─> <app>-by-content (envelopes, partitioned by content hash)
    news.raw.ticker.v1  ──┴─ enrich (batched, stateless) ────┤
                                                             └─> news.dlq.v1 (invalid input, errors)
    <app>-by-content ── stage 2: exact dedup against a changelog-backed table
                        (same hash -> same partition -> same worker) ──> news.enriched.{articles,ticker}.v1

Why two stages: raw topics are keyed by item id, but duplicates share a
content hash, not an id. Re-partitioning by hash puts every copy of one text
on one partition, so any number of workers find the same duplicates as one does.

Why batches: faust spends ~100-200 µs of CPU per event on its own
bookkeeping. Stage 1 takes events in batches (``take_events``) and ships its
results to stage 2 in envelopes, one message per partition per batch (see
:mod:`newsstream.process.envelope`), so stage 2 pays faust's cost per envelope
rather than per item, and forwards a first occurrence's bytes untouched.
Events are acked after their batch is handed to the producer, and faust
flushes the producer before it commits offsets: at-least-once, made
exactly-once in the store by id-keyed upserts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from newsstream.core import metrics, topics, wire
from newsstream.core.config import Settings
from newsstream.process import dedup, dedup_changelog
from newsstream.process.enrich import dedup_key, enrich, mark_duplicate
from newsstream.process.envelope import EnvelopeBuilder, EnvelopeItem, partition_for, read_envelope

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


def build_app(settings: Settings) -> faust.App:
    """A configured worker app; run it with :func:`run_worker`."""
    app = faust.App(
        settings.worker_app_id,
        store="memory://",  # state is rebuilt from the changelog topic on start
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        web_enabled=False,  # /metrics, /healthz and /readyz are served by newsstream.core.metrics
        datadir=settings.worker_datadir,
        table_cleanup_interval=60.0,
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
    batch, within = settings.worker_batch_size, settings.worker_batch_within_s

    async def send_dead_letter(
        topic: str, partition: int, offset: int, payload: bytes | None, exc: BaseException, item_id: str | None = None
    ) -> None:
        letter = wire.dead_letter_for(
            payload or b"", exc, stage=SERVICE, source_topic=topic, source_partition=partition, source_offset=offset
        )
        await app.producer.send(topics.DEAD_LETTERS, letter.id.encode(), wire.dumps(letter), None, None, None)
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
    tail_checked: set[int] = set()

    @app.on_partitions_assigned.connect
    async def _changelog_tail_unchecked(_app: faust.App, assigned: set[Any], **_: Any) -> None:
        tail_checked.clear()

    async def repair_changelog_tail() -> None:
        changelog = first_seen.changelog_topic.get_topic_name()
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
        unchecked = sorted(owned - tail_checked)
        if unchecked:
            added = await dedup_changelog.add_missing_entries(settings, changelog, unchecked, first_seen.data)
            tail_checked.update(unchecked)
            if added:
                log.warning("dedup state: %d claims were missing after recovery and were added from the changelog", added)

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
                await app.producer.send(by_content_topic, None, envelope, partition, None, None)
            metrics.PROCESSING_SECONDS.labels(SERVICE, "enrich").observe(time.perf_counter() - started)

    @app.agent(by_content)
    async def deduplicate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max(1, batch // 50), within=within):
            await repair_changelog_tail()
            started = time.perf_counter()
            now = time.time()
            for event in events:
                msg = event.message
                for item in read_envelope(msg.value):
                    if not isinstance(item, EnvelopeItem):
                        line, exc = item
                        await send_dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
                        continue
                    try:
                        verdict, claimed = dedup.check_and_claim(
                            first_seen.data, item.content_key, item.item_id, msg.partition, now, ttl_s
                        )
                        if claimed is not None:
                            # Written straight to the changelog partition of the envelope being
                            # processed: faust's table[key] = v would use the batch's last event.
                            first_seen.send_changelog(msg.partition, item.content_key, list(claimed))
                        out_topic = topics.ENRICHED_TOPIC_BY_KIND[item.kind]
                        value = item.value  # a first occurrence is forwarded as it is
                        if verdict.first_id is not None:
                            value = wire.dumps(mark_duplicate(wire.loads_enriched(value), verdict.first_id))
                    except Exception as exc:
                        await send_dead_letter(msg.topic, msg.partition, msg.offset, item.line, exc, item.item_id)
                        continue
                    await app.producer.send(out_topic, item.item_id.encode(), value, None, None, None)
                    metrics.ITEMS_OUT.labels(SERVICE, out_topic).inc()
                    if verdict.first_id is not None:
                        metrics.DUPLICATES.labels(SERVICE, out_topic, "exact").inc()
            metrics.PROCESSING_SECONDS.labels(SERVICE, "dedup").observe(time.perf_counter() - started)

    @app.timer(interval=60.0)
    async def expire_dedup_state() -> None:
        """Forget content hashes older than the dedup window, so memory stays bounded."""
        owned = [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == first_seen.changelog_topic.get_topic_name()]
        removed = 0
        for key, partition in dedup.expired_keys(first_seen.data, time.time(), ttl_s, owned):
            first_seen.data.pop(key, None)
            first_seen.send_changelog(partition, key, None, value_serializer="raw")
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

    app.newsstream_agents = (enrich_raw, deduplicate)  # type: ignore[attr-defined]
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
    import asyncio

    from faust.worker import Worker

    from newsstream.core.kafka import ensure_topics
    from newsstream.core.logs import configure_logging
    from newsstream.process.enrich import warm_up

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

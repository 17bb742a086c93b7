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
import logging
from pathlib import Path
from typing import Any

import faust

from newsstream.contract import topics
from newsstream.errors import ConfigError
from newsstream.platform import metrics
from newsstream.platform.health import start_health_server
from newsstream.platform.settings import Settings
from newsstream.worker import topology
from newsstream.worker.changelog import ChangelogTail, tail_check_enabled
from newsstream.worker.dedup_stage import DedupStage
from newsstream.worker.delivery import SERVICE, Output
from newsstream.worker.enrich_stage import EnrichStage
from newsstream.worker.fetch_wait import install_fetch_wait
from newsstream.worker.placement_stage import PlacementStage
from newsstream.worker.recovery import OrderedResumeTableManager

log = logging.getLogger(__name__)


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
        "producer_max_request_size": settings.max_record_bytes,
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
            password=settings.sasl_password(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context,
        )
    return SSLCredentials(ssl_context)


def build_app(settings: Settings, *, changelog_tail_check: bool = True) -> faust.App:
    """A configured worker app (the composition root of the three stages); run it with :func:`run_worker`.

    ``changelog_tail_check``: re-read the changelogs after each assignment (see
    :class:`~newsstream.worker.changelog.ChangelogTail`); :func:`run_worker` decides by the broker."""
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
        # run_worker creates (or checks) every topic before faust starts, with our
        # partition counts and min.insync.replicas: faust never needs CreateTopics.
        topic_allow_declare=False,
        **_faust_broker_settings(settings),
    )
    install_fetch_wait(app, settings.fetch_max_wait_ms)  # before app.topic(): it builds the transport
    output = Output(app)
    tail = ChangelogTail(settings, app.assignor, enabled=changelog_tail_check)

    @app.on_partitions_assigned.connect
    async def _changelog_tail_unchecked(_app: faust.App, assigned: set[Any], **_: Any) -> None:
        tail.forget()

    def internal(suffix: str, partitions: int) -> Any:
        return app.topic(topology.internal_topic(settings.worker_app_id, suffix), partitions=partitions, internal=True,
                         key_serializer="raw", value_serializer="raw")

    raw_in = app.topic(*topics.RAW_TOPICS, key_serializer="raw", value_serializer="raw")
    by_content = internal(topology.BY_CONTENT, settings.partitions)
    placement_in = internal(topology.PLACEMENT, 1)
    # No key_type/value_type: both default to JSON, and faust would try to
    # call .from_data() on a plain type while recovering from the changelog.
    first_seen = app.Table(topology.DEDUP_TABLE, default=None, partitions=settings.partitions)
    placement_tables = {
        name: app.Table(table, default=None, partitions=1) for name, table in topology.PLACEMENT_TABLES.items()
    }

    enrich_stage = EnrichStage(output, by_content.get_topic_name(), settings.partitions, structured=settings.enrich_structured,
                               embeddings=settings.embeddings, article_tokens=settings.embedding_article_tokens,
                               ner_context_tokens=settings.ner_context_tokens)
    dedup_stage = DedupStage(
        output, first_seen, tail, ttl_s=settings.dedup_window_hours * 3600.0,
        placement_topic=placement_in.get_topic_name() if settings.stories_enabled else None,
    )
    placement_stage = PlacementStage(settings, output, placement_tables, tail)
    batch, within = settings.worker_batch_size, settings.worker_batch_within_s

    @app.agent(raw_in)
    async def enrich_raw(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch, within=within):
            await enrich_stage.handle(events)

    @app.agent(by_content)
    async def deduplicate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max(1, batch // 50), within=within):
            await dedup_stage.handle(events)

    @app.agent(placement_in)
    async def place_items(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max(1, batch // 50), within=within):
            await placement_stage.handle(events)

    @app.timer(interval=60.0)
    async def expire_placement_state() -> None:
        if not placement_stage.owns_state(app.assignor.assigned_actives()):
            return
        removed = await placement_stage.expire()
        if removed:
            log.info("placement state: expired %d keys", removed)

    @app.timer(interval=60.0)
    async def expire_dedup_state() -> None:
        changelog = dedup_stage.changelog()
        removed = await dedup_stage.expire(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog)
        if removed:
            log.info("dedup state: expired %d content hashes", removed)

    lag = metrics.LagRecorder(SERVICE)

    @app.timer(interval=5.0)
    async def record_lag() -> None:
        """Lag of the raw topics (stage 1's input): how far the worker is behind the producers."""
        if app.rebalancing:
            return
        await lag.update(_RawTopicsOnly(app.consumer), force=True)

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

    from newsstream.enrich.item import warm_up
    from newsstream.platform.kafka import ensure_topics
    from newsstream.platform.logs import configure_logging

    # faust creates its data directory without parents; a fresh checkout has none.
    try:
        Path(settings.worker_datadir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the worker's data directory {settings.worker_datadir} "
                          f"({exc.strerror or exc}): set NEWSSTREAM_WORKER_DATADIR") from None
    # One loop for the start-up calls and for faust: asyncio.run() would close its loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    built: list[faust.App] = []
    # Health first: /healthz answers (and /readyz says "not ready") while Kafka is awaited.
    health = loop.run_until_complete(start_health_server(
        SERVICE, settings.metrics_host, settings.metrics_port_for(SERVICE), lambda: bool(built) and is_ready(built[0])
    ))

    async def start_up() -> bool:
        await ensure_topics(settings, topology.every_topic_spec(settings))
        return await tail_check_enabled(settings)

    try:
        tail_check = loop.run_until_complete(start_up())
    except BaseException:
        loop.run_until_complete(health.cleanup())
        loop.close()
        raise
    # load the models now, not inside the first batch (see enrich.warm_up)
    warm_up(settings.enrich_structured, embeddings=settings.embeddings)
    app = build_app(settings, changelog_tail_check=tail_check)
    built.append(app)

    class _Worker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # faust (mode) replaces the root handlers with its own colour formatter
            # when it starts; put the structured (JSON in production) handler back,
            # so the worker's logs parse like every other service's.
            configure_logging(settings.log_level, settings.log_format)

    worker = _Worker(app, loop=loop, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


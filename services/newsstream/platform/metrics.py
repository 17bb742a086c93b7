"""Prometheus metrics and the /metrics, /healthz, /readyz HTTP endpoints.

This module is the metrics catalogue: every metric a newsstream service exports
is declared here, so names, types and label sets are reviewed in one place and
the dashboards (deploy/grafana) and alerts (deploy/prometheus) can rely on them.

Labels are bounded sets (service, topic, partition, stage, kind, reason, store,
language, configured source names): never item ids, URLs or free text. Values
that come from data rather than configuration go through
:class:`BoundedLabel`, which folds anything past a fixed number of distinct
values into ``"other"`` so that bad input cannot blow up the series count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from newsstream import __version__

log = logging.getLogger(__name__)

# Same formula as newsstream.enrich.item.PIPELINE_VERSION (a test keeps the two
# equal); not imported from there so the sink and ingest need not load the
# enrichment code and its language model just to report their build.
PIPELINE_VERSION = f"newsstream/{__version__}"

# ----------------------------------------------------------------------------- flow, per stage and topic
ITEMS_IN = Counter("newsstream_items_in_total", "Items read by a service", ["service", "topic"])
ITEMS_OUT = Counter("newsstream_items_out_total", "Items written by a service", ["service", "topic"])
DEAD_LETTERS = Counter(
    "newsstream_dead_letters_total", "Items sent to the dead-letter topic", ["service", "topic", "reason"]
)
DUPLICATES = Counter("newsstream_duplicates_total", "Items found to duplicate an earlier item", ["service", "topic", "kind"])
PROCESSING_SECONDS = Histogram(
    "newsstream_processing_seconds",
    "Time spent processing one batch of items, per stage",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# ----------------------------------------------------------------------------- classification and dedup distributions
ENRICHED = Counter(
    "newsstream_enriched_items_total",
    "Items enriched by the worker, by kind and detected language (ISO 639-1, 'und' when undetermined)",
    ["kind", "language"],
)
DEDUP_STATE_KEYS = Gauge(
    "newsstream_dedup_state_keys",
    "Content hashes remembered by this worker's exact-dedup table (bounded by the dedup window)",
)
PLACEMENT_STATE_KEYS = Gauge(
    "newsstream_placement_state_keys",
    "Keys held by this worker's stage-3 tables (near-dup index, threads, stories; bounded by their windows)",
    ["table"],
)
STORY_EVENTS = Counter(
    "newsstream_story_events_total", "Events written to news.stories.v1 ('created', 'updated', 'replayed', 'expired')",
    ["event"]
)
EVENT_TIME_CLAMPED = Counter(
    "newsstream_event_time_clamped_total",
    "Items whose event time lay more than a day past the worker's clock; stream time was not moved past it",
)
PLACEMENT_ERRORS = Counter(
    "newsstream_placement_errors_total",
    "Items stage 3 could not place (near-dup, thread, story); they are emitted with their exact-dedup verdict only",
)

# ----------------------------------------------------------------------------- end-to-end latency, observed by the sink
# Publication -> stored spans minutes to days (a ticker line resolved from a clock
# time, an article republished late), so the buckets run up to a day. Ingest ->
# stored is the pipeline's own latency: sub-second when healthy, minutes when lagging.
_PUBLISH_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
_PIPELINE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
PUBLISH_TO_STORE = Histogram(
    "newsstream_publish_to_store_seconds",
    "From the item's publication time (raw.published_at) to its storage by the sink",
    ["kind"],
    buckets=_PUBLISH_BUCKETS,
)
INGEST_TO_STORE = Histogram(
    "newsstream_ingest_to_store_seconds",
    "From the item's fetch by the producer (raw.fetched_at) to its storage by the sink",
    ["kind"],
    buckets=_PIPELINE_BUCKETS,
)

# ----------------------------------------------------------------------------- sink health
SINK_WRITES = Counter("newsstream_sink_rows_written_total", "Rows upserted into the store", ["store", "table"])
SINK_BATCH_SIZE = Histogram(
    "newsstream_sink_batch_size", "Items per sink write batch", ["store"], buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000)
)
SINK_WRITE_SECONDS = Histogram(
    "newsstream_sink_write_seconds",
    "Duration of one store write attempt (one transaction), successful or not",
    ["store"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SINK_WRITE_ERRORS = Counter(
    "newsstream_sink_write_errors_total",
    "Failed attempts to write a batch to the store or the dead-letter topic (each is retried)",
    ["store", "target"],
)
SINK_LAST_WRITE = Gauge(
    "newsstream_sink_last_write_timestamp_seconds",
    "Unix time of the sink's last successful store write",
    ["store"],
)

# ----------------------------------------------------------------------------- consumer lag
CONSUMER_LAG = Gauge(
    "newsstream_consumer_lag",
    "Messages between the partition's end offset and the consumer's position "
    "(reads slightly high on Tansu, whose end offset is the start of the last batch)",
    ["service", "topic", "partition"],
)

# ----------------------------------------------------------------------------- sources (ingest)
SOURCE_LAST_ITEM = Gauge(
    "newsstream_source_last_item_timestamp_seconds",
    "Unix time at which the producer last emitted an item from this source",
    ["source"],
)
SOURCE_ITEMS = Counter("newsstream_source_items_total", "Items emitted per source", ["source", "kind"])
SOURCE_ERRORS = Counter(
    "newsstream_source_errors_total", "Inputs from a source that became dead letters", ["source", "reason"]
)
# Polling, per configured source (kind: a small vocabulary, never URLs). Push
# requests count under the token's name as ``source`` (kind="push_401" ...).
SOURCE_POLLS = Counter("newsstream_source_polls_total", "Polls per source by outcome (ok, not_modified, error)", ["source", "kind"])
SOURCE_POLL_ERRORS = Counter(
    "newsstream_source_poll_errors_total",
    "Fetch, parse and item errors per source by kind (timeout, http_status, broken_xml, empty_page, ...)",
    ["source", "kind"],
)
SOURCE_CLEANED = Counter(
    "newsstream_source_cleaned_total",
    "Inputs repaired instead of rejected (invisible_chars, missing_date, missing_link, decoded_charset, loose_xml)",
    ["source", "kind"],
)
SOURCE_LAST_SUCCESS = Gauge(
    "newsstream_source_last_success_timestamp_seconds", "Unix time of the last successful poll", ["source", "kind"]
)
SOURCE_FETCH_SECONDS = Histogram(
    "newsstream_source_fetch_seconds",
    "Latency of one fetch (including redirects), by what was fetched (feed, page, ticker)",
    ["source", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# ----------------------------------------------------------------------------- process
SERVICE_UP = Gauge("newsstream_service_ready", "1 when the service is connected and processing", ["service"])
BUILD_INFO = Gauge(
    "newsstream_build_info",
    "Always 1; the labels say which build and which models are running",
    ["version", "pipeline_version", "language_model"],
)


def _dist_version(name: str) -> str:
    try:
        return f"{name}/{metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(__version__, PIPELINE_VERSION, _dist_version("py3langid")).set(1)


class BoundedLabel:
    """Pass label values through until ``limit`` distinct ones were seen, then fold new ones into ``other``.

    For labels whose values arrive with the data (a source name in a JSONL line)
    rather than from configuration: a producer fed garbage must not create
    thousands of series in Prometheus.
    """

    OTHER = "other"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return self.OTHER


source_label = BoundedLabel(limit=200)


def observe_item_source(source: str, kind: str, at: float | None = None) -> None:
    """The producer emitted an item of ``source``: count it and move its freshness mark."""
    label = source_label(source)
    SOURCE_ITEMS.labels(label, kind).inc()
    SOURCE_LAST_ITEM.labels(label).set(time.time() if at is None else at)


def observe_source_error(source: str, reason: str) -> None:
    SOURCE_ERRORS.labels(source_label(source), reason).inc()


def observe_poll_success(source: str, kind: str) -> None:
    SOURCE_LAST_SUCCESS.labels(source, kind).set(time.time())


def observe_stored(kind: str, published_at: datetime | None, fetched_at: datetime | None, stored_at: float) -> None:
    """End-to-end latency of one stored item.

    Negative spans (a source's clock ahead of ours, a ticker time resolved into
    the future) are clamped to 0 rather than dropped, so the histogram's count
    still equals the items stored.
    """
    if published_at is not None:
        PUBLISH_TO_STORE.labels(kind).observe(max(0.0, stored_at - published_at.timestamp()))
    if fetched_at is not None:
        INGEST_TO_STORE.labels(kind).observe(max(0.0, stored_at - fetched_at.timestamp()))


class _TopicPartition(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class _LagSource(Protocol):
    """What lag needs from a consumer: aiokafka's AIOKafkaConsumer has it, faust's consumer too."""

    def assignment(self) -> Iterable[Any]: ...

    def highwater(self, tp: Any) -> int | None: ...

    async def position(self, tp: Any) -> int | None: ...


class LagRecorder:
    """Keeps ``newsstream_consumer_lag{service,topic,partition}`` in step with a consumer's assignment.

    Gauges of partitions this consumer no longer owns are removed: after a
    rebalance another instance reports them, and a stale value here would sum
    into a phantom lag.
    """

    def __init__(self, service: str, min_interval_s: float = 1.0) -> None:
        self.service = service
        self.min_interval_s = min_interval_s
        self._labelled: set[tuple[str, str]] = set()
        self._last = 0.0

    async def update(self, consumer: _LagSource, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        current: set[tuple[str, str]] = set()
        tp: _TopicPartition
        for tp in list(consumer.assignment()):
            topic, partition = tp.topic, str(tp.partition)
            try:
                end = consumer.highwater(tp)
                # Only partitions already fetched from: their position is known, so
                # position() just reads it and never triggers an offset lookup or
                # reset of its own behind the consumer's back.
                position = None if end is None else await consumer.position(tp)
            except Exception:  # lag is best effort: never let it disturb the consumer
                log.debug("lag: no position for %s[%s]", topic, partition, exc_info=True)
                continue
            if end is None or position is None:
                continue  # nothing fetched from this partition yet
            CONSUMER_LAG.labels(self.service, topic, partition).set(max(0, end - position))
            current.add((topic, partition))
        for topic, partition in self._labelled - current:
            try:
                CONSUMER_LAG.remove(self.service, topic, partition)
            except KeyError:
                pass
        self._labelled = current

"""The metrics catalogue's helpers: bounded labels, lag bookkeeping, latency, readiness, build info."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from newsstream.platform import metrics
from newsstream.platform.health import health_app


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_pipeline_version_matches_the_enrichment() -> None:
    from newsstream.enrich.item import PIPELINE_VERSION

    assert metrics.PIPELINE_VERSION == PIPELINE_VERSION
    build = [s for f in REGISTRY.collect() if f.name == "newsstream_build_info" for s in f.samples]
    assert len(build) == 1 and build[0].value == 1
    assert build[0].labels["pipeline_version"] == PIPELINE_VERSION
    assert build[0].labels["language_model"].startswith("py3langid/")


def test_bounded_label_folds_new_values_into_other_past_the_limit() -> None:
    label = metrics.BoundedLabel(limit=2)
    assert [label(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", "other", "a", "other", "b"]


def test_source_freshness_and_counts() -> None:
    before = sample("newsstream_source_items_total", source="fresh-src", kind="ticker") or 0
    metrics.observe_item_source("fresh-src", "ticker", at=1_700_000_000.0)
    assert sample("newsstream_source_items_total", source="fresh-src", kind="ticker") == before + 1
    assert sample("newsstream_source_last_item_timestamp_seconds", source="fresh-src") == 1_700_000_000.0


def test_end_to_end_latency_is_observed_and_negative_spans_clamp_to_zero() -> None:
    def count(name: str) -> float:
        return sample(f"{name}_count", kind="article") or 0.0

    def total(name: str) -> float:
        return sample(f"{name}_sum", kind="article") or 0.0

    pub, ing = "newsstream_publish_to_store_seconds", "newsstream_ingest_to_store_seconds"
    before = {n: (count(n), total(n)) for n in (pub, ing)}
    published = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    stored = published.timestamp() + 600
    metrics.observe_stored("article", published, datetime.fromtimestamp(stored - 2, timezone.utc), stored)
    assert count(pub) == before[pub][0] + 1 and total(pub) - before[pub][1] == 600
    assert count(ing) == before[ing][0] + 1 and abs(total(ing) - before[ing][1] - 2) < 1e-6
    # A publication time in the future (a source clock ahead of ours) counts as 0, not as a missing item.
    metrics.observe_stored("article", datetime.fromtimestamp(stored + 60, timezone.utc), None, stored)
    assert count(pub) == before[pub][0] + 2 and total(pub) - before[pub][1] == 600
    assert count(ing) == before[ing][0] + 1  # no fetch time, no observation
    # No publication time (articles may lack one): only the ingest latency.
    metrics.observe_stored("article", None, datetime.fromtimestamp(stored - 1, timezone.utc), stored)
    assert count(pub) == before[pub][0] + 2 and count(ing) == before[ing][0] + 2


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, ends: dict[TP, int | None], positions: dict[TP, int]) -> None:
        self.ends, self.positions = ends, positions

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp]

    async def position(self, tp: TP) -> int:
        if tp not in self.positions:
            raise RuntimeError("not fetched")
        return self.positions[tp]


async def test_lag_follows_the_assignment_and_forgets_revoked_partitions() -> None:
    recorder = metrics.LagRecorder("lagtest")
    a0, a1, b0 = TP("topic-a", 0), TP("topic-a", 1), TP("topic-b", 0)
    await recorder.update(FakeConsumer({a0: 10, a1: None, b0: 5}, {a0: 4, a1: 0}), force=True)
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-a", partition="0") == 6
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-a", partition="1") is None  # no end yet
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-b", partition="0") is None  # no position
    # Within min_interval_s nothing is recomputed (the sink calls this on every poll).
    await recorder.update(FakeConsumer({a0: 100}, {a0: 0}))
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-a", partition="0") == 6
    # After a rebalance took topic-a[0] away, its series disappears (another instance reports it).
    await recorder.update(FakeConsumer({a1: 7}, {a1: 7}), force=True)
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-a", partition="0") is None
    assert sample("newsstream_consumer_lag", service="lagtest", topic="topic-a", partition="1") == 0


async def _client(ready: metrics.ReadyCheck) -> TestClient:
    client = TestClient(TestServer(health_app("readytest", ready)))
    await client.start_server()
    return client


async def test_readiness_answers_and_is_exported_on_every_scrape() -> None:
    state = {"ready": False}

    async def ready() -> bool:
        if state.get("boom"):
            raise ConnectionError("store down")
        return state["ready"]

    client = await _client(ready)
    try:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        state["ready"] = True
        # A scrape alone (no /readyz call) refreshes the gauge.
        body = await (await client.get("/metrics")).text()
        assert 'newsstream_service_ready{service="readytest"} 1.0' in body
        state["boom"] = True  # a failing check is "not ready", not a 500
        response = await client.get("/readyz")
        assert response.status == 503 and (await response.json())["ready"] is False
        assert sample("newsstream_service_ready", service="readytest") == 0
    finally:
        await client.close()

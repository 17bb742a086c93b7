"""A real Prometheus scrapes a real pipeline run; its HTTP API must show the story.

Broker (Tansu), worker and sink are the real thing (tests/integration/harness.py);
Prometheus is the Debian package's binary on loopback with a generated config
that scrapes the two services every second and loads deploy/prometheus/alerts.yml,
so the alert expressions are also evaluated against live series.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from newsstream.cli.demo import ServiceProcess
from newsstream.contract.wire import utcnow
from newsstream.ingest.events import events_from_page_text
from newsstream.ingest.producer import RawEventProducer
from newsstream.platform.broker import free_port
from newsstream.platform.settings import Settings
from tests.integration import harness
from tests.ops.conftest import DEPLOY, require_tool

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_d53218aacc3a3954.txt"
SOURCE = "e2e-outlet"
ITEMS = 7  # the seed page holds one article and six ticker lines


class Prometheus:
    """A Prometheus server in a child process, queried through its HTTP API."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Instant query; [] while Prometheus is starting or the series does not exist yet."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            data = self.api("query", query=promql)
        except OSError:
            return []
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        assert len(result) <= 1, f"{promql} returned {len(result)} series"
        return result[0][1] if result else None


def _with_publication_time(page: Path) -> int:
    """Items of the page that carry ``published_at`` (the seed's article has none; ticker lines do)."""
    events = events_from_page_text(page.read_text(), source=SOURCE, url=None, tz=ZoneInfo("UTC"), fetched_at=utcnow())
    assert len(events) == ITEMS
    return sum(1 for e in events if e.published_at is not None)


@pytest.fixture
def prometheus_bin() -> str:
    return require_tool("prometheus")


@pytest.fixture
def running(fast_settings: Settings, sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Settings, list[ServiceProcess]]]:
    settings = fast_settings.model_copy(update={"store_url": sqlite_url})
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    try:
        yield settings, services
    finally:
        for service in services:
            service.stop()


async def test_prometheus_sees_items_flow_latency_lag_and_health(
    running: tuple[Settings, list[ServiceProcess]], prometheus_bin: str, tmp_path: Path
) -> None:
    settings, services = running
    worker, sink = services
    prom = Prometheus(
        prometheus_bin,
        tmp_path,
        {"newsstream-worker": f"127.0.0.1:{worker.metrics_port}", "newsstream-sink": f"127.0.0.1:{sink.metrics_port}"},
    )

    def is_one(promql: str) -> bool:
        return prom.value(promql) == 1

    def at_least(promql: str, n: float) -> bool:
        value = prom.value(promql)
        return value is not None and value >= n

    try:
        # Both services up and ready as Prometheus sees them (readiness is evaluated per scrape).
        for job in ("newsstream-worker", "newsstream-sink"):
            up, ready = f'up{{job="{job}"}}', f'max(newsstream_service_ready{{job="{job}"}})'
            await harness.wait_for(partial(is_one, up), 90, f"{job} scraped", services)
            await harness.wait_for(partial(is_one, ready), 90, f"{job} ready", services)
        for service in services:  # the endpoints the compose healthchecks and Kubernetes probes call
            for path in ("/healthz", "/readyz"):
                with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}{path}", timeout=5) as response:
                    assert response.status == 200, (service.name, path)

        ingest_started = time.time()
        async with RawEventProducer(settings) as producer:
            await producer.ingest_page(SEED, source=SOURCE)
        assert producer.report.total_emitted == ITEMS and producer.report.total_dead_letters == 0

        # The producer's freshness mark (in this process: one-shot producers are not scraped).
        mark = REGISTRY.get_sample_value("newsstream_source_last_item_timestamp_seconds", {"source": SOURCE})
        assert mark is not None and ingest_started - 1 <= mark <= time.time()

        # Flow through every stage (>=: delivery is at-least-once).
        checks = {
            'sum(newsstream_items_in_total{job="newsstream-worker"})': ITEMS,
            'sum(newsstream_items_out_total{job="newsstream-worker"})': ITEMS,
            'sum(newsstream_items_in_total{job="newsstream-sink", topic=~"news.enriched.*"})': ITEMS,
            'sum(newsstream_sink_rows_written_total{job="newsstream-sink"})': ITEMS,
            'sum(newsstream_enriched_items_total{language="ar"})': ITEMS,
            # End-to-end latency, observed once per stored item.
            "sum(newsstream_ingest_to_store_seconds_count)": ITEMS,
            "sum(newsstream_publish_to_store_seconds_count)": _with_publication_time(SEED),
            "sum(newsstream_sink_write_seconds_count)": 1,
        }
        for promql, n in checks.items():
            await harness.wait_for(partial(at_least, promql, n), 90, f"{promql} >= {n}", services)

        # Sensible values: fetched -> stored within this test's lifetime, and never negative.
        elapsed = time.time() - ingest_started
        mean = prom.value("sum(newsstream_ingest_to_store_seconds_sum) / sum(newsstream_ingest_to_store_seconds_count)")
        assert mean is not None and 0 <= mean <= elapsed + 1
        # Every stored item took at most the test's duration; the histogram's
        # count in the bucket that covers it equals the total.
        p99 = prom.value("histogram_quantile(0.99, sum by (le) (newsstream_ingest_to_store_seconds_bucket))")
        assert p99 is not None and 0 < p99 <= 60
        last_write = prom.value('max(newsstream_sink_last_write_timestamp_seconds{job="newsstream-sink"})')
        assert last_write is not None and ingest_started <= last_write <= time.time()

        # Lag per partition of every enriched topic the sink owns. Tansu's end
        # offset reads a little high, so the values are only bounded, never 0-checked.
        await harness.wait_for(
            lambda: len(prom.query('newsstream_consumer_lag{service="sink", topic=~"news.enriched.*"}'))
            == 2 * settings.partitions,
            60, "sink lag for every enriched partition", services,
        )
        for labels, lag in prom.query('newsstream_consumer_lag{service="sink"}'):
            assert 0 <= lag <= ITEMS + 10, (labels, lag)
        await harness.wait_for(
            lambda: len(prom.query('newsstream_consumer_lag{service="worker", topic=~"news.raw.*"}'))
            == 2 * settings.partitions,
            60, "worker lag for every raw partition", services,
        )

        build = prom.query('newsstream_build_info{job="newsstream-sink"}')
        assert build and build[0][0]["version"] and build[0][0]["pipeline_version"].startswith("newsstream/")

        # The alert rules evaluate against live series without errors, and with a
        # healthy pipeline none of them fires.
        groups = prom.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) >= 6

        def alert_rules() -> list[dict[str, Any]]:
            return [rule for group in prom.api("rules", type="alert")["groups"] for rule in group["rules"]]

        # Prometheus reports a never-evaluated rule with a zero-year timestamp.
        await harness.wait_for(
            lambda: all(not r["lastEvaluation"].startswith("0001") for r in alert_rules()), 30, "rules evaluated", services
        )
        rules = alert_rules()
        assert [r["name"] for r in rules if r["health"] != "ok"] == []
        firing = [r["name"] for r in rules if r["state"] == "firing"]
        assert firing == []
    finally:
        prom.stop()

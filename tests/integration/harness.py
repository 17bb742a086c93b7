"""Running the real services as processes for integration tests.

The worker and the sink run as ``python -m newsstream worker|sink`` child
processes, exactly as deployed, so a test can kill -9 one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from newsstream.platform.settings import Settings
from newsstream.cli.demo import ServiceProcess, spawn_service

T = TypeVar("T")


def service_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same settings."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "NEWSSTREAM_STORE_URL": settings.store_url,
        "NEWSSTREAM_PARTITIONS": str(settings.partitions),
        "NEWSSTREAM_SESSION_TIMEOUT_S": str(settings.session_timeout_s),
        "NEWSSTREAM_REBALANCE_TIMEOUT_S": str(settings.rebalance_timeout_s),
        "NEWSSTREAM_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
        "NEWSSTREAM_WORKER_BATCH_WITHIN_S": "0.05",
        "NEWSSTREAM_SINK_BATCH_WAIT_MS": "100",
        "NEWSSTREAM_WORKER_APP_ID": settings.worker_app_id,
        "NEWSSTREAM_STORIES_ENABLED": str(settings.stories_enabled).lower(),
        "NEWSSTREAM_LOG_LEVEL": "info",
    }


def start(name: str, settings: Settings, log_dir: Path) -> ServiceProcess:
    env = {**service_env(settings), "NEWSSTREAM_WORKER_DATADIR": str(log_dir / f"{name}-data")}
    return spawn_service(name, [], env, log_dir)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a service's /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def ready(port: int) -> bool:
    """True when the service's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def metric_sum(port: int, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels`` (0 when the service has none yet)."""
    try:
        samples = scrape(port)
    except OSError:
        return 0.0
    return sum(
        value for (sample, lbls), value in samples.items()
        if sample == name and all(dict(lbls).get(k) == v for k, v in labels.items())
    )


async def wait_for(check: Callable[[], Awaitable[T] | T], timeout: float, what: str, services=()) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` and the service logs."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result:
            return result  # type: ignore[return-value]
        last = result
        for svc in services:
            if svc.proc.poll() is not None and svc.proc.returncode not in (0, -9, 137):
                raise AssertionError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{await diagnose(services)}")


async def diagnose(services) -> str:
    """What each service was doing: its item counters, for a worker the stacks of its
    threads and asyncio tasks (SIGUSR1: faust's worker, via mode, logs them), and its log tail."""
    parts = []
    counters: dict[int, dict[str, float]] = {}
    dump_from: dict[int, int] = {}
    for svc in services:
        counters[id(svc)] = {}
        dump_from[id(svc)] = len(svc.log_path.read_text(errors="replace"))
        if svc.proc.poll() is None:
            for name in ("newsstream_items_in_total", "newsstream_items_out_total", "newsstream_story_events_total"):
                counters[id(svc)][name.removeprefix("newsstream_")] = metric_sum(svc.metrics_port, name)
            if svc.name == "worker":
                os.kill(svc.proc.pid, signal.SIGUSR1)
    await asyncio.sleep(3)  # the dump is written from the worker's event loop
    for svc in services:
        text = svc.log_path.read_text(errors="replace")
        before, dump = text[: dump_from[id(svc)]], text[dump_from[id(svc)] :]
        tail = before[-3000:] + (f"\n[stacks]\n{dump[:30000]}" if dump.strip() else "")
        parts.append(f"--- {svc.name} (alive: {svc.proc.poll() is None}) {counters[id(svc)]}\n{tail}")
    return "\n".join(parts)

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

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from newsstream.cli.demo import ServiceProcess, spawn_service
from newsstream.platform.health import ready  # noqa: F401  (the tests poll harness.ready)
from newsstream.platform.settings import Settings

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
        "NEWSSTREAM_SINK_GROUP_ID": settings.sink_group_id,
        "NEWSSTREAM_STORIES_ENABLED": str(settings.stories_enabled).lower(),
        "NEWSSTREAM_EMBEDDINGS": str(settings.embeddings).lower(),
        "NEWSSTREAM_LOG_LEVEL": "info",
    }


def start(name: str, settings: Settings, log_dir: Path) -> ServiceProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
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
    # The dump is written from the worker's event loop: wait for it to land (bounded).
    deadline = time.monotonic() + 5
    workers = [svc for svc in services if svc.name == "worker" and svc.proc.poll() is None]
    while time.monotonic() < deadline and not all(
        "TASKS" in svc.log_path.read_text(errors="replace")[dump_from[id(svc)]:] for svc in workers
    ):
        await asyncio.sleep(0.1)
    for svc in services:
        text = svc.log_path.read_text(errors="replace")
        before, dump = text[: dump_from[id(svc)]], text[dump_from[id(svc)] :]
        tail = before[-3000:] + (f"\n[stacks]\n{dump[:30000]}" if dump.strip() else "")
        parts.append(f"--- {svc.name} (alive: {svc.proc.poll() is None}) {counters[id(svc)]}\n{tail}")
    return "\n".join(parts)


async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    """Each partition's true end, from the highwater of fetch responses (Tansu's ListOffsets
    answer is the start of the last batch, so it cannot be used for this)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                fetch_max_wait_ms=100)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=10_000)
            done = True
            for tp in parts:
                highwater = consumer.highwater(tp)
                done = done and highwater is not None and await consumer.position(tp) >= highwater
            if done:
                return {tp: consumer.highwater(tp) or 0 for tp in parts}
        raise AssertionError(f"could not read {topics} to their end")
    finally:
        await consumer.stop()


async def wait_committed(settings: Settings, group: str, topics: list[str], services: list, timeout: float = 60) -> None:
    """Until ``group`` has committed every record of ``topics``: its work is done and acknowledged."""

    async def all_committed() -> bool:
        ends = await end_offsets(settings, topics)
        # Assigned, not subscribed: reads the group's offsets without joining it.
        probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group,
                                 enable_auto_commit=False)
        await probe.start()
        try:
            probe.assign(list(ends))
            for tp, end in ends.items():
                if end and ((await probe.committed(tp)) or 0) < end:
                    return False
            return True
        finally:
            await probe.stop()

    await wait_for(all_committed, timeout, f"group {group} committed {topics}", services)

"""Throughput of the worker against a bare consume->produce loop, on the embedded broker.

    python bench/pipeline.py [--items 20000] [--article-items 5000] [--embeddings on|off|both]

For each payload (ticker lines of ~200 B, articles of ~3 KB) it starts the
process under test, waits until it is ready, produces N raw events and times
until N results are on the output topic (read by an independent consumer).
The same is done for a bare aiokafka consume->produce passthrough in its own
process. It prints items/s for both and their ratio, per worker setting of
``NEWSSTREAM_EMBEDDINGS`` (each its own worker app, so no state is shared).
One run, one machine: compare figures from the same run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from newsstream.contract import topics
from newsstream.contract.topics import TopicSpec
from newsstream.platform.broker import EmbeddedBroker, free_port
from newsstream.platform.health import ready
from newsstream.platform.kafka import ensure_topics, make_consumer, start_producer
from newsstream.platform.settings import Settings

PASS_IN, PASS_OUT = "bench.passthrough.in", "bench.passthrough.out"
FAST = {"session_timeout_s": 6.0, "rebalance_timeout_s": 3.0, "heartbeat_interval_s": 1.0}

ARTICLE_PARAGRAPH = (
    "قال وزير الخارجية في مؤتمر صحافي عقده اليوم في العاصمة إن المحادثات مع نظيره تناولت "
    "التعاون الاقتصادي والأمن الإقليمي وملفات الطاقة، مؤكداً أن البلدين عازمان على توسيع الشراكة. "
)


def ticker_event(n: int) -> bytes:
    return orjson.dumps({
        "schema_version": 1, "id": f"t_bench_{n}", "kind": "ticker", "source": "bench", "time": "12:00",
        "published_at": "2026-11-26T12:00:00Z", "text": f"مصدر رسمي: انطلاق جولة جديدة من المفاوضات رقم {n} في العاصمة",
        "attribution": "مصدر رسمي", "continues_previous": False, "thread_id": f"th_{n}", "fetched_at": "2026-11-26T12:00:05Z",
    })


def article_event(n: int) -> bytes:
    body = (f"تقرير رقم {n}. " + ARTICLE_PARAGRAPH * 14)[:3000]
    return orjson.dumps({
        "schema_version": 1, "id": f"a_bench_{n}", "kind": "article", "source": "bench", "url": f"https://example.org/{n}",
        "title": f"عنوان التقرير {n}", "body": body, "published_at": None, "fetched_at": "2026-11-26T12:00:05Z",
    })


async def passthrough_child(bootstrap: str) -> None:
    """The baseline: consume a batch, produce it, commit. Runs until killed."""
    settings = Settings(kafka_bootstrap_servers=bootstrap, **FAST)
    consumer = make_consumer(settings, PASS_IN, group_id="bench-passthrough", max_poll_records=10000)
    producer = await start_producer(settings)
    await consumer.start()
    print("ready", flush=True)
    while True:
        batches = await consumer.getmany(timeout_ms=100, max_records=10000)
        for records in batches.values():
            for record in records:
                await producer.send(PASS_OUT, record.value, key=record.key)
        if batches:
            await producer.flush()
            await consumer.commit()


async def produce(settings: Settings, topic: str, payloads: list[bytes]) -> None:
    producer = await start_producer(settings)
    try:
        for n, payload in enumerate(payloads):
            await producer.send(topic, payload, key=str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def time_through(settings: Settings, in_topic: str, out_topic: str, payloads: list[bytes]) -> float:
    """Seconds from the first produce to the N-th message on ``out_topic``."""
    counter = AIOKafkaConsumer(out_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                               auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=50)
    await counter.start()
    await counter.seek_to_end()
    await counter.position(next(iter(counter.assignment())))  # pin 'latest' before we produce
    started = time.perf_counter()
    producing = asyncio.create_task(produce(settings, in_topic, payloads))
    seen = 0
    deadline = started + 600
    while seen < len(payloads) and time.perf_counter() < deadline:
        batches = await counter.getmany(timeout_ms=200, max_records=10000)
        seen += sum(len(v) for v in batches.values())
    elapsed = time.perf_counter() - started
    await producing
    await counter.stop()
    if seen < len(payloads):
        raise RuntimeError(f"only {seen}/{len(payloads)} messages came through")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        if ready(port, timeout_s=1):
            return
        time.sleep(0.2)
    raise RuntimeError("worker not ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000, help="ticker lines per run")
    parser.add_argument("--article-items", type=int, default=5000, help="3 KB articles per run")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--embeddings", choices=("on", "off", "both"), default="off",
                        help="the worker's sentence encoder (on: ~55 lines/s a worker, use fewer items)")
    parser.add_argument("--passthrough-child", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.passthrough_child:
        asyncio.run(passthrough_child(args.passthrough_child))
        return

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, partitions=args.partitions, **FAST)
        specs = topics.topic_specs(args.partitions) + [
            TopicSpec(PASS_IN, args.partitions, {}), TopicSpec(PASS_OUT, args.partitions, {})
        ]
        asyncio.run(ensure_topics(settings, specs))

        child = subprocess.Popen([sys.executable, __file__, "--passthrough-child", broker.bootstrap],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        time.sleep(3)  # the group assignment lands shortly after start()
        modes = ["on", "off"] if args.embeddings == "both" else [args.embeddings]
        rows = []
        try:
            for mode in modes:
                port = free_port()
                env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "NEWSSTREAM_PARTITIONS": str(args.partitions),
                       "NEWSSTREAM_SESSION_TIMEOUT_S": "6", "NEWSSTREAM_REBALANCE_TIMEOUT_S": "3",
                       "NEWSSTREAM_HEARTBEAT_INTERVAL_S": "1", "NEWSSTREAM_WORKER_DATADIR": f"{tmp}/{mode}",
                       "NEWSSTREAM_WORKER_APP_ID": f"bench-worker-{mode}", "NEWSSTREAM_EMBEDDINGS": mode,
                       "NEWSSTREAM_LOG_LEVEL": "warning"}
                worker = subprocess.Popen([sys.executable, "-m", "newsstream", "worker", "--metrics-port", str(port)],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    wait_ready(port, worker, timeout=120)
                    for label, make, n, raw_topic, out_topic in (
                        ("ticker ~200 B", ticker_event, args.items, topics.RAW_TICKER, topics.ENRICHED_TICKER),
                        ("article ~3 KB", article_event, args.article_items, topics.RAW_ARTICLES, topics.ENRICHED_ARTICLES),
                    ):
                        payloads = [make(i) for i in range(n)]
                        cpu0 = cpu_seconds(child.pid)
                        base = asyncio.run(time_through(settings, PASS_IN, PASS_OUT, payloads))
                        cpu1 = cpu_seconds(worker.pid)
                        pipe = asyncio.run(time_through(settings, raw_topic, out_topic, payloads))
                        worker_cpu = (cpu_seconds(worker.pid) - cpu1) / n * 1e6
                        base_cpu = (cpu_seconds(child.pid) - cpu0) / n * 1e6
                        rows.append((mode, label, n, sum(map(len, payloads)) // n, n / pipe, n / base, worker_cpu, base_cpu))
                finally:
                    worker.terminate()
                    worker.wait(15)
        finally:
            child.terminate()
            child.wait(15)

    print(f"{'embeddings':<10} {'payload':<14} {'items':>7} {'bytes':>6} {'pipeline/s':>11} {'passthrough/s':>14} {'ratio':>6}"
          f" {'worker µs CPU/item':>19} {'passthrough µs CPU/item':>24}")
    for mode, label, n, size, pipe_rate, base_rate, worker_cpu, base_cpu in rows:
        print(f"{mode:<10} {label:<14} {n:>7} {size:>6} {pipe_rate:>11.0f} {base_rate:>14.0f} {pipe_rate / base_rate:>6.2f}"
              f" {worker_cpu:>19.0f} {base_cpu:>24.0f}")


if __name__ == "__main__":
    main()

"""Breaking-news latency: produce -> enriched and produce -> stored, p50/p99, at a few rates.

    python bench/latency.py [--rates 10,20,100,1000] [--seconds 10] [--embeddings on|off|both]

Starts the embedded broker, a worker and a SQLite sink as processes (as
deployed), then for each rate produces real breaking-news lines
(``../shared/data/aja_breaking_ticker``, each its own thread so stage 3 does
real work) onto the raw ticker topic for ``--seconds``. It records when each
line was produced, when its enriched event reached ``news.enriched.ticker.v1``
(a consumer in this process) and when the sink stored it (``stored_at``), and
prints p50/p99 of both spans and the rate reached. One machine, one run:
compare figures from the same run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from newsstream.cli.demo import FAST_GROUP_ENV, spawn_service
from newsstream.contract import topics
from newsstream.platform.broker import EmbeddedBroker
from newsstream.platform.health import ready
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.settings import Settings

SHARED = Path(os.environ.get("NEWSSTREAM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TICKER = SHARED / "aja_breaking_ticker" / "ticker.jsonl"


def sentences() -> list[str]:
    """Real breaking-news sentences (the part after the attribution), distinct."""
    out: list[str] = []
    for line in TICKER.read_bytes().splitlines():
        text = str(orjson.loads(line).get("text") or "")
        text = text.split("|", 1)[-1].split(":", 1)[-1].strip()
        if len(text) > 20 and text not in out:
            out.append(text)
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_rate(settings: Settings, store: Path, texts: list[str], rate: float, seconds: float, tag: str) -> dict[str, object]:
    count = max(1, int(rate * seconds))
    produced: dict[str, float] = {}
    enriched: dict[str, float] = {}
    consumer = AIOKafkaConsumer(topics.ENRICHED_TICKER, bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False, auto_offset_reset="latest", fetch_max_wait_ms=10,
                                group_id=f"latency-{tag}")
    await consumer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()

    async def listen() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for record in records:
                    enriched.setdefault(record.key.decode(), now)

    listener = asyncio.create_task(listen())
    producer = await start_producer(settings, linger_ms=0)
    started = time.perf_counter()
    for n in range(count):
        due = started + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        item_id = f"t_{tag}_{n}"
        now = datetime.now(UTC)
        value = orjson.dumps({
            "kind": "ticker", "id": item_id, "source": "latency-bench", "time": now.strftime("%H:%M"),
            "published_at": now.isoformat(), "fetched_at": now.isoformat(), "thread_id": f"th_{item_id}",
            "text": texts[n % len(texts)], "attribution": None,
        })
        produced[item_id] = time.time()
        await producer.send(topics.RAW_TICKER, value, key=item_id.encode())
    await producer.flush()
    produce_s = time.perf_counter() - started
    await producer.stop()
    stored: dict[str, float] = {}
    deadline = time.time() + 900.0  # above capacity the backlog drains at the pipeline's throughput
    while len(stored) < count and time.time() < deadline:
        await asyncio.sleep(0.5)
        with sqlite3.connect(store) as conn:
            rows = conn.execute("SELECT id, stored_at FROM ticker_items WHERE source = 'latency-bench'").fetchall()
        stored = {i: datetime.fromisoformat(at).timestamp() for i, at in rows if i.startswith(f"t_{tag}_")}
    listener.cancel()
    await consumer.stop()
    to_enriched = [(enriched[i] - at) * 1000 for i, at in produced.items() if i in enriched]
    to_stored = [(stored[i] - at) * 1000 for i, at in produced.items() if i in stored]
    return {
        "rate": rate, "lines": count, "produced_per_s": round(count / produce_s),
        "enriched_p50_ms": round(quantile(to_enriched, 0.5)), "enriched_p99_ms": round(quantile(to_enriched, 0.99)),
        "stored_p50_ms": round(quantile(to_stored, 0.5)), "stored_p99_ms": round(quantile(to_stored, 0.99)),
        "stored": len(to_stored), "mean_stored_ms": round(statistics.fmean(to_stored)) if to_stored else None,
        # Lines stored per second, first produce to last store: the throughput when the rate is above capacity.
        "stored_per_s": round(len(stored) / (max(stored.values()) - min(produced.values()))) if stored else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10,20,100,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--embeddings", choices=("on", "off", "both"), default="both")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    texts = sentences()
    modes = ["on", "off"] if args.embeddings == "both" else [args.embeddings]
    results = []
    for mode in modes:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
            work = Path(tmp)
            store = work / "bench.sqlite"
            env = {**FAST_GROUP_ENV, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "NEWSSTREAM_STORE_URL": f"sqlite:///{store}",
                   "NEWSSTREAM_EMBEDDINGS": "true" if mode == "on" else "false",
                   "NEWSSTREAM_WORKER_DATADIR": str(work / "worker-data"), "NEWSSTREAM_LOG_LEVEL": "warning"}
            settings = Settings(kafka_bootstrap_servers=broker.bootstrap, store_url=f"sqlite:///{store}")
            asyncio.run(ensure_topics(settings))
            services = [spawn_service("worker", [], env, work), spawn_service("sink", [], env, work)]
            try:
                deadline = time.time() + 120
                while not all(ready(s.metrics_port) for s in services):
                    if time.time() > deadline or any(s.proc.poll() is not None for s in services):
                        sys.exit(f"services not ready; logs in {work}")
                    time.sleep(0.2)
                asyncio.run(run_rate(settings, store, texts, 5, 2, f"warm{mode}"))  # warm the models and the groups
                for rate in rates:
                    result = {"embeddings": mode, **asyncio.run(run_rate(settings, store, texts, rate, args.seconds, f"r{int(rate)}{mode}"))}
                    results.append(result)
                    print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
            finally:
                for service in services:
                    service.stop()
    print(orjson.dumps(results).decode())


if __name__ == "__main__":
    os.environ.setdefault("NEWSSTREAM_LOG_LEVEL", "warning")
    main()

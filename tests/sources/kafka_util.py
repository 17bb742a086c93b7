"""Reading back what landed on the real broker (no mocks): every record of some topics."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsstream.platform.settings import Settings


async def read_all(settings: Settings, *topics: str, expect: int | None = None, idle_s: float = 1.5,
                   timeout_s: float = 30.0) -> list[tuple[str, bytes, dict]]:
    """(topic, key, value) of every record; stops after ``idle_s`` without news once ``expect`` is reached."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or
                                                                 await _partitions(consumer, t))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[tuple[str, bytes, dict]] = []
        deadline = time.monotonic() + timeout_s
        last_news = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    out.append((tp.topic, r.key, orjson.loads(r.value)))
                    last_news = time.monotonic()
            if (expect is None or len(out) >= expect) and time.monotonic() - last_news > idle_s:
                break
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return parts
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


def count_by_key(records: list[tuple[str, bytes, dict]]) -> Counter[bytes]:
    return Counter(key for _, key, _ in records)

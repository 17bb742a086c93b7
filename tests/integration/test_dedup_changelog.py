"""Completing faust's recovery of the dedup table on the embedded broker."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from newsstream.platform.settings import Settings
from newsstream.worker.changelog import add_missing_entries, read_changelog

pytestmark = pytest.mark.integration

TOPIC = "newsstream-worker-dedup-first-seen-changelog-test"


async def _write_batches(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for batch in (range(0, 10), range(10, 15)):  # two produce batches on partition 0
            for n in batch:
                await producer.send(TOPIC, orjson.dumps([f"a_{n}", 1.0, 0]), key=orjson.dumps(f"ticker:{n:04x}"), partition=0)
            await producer.flush()
            if batch.start == 0:
                # An expired claim: its tombstone must win over the claim.
                await producer.send_and_wait(TOPIC, None, key=orjson.dumps("ticker:0003"), partition=0)
    finally:
        await producer.stop()


async def test_the_embedded_broker_under_reports_the_end_of_a_partition(fast_settings: Settings) -> None:
    """Why the repair exists: ListOffsets stops at the last batch's start, fetch does not."""
    await _write_batches(fast_settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=fast_settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        end = (await consumer.end_offsets([TopicPartition(TOPIC, 0)]))[TopicPartition(TOPIC, 0)]
    finally:
        await consumer.stop()
    state = await read_changelog(fast_settings, TOPIC, [0])
    assert end < 16, "Tansu reports the true end now: the repair may no longer be needed"
    assert len(state) == 14 and "ticker:0003" not in state and state["ticker:000e"] == ["a_14", 1.0, 0]


async def test_claims_missing_after_recovery_are_added_and_present_ones_kept(fast_settings: Settings) -> None:
    await _write_batches(fast_settings.kafka_bootstrap_servers)
    # What faust recovered when it stopped at the reported end: the first batch only,
    # plus a claim written since (which must not be overwritten).
    table: dict[str, object] = {f"ticker:{n:04x}": [f"a_{n}", 1.0, 0] for n in range(10)}
    table["ticker:0001"] = ["a_new", 2.0, 0]
    added = await add_missing_entries(fast_settings, TOPIC, [0], table)
    assert added == 5
    assert table["ticker:000e"] == ["a_14", 1.0, 0] and table["ticker:0001"] == ["a_new", 2.0, 0]

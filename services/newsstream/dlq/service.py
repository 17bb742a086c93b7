"""``newsstream dlq replay``: read the dead-letter topic, re-publish the selected raw events. The Kafka shell.

The dead-letter topic is read from its start to the end it has when the run
starts (no consumer group: nothing is committed, a run can be repeated),
the selection and the raw records come from :mod:`newsstream.dlq.redrive`,
and the records go out through the ingest producer, acknowledged by the
broker before the summary is printed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from newsstream.contract import topics, wire
from newsstream.dlq.redrive import RawRecord, Selection, raw_record
from newsstream.errors import InfrastructureError
from newsstream.ingest.producer import RawEventProducer
from newsstream.platform.kafka import ensure_topics, make_consumer
from newsstream.platform.settings import Settings

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"  # a record on the dead-letter topic that is not a dead letter
TOO_LARGE = "too_large"  # still over the record size limit


@dataclass
class Summary:
    read: int = 0
    selected: int = 0
    republished: Counter[str] = field(default_factory=Counter)  # by raw topic
    skipped: Counter[str] = field(default_factory=Counter)  # by cause

    def lines(self, dry_run: bool = False) -> list[str]:
        verb = "would re-publish" if dry_run else "re-published"
        out = [f"dead letters read: {self.read}, selected: {self.selected}",
               f"{verb}: {sum(self.republished.values())}"
               + "".join(f"\n  {topic}: {n}" for topic, n in sorted(self.republished.items()))]
        if self.skipped:
            out.append("skipped: " + ", ".join(f"{n} {cause}" for cause, n in sorted(self.skipped.items())))
        return out


async def replay(settings: Settings, selection: Selection, *, dry_run: bool = False) -> Summary:
    """Re-publish the raw event of every selected dead letter (once per distinct record in a run)."""
    summary = Summary()
    planned: dict[RawRecord, None] = {}  # ordered: the dead-letter topic's order
    async for record in _dead_letter_records(settings):
        summary.read += 1
        try:
            letter = wire.loads_dead_letter(record.value or b"")
        except Exception:
            summary.skipped[UNREADABLE] += 1
            continue
        if not selection.matches(letter):
            continue
        summary.selected += 1
        found = raw_record(letter)
        if isinstance(found, str):
            summary.skipped[found] += 1
        else:
            planned[found] = None  # a dead letter delivered twice re-drives its record once
    if dry_run:
        summary.republished.update(r.topic for r in planned)
        return summary
    async with RawEventProducer(settings) as producer:
        for out in planned:
            try:
                await producer.send_record(out.topic, out.key, out.value)
            except MessageSizeTooLargeError:
                summary.skipped[TOO_LARGE] += 1
                continue
            summary.republished[out.topic] += 1
    log.info("dlq replay: %s", "; ".join(summary.lines()))
    return summary


# A run gives up when the broker answers no fetch of the dead-letter topic for this long.
READ_IDLE_TIMEOUT_S = 30.0


async def _dead_letter_records(settings: Settings) -> AsyncIterator[ConsumerRecord]:
    """Every record of the dead-letter topic up to the end it has now.

    The end is the highwater of the fetch responses: the embedded broker
    answers ListOffsets with the start of a partition's last batch.
    """
    await ensure_topics(settings)
    consumer: AIOKafkaConsumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=200)
    await consumer.start()
    try:
        await consumer.topics()  # metadata, for the partitions
        parts = [TopicPartition(topics.DEAD_LETTERS, p) for p in sorted(consumer.partitions_for_topic(topics.DEAD_LETTERS) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        progress = time.monotonic()
        while True:
            batch = await consumer.getmany(*parts, timeout_ms=500, max_records=1000)
            for tp in parts:
                for record in batch.get(tp, ()):
                    yield record
            if batch:
                progress = time.monotonic()
            ends = [consumer.highwater(tp) for tp in parts]
            if all(end is not None for end in ends):
                positions = [await consumer.position(tp) for tp in parts]
                if all(pos >= end for pos, end in zip(positions, ends)):  # type: ignore[operator]
                    return
            if time.monotonic() - progress > READ_IDLE_TIMEOUT_S:
                raise InfrastructureError(f"{topics.DEAD_LETTERS} could not be read to its end: no answer for "
                                          f"{READ_IDLE_TIMEOUT_S:.0f} s")
    finally:
        await consumer.stop()

"""Stage 2 of the worker: exact duplicates against a changelog-backed table.

Its input is partitioned by content hash, so every copy of one text reaches
the same partition and the same worker: any number of workers find the same
duplicates as one does. It forwards each item, marked when it copies an
earlier one, to stage 3 (or, with stage 3 off, to the enriched topics).

The dedup window runs on event time, as stage 3's windows and the offline
replay do: an item copies an earlier one when its event time is within the
window of the first's, and an entry is forgotten once the partition's stream
time has left it behind. A replay of an old archive gets the verdicts of
``newsstream eval stream``; the wall clock would forget every entry at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from newsstream.contract import topics, wire
from newsstream.dedup import exact
from newsstream.dedup.placement import event_time
from newsstream.platform import metrics
from newsstream.worker.changelog import ChangelogTail
from newsstream.worker.delivery import SERVICE, Output
from newsstream.worker.envelope import EnvelopeBuilder, EnvelopeItem, read_envelope
from newsstream.worker.stream_time import advanced


class DedupStage:
    """``first_seen`` is the faust table ``kind:content_hash -> [first item id, first seen (event time, epoch s), partition]``."""

    def __init__(self, output: Output, first_seen: Any, tail: ChangelogTail, *, ttl_s: float,
                 placement_topic: str | None) -> None:
        self.output = output
        self.first_seen = first_seen
        self.tail = tail
        self.ttl_s = ttl_s
        self.placement_topic = placement_topic  # None: stage 3 is off, write the enriched topics
        # Stream time per by-content partition: each partition's entries expire on
        # its own items' clock, whichever worker owns it and whatever else it owns.
        self.stream_time: dict[int, float] = {}

    def changelog(self) -> str:
        # Written with the worker's own awaited sends, like stage 3's tables
        # (see PlacementStage.flush_state), in the JSON faust's table codec reads.
        return self.first_seen.changelog_topic.get_topic_name()

    async def handle(self, events: Sequence[Any]) -> None:
        """One batch of faust events from the by-content topic (each an envelope)."""
        await self.tail.repair([self.first_seen])
        started = time.perf_counter()
        to_placement = EnvelopeBuilder()
        for event in events:
            msg = event.message
            for item in read_envelope(msg.value):
                if not isinstance(item, EnvelopeItem):
                    line, exc = item
                    await self.output.dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
                    continue
                try:
                    at = item.event_time if item.event_time is not None else event_time(wire.loads_enriched(item.value).raw)
                    self.stream_time[msg.partition] = advanced(self.stream_time.get(msg.partition, 0.0), at)
                    verdict, claimed = exact.check_and_claim(
                        self.first_seen.data, item.content_key, item.item_id, msg.partition, at, self.ttl_s
                    )
                    if claimed is not None:
                        # Written straight to the changelog partition of the envelope being
                        # processed: faust's table[key] = v would use the batch's last event.
                        await self.output.send(self.changelog(), orjson.dumps(item.content_key),
                                               orjson.dumps(list(claimed)), msg.partition)
                    out_topic = topics.ENRICHED_TOPIC_BY_KIND[item.kind]
                    value = item.value  # a first occurrence is forwarded as it is
                    if verdict.first_id is not None:
                        value = wire.dumps(exact.mark_duplicate(wire.loads_enriched(value), verdict.first_id))
                    if self.placement_topic is not None:
                        to_placement.add(0, item.content_key, item.item_id, item.kind, value, event_time=at,
                                         origin=item.origin)
                        continue
                except Exception as exc:
                    await self.output.item_dead_letter(msg, item, exc)
                    continue
                await self.output.send(out_topic, item.item_id.encode(), value)
                metrics.ITEMS_OUT.labels(SERVICE, out_topic).inc()
                if verdict.first_id is not None:
                    metrics.DUPLICATES.labels(SERVICE, out_topic, "exact").inc()
        for partition, envelope in to_placement.drain():
            assert self.placement_topic is not None
            await self.output.send(self.placement_topic, None, envelope, partition)
        metrics.PROCESSING_SECONDS.labels(SERVICE, "dedup").observe(time.perf_counter() - started)

    async def expire(self, owned_partitions: Iterable[int]) -> int:
        """Forget content hashes older than the dedup window (in each partition's stream time), so memory stays bounded."""
        removed = 0
        now = {p: self.stream_time[p] for p in owned_partitions if p in self.stream_time}
        for key, partition in exact.expired_keys(self.first_seen.data, now, self.ttl_s):
            self.first_seen.data.pop(key, None)
            await self.output.send(self.changelog(), orjson.dumps(key), None, partition)
            removed += 1
        metrics.DEDUP_STATE_KEYS.set(len(self.first_seen.data))
        return removed

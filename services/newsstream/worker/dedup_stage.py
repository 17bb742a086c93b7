"""Stage 2 of the worker: exact duplicates against a changelog-backed table.

Its input is partitioned by content hash, so every copy of one text reaches
the same partition and the same worker: any number of workers find the same
duplicates as one does. It forwards each item, marked when it copies an
earlier one, to stage 3 (or, with stage 3 off, to the enriched topics).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from newsstream.contract import topics, wire
from newsstream.dedup import exact
from newsstream.platform import metrics
from newsstream.worker.changelog import ChangelogTail
from newsstream.worker.delivery import SERVICE, Output
from newsstream.worker.envelope import EnvelopeBuilder, EnvelopeItem, read_envelope


class DedupStage:
    """``first_seen`` is the faust table ``kind:content_hash -> [first item id, first seen (epoch s), partition]``."""

    def __init__(self, output: Output, first_seen: Any, tail: ChangelogTail, *, ttl_s: float,
                 placement_topic: str | None) -> None:
        self.output = output
        self.first_seen = first_seen
        self.tail = tail
        self.ttl_s = ttl_s
        self.placement_topic = placement_topic  # None: stage 3 is off, write the enriched topics

    def changelog(self) -> str:
        # Written with the worker's own awaited sends, like stage 3's tables
        # (see PlacementStage.flush_state), in the JSON faust's table codec reads.
        return self.first_seen.changelog_topic.get_topic_name()

    async def handle(self, events: Sequence[Any]) -> None:
        """One batch of faust events from the by-content topic (each an envelope)."""
        await self.tail.repair([self.first_seen])
        started = time.perf_counter()
        now = time.time()
        to_placement = EnvelopeBuilder()
        for event in events:
            msg = event.message
            for item in read_envelope(msg.value):
                if not isinstance(item, EnvelopeItem):
                    line, exc = item
                    await self.output.dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
                    continue
                try:
                    verdict, claimed = exact.check_and_claim(
                        self.first_seen.data, item.content_key, item.item_id, msg.partition, now, self.ttl_s
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
                        to_placement.add(0, item.content_key, item.item_id, item.kind, value)
                        continue
                except Exception as exc:
                    await self.output.dead_letter(msg.topic, msg.partition, msg.offset, item.line, exc, item.item_id)
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
        """Forget content hashes older than the dedup window, so memory stays bounded."""
        removed = 0
        for key, partition in exact.expired_keys(self.first_seen.data, time.time(), self.ttl_s, owned_partitions):
            self.first_seen.data.pop(key, None)
            await self.output.send(self.changelog(), orjson.dumps(key), None, partition)
            removed += 1
        metrics.DEDUP_STATE_KEYS.set(len(self.first_seen.data))
        return removed

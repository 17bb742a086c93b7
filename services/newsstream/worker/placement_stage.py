"""Stage 3 of the worker: near-duplicates, ticker threads and stories, on one ordered input.

A near copy shares no key with its original (only LSH band keys) and a story
gathers items with nothing in common but their words, so stage 3 reads one
partition with one writer: the same duplicates, threads and stories whether
one worker runs or ten (the others stand by and take over the partition,
recovering its tables from the changelogs). The placing itself is pure
(:class:`newsstream.dedup.placement.Placement`); this is its Kafka shell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson

from newsstream.contract import topics, wire
from newsstream.dedup.placement import Placement, PlacementConfig, event_time
from newsstream.platform import metrics
from newsstream.platform.settings import Settings
from newsstream.worker.changelog import ChangelogTail, ChangelogWrites
from newsstream.worker.delivery import SERVICE, Output
from newsstream.worker.envelope import EnvelopeItem, read_envelope
from newsstream.worker.stream_time import advanced

log = logging.getLogger(__name__)


class PlacementStage:
    """``tables`` maps each of ``CHANGELOGGED_TABLES`` to its faust table (one partition each)."""

    def __init__(self, settings: Settings, output: Output, tables: dict[str, Any], tail: ChangelogTail) -> None:
        self.output = output
        self.tables = tables
        self.tail = tail
        self.state = {name: ChangelogWrites(lambda t=table: t.data) for name, table in tables.items()}
        self.near_bands: dict[str, Any] = {}  # derived from near_items: rebuilt, not changelogged
        self.placement = Placement(PlacementConfig.from_settings(settings), {"near_bands": self.near_bands, **self.state})
        # "now" for expiry (see newsstream.worker.stream_time).
        self.stream_time = 0.0
        self.lock = asyncio.Lock()  # the expiry timer mutates the same state

    async def flush_state(self) -> None:
        """Send each state key changed since the last call to its table's changelog, once.

        Awaited sends, like the outputs, and not faust's ``send_changelog``:
        that one queues in faust's producer buffer, which throttles the stream
        when it holds more than 100 records and whose flush before a commit
        gives up on a record slower than 0.1 s. A commit of stage 3's input
        could then overtake state that had not reached the changelog, and a
        crash would lose it. aiokafka's flush before each commit waits for
        every awaited send. Keys and values are JSON, as faust's table codecs
        read them back.
        """
        for name, writes in self.state.items():
            changelog = self.tables[name].changelog_topic.get_topic_name()
            for key, value in writes.drain():
                await self.output.send(changelog, orjson.dumps(key), None if value is None else orjson.dumps(value), 0)

    async def emit(self, enriched: Any, story_event: Any) -> None:
        out_topic = topics.ENRICHED_TOPIC_BY_KIND[enriched.kind]
        await self.output.send(out_topic, enriched.id.encode(), wire.dumps(enriched))
        metrics.ITEMS_OUT.labels(SERVICE, out_topic).inc()
        kind = enriched.enrichment.duplicate_kind
        if kind is not None:
            metrics.DUPLICATES.labels(SERVICE, out_topic, kind).inc()
        if story_event is not None:
            await self.output.send(topics.STORIES, story_event.story_id.encode(), wire.dumps(story_event))

    async def handle(self, events: Sequence[Any]) -> None:
        """One batch of faust events from the placement topic (each an envelope)."""
        if await self.tail.repair(list(self.tables.values()), sync=True):
            indexed = self.placement.near.rebuild_bands()
            vectors = self.placement.stories.rebuild_vectors()
            log.info("stage 3 state ready: %d near-dup signatures and %d story vectors indexed, %d thread keys, "
                     "%d story keys", indexed, vectors, len(self.tables["threads"].data), len(self.tables["stories"].data))
        started = time.perf_counter()
        items = []
        for event in events:
            msg = event.message
            for item in read_envelope(msg.value):
                if not isinstance(item, EnvelopeItem):
                    line, exc = item
                    await self.output.dead_letter(msg.topic, msg.partition, msg.offset, line, exc)
                    continue
                try:
                    items.append(wire.loads_enriched(item.value))
                except Exception as exc:
                    await self.output.item_dead_letter(msg, item, exc)
        # Event-time order within a batch: the earlier of two copies that
        # arrive together is the original, whatever partition each came from.
        items.sort(key=lambda e: (event_time(e.raw), e.id))
        async with self.lock:
            for enriched in items:
                await self._place(enriched)
            await self.flush_state()
        metrics.PROCESSING_SECONDS.labels(SERVICE, "placement").observe(time.perf_counter() - started)

    async def _place(self, enriched: Any) -> None:
        try:
            placed = self.placement.place(enriched, enriched.enrichment.duplicate_of)
        except Exception as exc:  # a clustering bug must not cost the item
            metrics.PLACEMENT_ERRORS.inc()
            log.exception("placement failed; emitting the item with its exact verdict only",
                          extra={"item_id": enriched.id, "error_type": type(exc).__name__})
            await self.emit(enriched, None)
            return
        self.stream_time = advanced(self.stream_time, event_time(enriched.raw))
        story_event = placed.story.event
        if story_event is None:
            # Seen before (re-delivered after a restart): publish the story's
            # current state again, in case the first event was lost with the
            # crash. Same story id, no "created": a compacted topic absorbs it.
            story_event = self.placement.stories.current_event(placed.story.story_id, enriched.id)
            if story_event is not None:
                metrics.STORY_EVENTS.labels("replayed").inc()
        else:
            metrics.STORY_EVENTS.labels(story_event.event).inc()
        await self.emit(placed.enriched, story_event)

    def owns_state(self, assigned_actives: Any) -> bool:
        changelog = self.tables["stories"].changelog_topic.get_topic_name()
        return any(tp.topic == changelog for tp in assigned_actives)

    async def expire(self) -> int:
        """Forget near-dup entries, threads and stories past their windows (in stream time).

        A forgotten story is tombstoned on the compacted stories topic (key:
        story id, no value), so a consumer rebuilding from the topic gets the
        live stories only. The tombstones go before the state's changelog
        records: a crash in between leaves the story in the recovered state,
        and the next expiry sends them again.
        """
        if not self.stream_time:
            return 0
        async with self.lock:  # one writer: its changelog records stay in order
            expired = self.placement.expire(self.stream_time)
            for story_id in expired.stories:
                await self.output.send(topics.STORIES, story_id.encode(), None)
            await self.flush_state()
        metrics.STORY_EVENTS.labels("expired").inc(len(expired.stories))
        for name, table in self.tables.items():
            metrics.PLACEMENT_STATE_KEYS.labels(name).set(len(table.data))
        metrics.PLACEMENT_STATE_KEYS.labels("near_bands").set(len(self.near_bands))
        return expired.keys

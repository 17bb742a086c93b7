"""Dead letters of stages 2 and 3 point at the raw record (issue 15, item 6), so they can be re-driven.

Stage 1 carries each item's raw coordinates in the envelope header; stages 2 and 3 put them in
a dead letter, with where they read the item in ``input_ref`` and the enriched event as payload.
Before: they pointed at the worker's internal by-content or placement topic.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from newsstream.contract import topics, wire
from newsstream.contract.models import RawArticle
from newsstream.dedup.placement import CHANGELOGGED_TABLES
from newsstream.platform.settings import Settings
from newsstream.worker.dedup_stage import DedupStage
from newsstream.worker.enrich_stage import EnrichStage
from newsstream.worker.envelope import EnvelopeBuilder, EnvelopeItem, Origin, read_envelope
from newsstream.worker.placement_stage import PlacementStage
from tests.unit.stages import NO_TAIL, RecordingOutput, Table, event

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RAW = RawArticle(id="a_edited", source="agency", title="عنوان", body="أعلنت الوزارة اليوم عن خطة جديدة للنقل العام",
                 published_at=AT, fetched_at=AT)
RAW_AT = Origin(topics.RAW_ARTICLES, 3, 1234)


def _through_stage_1(output: RecordingOutput) -> list[object]:
    asyncio.run(EnrichStage(output, "app-by-content", 4).handle([event(*RAW_AT, wire.dumps(RAW), RAW.id.encode())]))
    return [event("app-by-content", s.partition, 7, s.value) for s in output.to("app-by-content")]


def test_a_stage_2_dead_letter_points_at_the_raw_record_and_carries_the_enriched_event() -> None:
    output = RecordingOutput()
    envelopes = _through_stage_1(output)
    first_seen = Table("dedup-first-seen")
    (item,) = read_envelope(envelopes[0].message.value)  # type: ignore[attr-defined]
    assert isinstance(item, EnvelopeItem) and item.origin == RAW_AT
    first_seen.data[item.content_key] = "not an entry"  # a corrupt state entry: the item fails in stage 2
    stage = DedupStage(output, first_seen, NO_TAIL, ttl_s=3600.0, placement_topic="app-placement")
    asyncio.run(stage.handle(envelopes))
    (letter,) = output.dead_letters()
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == RAW_AT
    assert letter.input_ref == f"app-by-content[{envelopes[0].message.partition}]@7"  # type: ignore[attr-defined]
    assert (letter.stage, letter.reason) == ("worker", "processing_error")
    assert wire.loads_enriched(letter.payload).raw == RAW


def test_stage_2_passes_the_coordinates_on_and_a_stage_3_dead_letter_points_at_the_raw_record() -> None:
    output = RecordingOutput()
    stage = DedupStage(output, Table("dedup-first-seen"), NO_TAIL, ttl_s=3600.0, placement_topic="app-placement")
    asyncio.run(stage.handle(_through_stage_1(output)))
    (envelope,) = output.to("app-placement")
    (item,) = read_envelope(envelope.value)
    assert isinstance(item, EnvelopeItem) and item.origin == RAW_AT

    # An item stage 3 cannot read (say, from a worker of another version).
    builder = EnvelopeBuilder()
    builder.add(0, item.content_key, item.item_id, item.kind, b'{"kind": "article", "id": "a_edited"}',
                event_time=item.event_time, origin=item.origin)
    placement = PlacementStage(Settings(), output, {n: Table(n) for n in CHANGELOGGED_TABLES}, NO_TAIL)
    asyncio.run(placement.handle([event("app-placement", 0, 42, envelope) for _, envelope in builder.drain()]))
    (letter,) = output.dead_letters()
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == RAW_AT
    assert (letter.input_ref, letter.reason) == ("app-placement[0]@42", "validation_error")

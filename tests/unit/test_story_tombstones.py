"""Stories leave the compacted topic when they expire (issue 15, item 5).

Stage 3 tombstones a story it forgets (key: story id, no value) on
news.stories.v1; stories expire on stream time. The sink's side (a tombstone
marks the row expired, on the real broker) is in tests/integration/test_sink.py,
the stores' in tests/unit/test_stores.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from newsstream.contract import topics, wire
from newsstream.contract.models import RawArticle
from newsstream.dedup.placement import CHANGELOGGED_TABLES
from newsstream.enrich.item import enrich
from newsstream.platform.settings import Settings
from newsstream.worker.envelope import EnvelopeBuilder
from newsstream.worker.placement_stage import PlacementStage
from tests.dedup.texts import MATCH, MATCH_TITLE, QUAKE_A, QUAKE_A_TITLE
from tests.unit.stages import NO_TAIL, RecordingOutput, Table, event

T0 = datetime(2025, 2, 6, 8, 0, tzinfo=UTC)


def _placement_events(*raws: RawArticle) -> list[object]:
    builder = EnvelopeBuilder()
    for raw in raws:
        e = enrich(raw, T0)
        builder.add(0, f"{e.kind}:{e.enrichment.content_hash}", e.id, e.kind, wire.dumps(e))
    return [event("placement", 0, n, envelope) for n, (_, envelope) in enumerate(builder.drain())]


def _article(id_: str, hours: float, title: str, body: str) -> RawArticle:
    at = T0 + timedelta(hours=hours)
    return RawArticle(id=id_, source="agency", title=title, body=body, published_at=at, fetched_at=at)


def test_a_story_past_its_ttl_is_tombstoned_on_the_stories_topic() -> None:
    """Before: expired stories stayed on the compacted topic forever."""
    output = RecordingOutput()
    stage = PlacementStage(Settings(), output, {n: Table(n) for n in CHANGELOGGED_TABLES}, NO_TAIL)

    async def run() -> None:
        await stage.handle(_placement_events(_article("a_quake", 0, QUAKE_A_TITLE, QUAKE_A)))
        await stage.expire()  # stream time is the quake's: nothing is old yet
        # Four days of stream time later (the story TTL is 72 h), another story arrives.
        await stage.handle(_placement_events(_article("a_match", 96, MATCH_TITLE, MATCH)))
        await stage.expire()

    asyncio.run(run())
    stories = output.to(topics.STORIES)
    created = {wire.loads_story(s.value).trigger_id: s.key for s in stories if s.value is not None}
    tombstones = [s.key for s in stories if s.value is None]
    assert tombstones == [created["a_quake"]]  # the quake's story is gone, the match's is live
    assert stories[-1].value is None  # after its events, on the same key: compaction drops the story
    assert output.dead_letters() == []

"""Exact dedup runs on stream time (issue 15, item 4): a replay of an old archive through the
worker's stages 1 and 2 gets the verdicts of the offline replay (``newsstream eval stream``).

Before: stage 2 claimed and expired on the wall clock while stage 3 and the replay used event
time, so copies two days apart in an archive were duplicates in the worker and not in the replay.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from newsstream.contract import topics, wire
from newsstream.contract.models import RawArticle
from newsstream.evaluation.stream_replay import Pipeline
from newsstream.worker.dedup_stage import DedupStage
from newsstream.worker.enrich_stage import EnrichStage
from tests.unit.stages import NO_TAIL, RecordingOutput, Table, event

ARCHIVE_START = datetime(2019, 3, 1, 8, 0, tzinfo=UTC)
WIRE_STORY = "أعلنت وزارة الطاقة الأردنية اليوم عن مشروع جديد لتخزين الكهرباء في محافظة معان بقدرة كبيرة"
OTHER_STORY = "افتتح مهرجان الفيلم العربي دورته العاشرة بحضور عدد كبير من المخرجين والنقاد"
PARTITIONS = 4


def _article(n: int, hours: float, body: str) -> RawArticle:
    at = ARCHIVE_START + timedelta(hours=hours)
    return RawArticle(id=f"a_{n}", source=f"outlet-{n}", url=f"https://outlet-{n}.example/{n}", title=f"عنوان {n}",
                      body=body, published_at=at, fetched_at=at + timedelta(minutes=5))


# A wire story and its copies over three days of 2019; the dedup window is 48 hours.
ARCHIVE = [
    _article(1, 0, WIRE_STORY),
    _article(2, 1, WIRE_STORY),  # an hour later: a copy of a_1
    _article(3, 50, WIRE_STORY),  # 50 hours later: a_1 is out of the window, a_3 is a first again
    _article(4, 51, WIRE_STORY),  # a copy of a_3
    _article(5, 52, OTHER_STORY),
]


def _replay_verdicts() -> dict[str, str | None]:
    pipeline = Pipeline()
    return {raw.id: pipeline.process(raw).exact_of for raw in ARCHIVE}


async def _worker_verdicts() -> dict[str, str | None]:
    """Each item through stage 1 and stage 2 (stage 3 off), the expiry timer ticking between items."""
    output = RecordingOutput()
    enrich = EnrichStage(output, "by-content", PARTITIONS)
    dedup = DedupStage(output, Table("dedup-first-seen"), NO_TAIL, ttl_s=48 * 3600.0, placement_topic=None)
    for offset, raw in enumerate(ARCHIVE):
        await enrich.handle([event(topics.RAW_ARTICLES, 0, offset, wire.dumps(raw), raw.id.encode())])
        envelopes = output.to("by-content")[-1:]
        await dedup.handle([event("by-content", s.partition, offset, s.value) for s in envelopes])
        await dedup.expire(range(PARTITIONS))
    assert output.to(topics.DEAD_LETTERS) == []
    enriched = [wire.loads_enriched(s.value) for s in output.to(topics.ENRICHED_ARTICLES) if s.value is not None]
    return {e.id: e.enrichment.duplicate_of for e in enriched}


def test_an_archive_replay_through_the_worker_gets_the_verdicts_of_eval_stream() -> None:
    expected = _replay_verdicts()
    assert expected == {"a_1": None, "a_2": "a_1", "a_3": None, "a_4": "a_3", "a_5": None}
    assert asyncio.run(_worker_verdicts()) == expected


def test_the_expiry_timer_keeps_an_archive_entry_until_the_archive_moves_past_it() -> None:
    """The window runs on event time, so its expiry must too: a wall-clock timer would forget a 2019 entry at once."""

    async def run() -> tuple[int, int]:
        output = RecordingOutput()
        table = Table("dedup-first-seen")
        dedup = DedupStage(output, table, NO_TAIL, ttl_s=48 * 3600.0, placement_topic=None)
        await EnrichStage(output, "by-content", PARTITIONS).handle(
            [event(topics.RAW_ARTICLES, 0, 0, wire.dumps(ARCHIVE[0]), b"a_1")])
        await dedup.handle([event("by-content", s.partition, 0, s.value) for s in output.to("by-content")])
        return await dedup.expire(range(PARTITIONS)), len(table.data)

    assert asyncio.run(run()) == (0, 1)

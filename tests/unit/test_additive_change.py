"""Additive schema change (issue 15, item 1): a field added within a version must not break older readers.

Readers of every topic ignore fields they do not know, the published schemas
admit them, and only the ingest edge refuses them (a producer's typo). The
check of the committed schemas against the last release is in test_schemas.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from pydantic import ValidationError

from newsstream.contract import topics, wire
from newsstream.contract.models import DeadLetter, EnrichedArticle, StoryEvent
from newsstream.contract.schemas import schema_documents
from newsstream.ingest.events import event_from_record
from newsstream.platform.settings import Settings
from newsstream.sink.service import _Sink

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _from_a_newer_version(event: Any) -> dict[str, Any]:
    """The event as a newer producer would write it: unknown fields at the top and nested."""
    record = orjson.loads(wire.dumps(event))
    record["added_in_v1_1"] = {"anything": [1, 2]}
    if "enrichment" in record:
        record["raw"]["paywalled"] = False
        record["enrichment"]["sentiment"] = 0.3
        record["enrichment"]["entities"][0]["wikidata"] = "Q3820"
    if "members" in record:
        record["members"][0]["weight"] = 1.0
    return record


def _article(events: Any) -> EnrichedArticle:
    return events.article(1, entities=[{"type": "LOC", "text": "بيروت", "field": "body", "start": 0, "end": 5,
                                        "source": "gazetteer"}])


def test_readers_of_every_topic_ignore_fields_they_do_not_know(events) -> None:  # type: ignore[no-untyped-def]
    """Before: extra="forbid" everywhere, so every event of a newer worker was a dead letter to an older sink."""
    article = _article(events)
    story = StoryEvent(story_id="st_1", event="created", revision=1, headline="h", first_seen=NOW, last_seen=NOW,
                       member_count=1, members=[{"id": "a_0001", "kind": "article", "source": "s", "at": NOW,
                                                 "similarity": 1.0, "joined_by": "founder"}],
                       sources=["s"], trigger_id="a_0001")
    letter = events.dead_letter(1)
    for event, read in ((article, wire.loads_enriched), (story, wire.loads_story), (letter, wire.loads_dead_letter),
                        (article.raw, wire.loads_raw)):
        assert read(orjson.dumps(_from_a_newer_version(event))) == event


def test_the_ingest_edge_still_refuses_a_producers_typo() -> None:
    record = {"kind": "article", "source": "s", "body": "نص", "titel": "عنوان", "fetched_at": NOW.isoformat()}
    with pytest.raises(ValidationError) as caught:
        event_from_record(record, NOW)
    reason, detail = wire.describe_error(caught.value)
    assert reason == "validation_error" and detail == "article.titel: Extra inputs are not permitted"


def test_published_schemas_admit_fields_added_later() -> None:
    for name, body in schema_documents().items():
        assert b'"additionalProperties": false' not in body, name


def test_an_older_sink_stores_the_events_of_a_newer_worker(events, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sink = _Sink(Settings(store_url=f"sqlite:///{tmp_path / 's.sqlite'}"), asyncio.Event())
    newer = [(topics.ENRICHED_ARTICLES, _article(events)), (topics.DEAD_LETTERS, events.dead_letter(2))]
    records = {
        TopicPartition(topic, 0): [SimpleNamespace(value=orjson.dumps(_from_a_newer_version(event)), offset=0,
                                                   key=b"k", timestamp=0)]
        for topic, event in newer
    }
    batch, to_dlq = sink.decode(records)  # type: ignore[arg-type]
    assert to_dlq == [] and [type(e) for e in batch] == [EnrichedArticle, DeadLetter]

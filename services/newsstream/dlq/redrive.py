"""Which dead letters to re-drive, and the raw record each one re-publishes. Pure: no Kafka here.

A dead letter is re-driven once the cause of its failure is fixed (a bug, a
database constraint, a limit): its raw event goes back onto the raw topic it
belongs to, keyed by the event's id, and flows through the pipeline again.
Because every consumer is idempotent by id (the sink upserts, guarded by
version), re-driving twice changes nothing downstream.

The raw event is found in the payload: the raw record itself (stage 1 of the
worker, the ingest edge), or the raw event inside an enriched event (stages 2
and 3 of the worker, the sink's ``store_rejected``; an older worker's stage 2
and 3 dead letters hold the envelope line around it). A payload that was cut
(``payload_truncated``) or holds no raw event with an id is skipped and
counted: it must be fixed and ingested again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from newsstream.contract import topics, wire
from newsstream.contract.models import DeadLetter

# Why a selected dead letter is not re-driven.
TRUNCATED = "truncated"  # only the start of the input was kept
NOT_A_RAW_EVENT = "not_a_raw_event"  # the payload holds no valid raw event (a bad JSONL line, say)


@dataclass(frozen=True)
class Selection:
    """The dead letters to re-drive: every filter given must match (an empty one matches all)."""

    reasons: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    since: datetime | None = None  # failed_at at or after
    until: datetime | None = None  # failed_at before

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.stages or letter.stage in self.stages)
            and (self.since is None or letter.failed_at >= self.since)
            and (self.until is None or letter.failed_at < self.until)
        )


class RawRecord(NamedTuple):
    """What to publish again: the raw event, keyed by its id, on its raw topic."""

    topic: str
    key: str  # the raw event's id
    value: bytes


def raw_record(letter: DeadLetter) -> RawRecord | str:
    """The raw record ``letter`` re-drives, or why it cannot (:data:`TRUNCATED`, :data:`NOT_A_RAW_EVENT`)."""
    if letter.payload_truncated:
        return TRUNCATED
    payload = base64.b64decode(letter.payload) if letter.payload_encoding == "base64" else letter.payload.encode()
    try:
        value = _raw_event_bytes(payload)
        event = wire.loads_raw(value)
    except Exception:
        return NOT_A_RAW_EVENT
    # The raw topic it was read from, when the coordinates name one; else the one of its kind.
    topic = letter.source_topic if letter.source_topic in topics.RAW_TOPICS else topics.RAW_TOPIC_BY_KIND[event.kind]
    return RawRecord(topic, event.id, value)


def _raw_event_bytes(payload: bytes) -> bytes:
    """The raw event in a payload, as it was written (unknown fields kept for newer readers)."""
    if payload.startswith(b"["):  # an envelope line of an older worker: header, tab, enriched event
        payload = payload.partition(b"\t")[2]
    record: Any = orjson.loads(payload)
    if isinstance(record, dict) and isinstance(record.get("raw"), dict) and "enrichment" in record:
        return orjson.dumps(record["raw"])  # an enriched event holds the raw event unchanged
    return payload

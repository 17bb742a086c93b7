"""Which dead letters ``newsstream dlq replay`` re-drives, and the raw record each one re-publishes
(pure; the end-to-end run on the broker is tests/integration/test_dlq_replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from newsstream.contract import topics, wire
from newsstream.contract.models import DeadLetter
from newsstream.dlq.redrive import NOT_A_RAW_EVENT, TRUNCATED, RawRecord, Selection, raw_record

RAW = b'{"kind":"ticker","id":"t_1","source":"tv","time":"09:30","published_at":"2026-01-05T09:30:00Z",' \
      b'"text":"\xd9\x86\xd8\xb5","thread_id":"th_1","fetched_at":"2026-01-05T09:31:00Z","added_later":1}'


def _letter(payload: bytes | str, *, stage: str = "worker", reason: str = "processing_error",
            source_topic: str | None = topics.RAW_TICKER, failed_at: datetime | None = None) -> DeadLetter:
    letter = wire.dead_letter(payload, stage=stage, reason=reason, error="e", source_topic=source_topic,
                              source_partition=1, source_offset=5)
    return letter.model_copy(update={"failed_at": failed_at}) if failed_at else letter


def test_a_raw_record_is_re_published_byte_for_byte_to_its_topic_keyed_by_its_id() -> None:
    assert raw_record(_letter(RAW)) == RawRecord(topics.RAW_TICKER, "t_1", RAW)
    # Without raw coordinates (the sink's dead letters point at an enriched topic): the topic of its kind.
    assert raw_record(_letter(RAW, stage="sink", source_topic=topics.ENRICHED_TICKER)).topic == topics.RAW_TICKER


def test_the_raw_event_inside_an_enriched_event_or_an_older_envelope_line_is_re_published(events) -> None:  # type: ignore[no-untyped-def]
    enriched = events.article(3)
    expected = RawRecord(topics.RAW_ARTICLES, "a_0003", orjson.dumps(orjson.loads(wire.dumps(enriched))["raw"]))
    stored = _letter(wire.dumps(enriched), stage="sink", reason="store_rejected", source_topic=topics.ENRICHED_ARTICLES)
    assert raw_record(stored) == expected
    line = b'["article:h_0003", "a_0003", "article"]\t' + wire.dumps(enriched)
    assert raw_record(_letter(line, source_topic="newsstream-worker-placement")) == expected
    assert wire.loads_raw(expected.value) == enriched.raw


def test_a_cut_payload_or_one_without_a_raw_event_is_skipped_with_its_cause() -> None:
    cut = _letter(RAW).model_copy(update={"payload_truncated": True})
    assert raw_record(cut) == TRUNCATED
    for payload in (b"{not json", b'{"kind": "article", "body": "no id"}', b"\xff\xfe", b"[1, 2]"):
        assert raw_record(_letter(payload, stage="ingest", source_topic=None)) == NOT_A_RAW_EVENT, payload


def test_the_selection_filters_by_reason_stage_and_failure_time() -> None:
    t0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    letter = _letter(RAW, reason="store_rejected", stage="sink", failed_at=t0)
    assert Selection().matches(letter)
    assert Selection(reasons=frozenset({"store_rejected", "processing_error"}), stages=frozenset({"sink"})).matches(letter)
    assert not Selection(reasons=frozenset({"invalid_json"})).matches(letter)
    assert not Selection(stages=frozenset({"worker"})).matches(letter)
    assert Selection(since=t0, until=t0 + timedelta(seconds=1)).matches(letter)  # since inclusive
    assert not Selection(until=t0).matches(letter)  # until exclusive
    assert not Selection(since=t0 + timedelta(hours=1)).matches(letter)

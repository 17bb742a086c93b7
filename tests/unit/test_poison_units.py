"""The pure and in-process parts of 'nothing lost, nothing leaked' (issue 13); the end-to-end
cases are in tests/integration/test_poison.py."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import structlog

from newsstream.contract import wire
from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup.placement import CHANGELOGGED_TABLES, event_time
from newsstream.enrich.item import enrich
from newsstream.errors import DataError
from newsstream.platform.logs import configure_logging
from newsstream.platform.settings import Settings
from newsstream.sink.stores import rows_by_table
from newsstream.worker import delivery
from newsstream.worker.envelope import EnvelopeBuilder
from newsstream.worker.placement_stage import PlacementStage
from tests.unit.stages import NO_TAIL, RecordingOutput, Table, event

NOW = datetime.now(UTC).replace(microsecond=0)


def test_a_dead_letter_always_fits_and_says_what_it_cut() -> None:
    for payload in (b'"' * 450_000, "\x01" * 400_000, bytes(range(256)) * 4000):
        letter = wire.dead_letter(payload, stage="worker", reason="too_large", error="e" * 10_000, source_topic="t",
                                  source_partition=0, source_offset=1)
        assert len(wire.dumps(letter)) < 400_000
        assert letter.payload_truncated and letter.payload_bytes == len(payload if isinstance(payload, bytes) else payload.encode())
        assert len(letter.error) == 2000
    small = wire.dead_letter(b"{bad", stage="ingest", reason="invalid_json", error="x")
    assert (small.payload, small.payload_truncated, small.payload_bytes) == ("{bad", False, 4)


def test_a_record_the_producer_refuses_outright_stops_the_worker_before_any_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: MessageSizeTooLargeError escaped the agent, faust restarted it and committed past its batch."""
    exits: list[int] = []
    monkeypatch.setattr(delivery, "_hard_exit", exits.append)

    class Producer:
        async def send(self, *args: Any) -> Any:
            raise RuntimeError("MessageSizeTooLargeError: 1,800,000 bytes")

    output = delivery.Output(SimpleNamespace(producer=Producer()))
    with pytest.raises(RuntimeError):
        asyncio.run(output.send("news.dlq.v1", b"k", b"v"))
    assert exits == [delivery.DELIVERY_FAILURE_EXIT_CODE]


def test_invisible_only_text_is_an_empty_text_error_not_a_content_hash() -> None:
    raw = RawArticle(id="a_1", source="s", title="", body="\u200b\u200f\u2066x\u200d".replace("x", "\u200c"), fetched_at=NOW)
    with pytest.raises(DataError) as caught:
        enrich(raw, NOW)
    assert caught.value.reason == "empty_text"
    assert wire.dead_letter_for(b"{}", caught.value, stage="worker").reason == "empty_text"


def test_naive_and_overflowing_timestamps_are_refused_and_offsets_become_utc() -> None:
    from pydantic import ValidationError

    base = {"id": "a_1", "source": "s", "body": "نص", "fetched_at": NOW.isoformat()}
    stored = RawArticle.model_validate({**base, "published_at": "2024-05-01T09:30:00+03:00"})
    assert stored.published_at == datetime(2024, 5, 1, 6, 30, tzinfo=UTC) and stored.published_at.utcoffset() == timedelta(0)
    for bad in ("2024-05-01T09:30:00", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValidationError):
            RawArticle.model_validate({**base, "published_at": bad})


def test_a_key_with_nul_is_refused_by_the_store_never_rewritten(events) -> None:  # type: ignore[no-untyped-def]
    bad = events.article(1).model_copy(update={"id": "a\x000001"})
    with pytest.raises(DataError):
        rows_by_table([bad])
    text = events.article(2).model_copy(update={"enrichment": events.article(2).enrichment.model_copy(
        update={"normalized_text": "a\x00b"})})
    (row,) = rows_by_table([text])["articles"]
    assert row[0] == "a_0002" and "a\ufffdb" in row  # the key untouched, the text made storable alike in both stores


def _envelope(events: list[Any]) -> Any:
    builder = EnvelopeBuilder()
    for e in events:
        builder.add(0, f"{e.kind}:{e.enrichment.content_hash}", e.id, e.kind, wire.dumps(e))
    return [event("placement", 0, 0, env) for _, env in builder.drain()]


def test_one_far_future_record_does_not_wipe_stage_3_state() -> None:
    """Before: stream time jumped to 2099 and the next expiry dropped every thread and story."""
    output = RecordingOutput()
    stage = PlacementStage(Settings(), output, {n: Table(n) for n in CHANGELOGGED_TABLES}, NO_TAIL)
    lines = [RawTickerItem(id=f"t{n}", source="tv", time="10:00", published_at=NOW - timedelta(minutes=n),
                           text=f"الخارجية التركية تعلن نبأ رقم {n} عن الاتفاق", attribution="الخارجية التركية",
                           thread_id=f"th{n}", fetched_at=NOW) for n in range(4)]
    future = RawArticle(id="a_2099", source="rogue", title="t", body="خبر من عام ألفين وتسعة وتسعين",
                        published_at=datetime(2099, 1, 1, tzinfo=UTC), fetched_at=datetime(2099, 1, 1, tzinfo=UTC))
    asyncio.run(stage.handle(_envelope([enrich(raw, NOW) for raw in lines])))
    held = {name: len(t.data) for name, t in stage.tables.items()}
    asyncio.run(stage.handle(_envelope([enrich(future, NOW)])))
    assert stage.stream_time <= time.time() + 86_400  # held at the wall clock + 1 day, not 2099
    asyncio.run(stage.expire())
    assert len(stage.tables["threads"].data) >= held["threads"] > 0
    assert len(stage.tables["stories"].data) >= held["stories"] > 0
    assert output.dead_letters() == []
    # And a publication time a day past its own fetch counts from the fetch.
    odd = RawArticle(id="a_x", source="s", body="نص", published_at=NOW + timedelta(days=30), fetched_at=NOW)
    assert event_time(odd) == NOW.timestamp() + 86_400


def test_console_tracebacks_carry_no_local_variables_and_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("info", "console")

        def connect(dsn: str = "postgresql://u:S3cretPW-xyz@db/news") -> None:
            batch = [orjson.dumps({"n": n}) for n in range(50_000)]  # noqa: F841 - a big local, as in a stage's frame
            raise ConnectionError(f"cannot reach {dsn}")

        try:
            connect()
        except ConnectionError:
            logging.getLogger("test").exception("store down")
        err = capsys.readouterr().err
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
    assert "S3cretPW-xyz" not in err and "postgresql://u:***@db/news" in err
    assert len(err.splitlines()) < 15 and '{"n": 4999' not in err

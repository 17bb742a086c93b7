"""Stage 3 on the real broker: near-duplicates, ticker threads and stories.

One worker, two workers, and one worker killed (-9) and restarted must place
every item the same way: same ``duplicate_of``, same thread, same story id,
and a restart must not announce a story twice. The offline replay
(``newsstream eval stream``, :class:`~newsstream.evaluation.stream_replay.Pipeline`)
is the reference: it runs the same functions.

Items arrive in four waves, each stored before the next is sent. Within a
wave nothing depends on arrival order (items that depend on each other are in
different waves), so the expected placement is well defined: stage 3's
answer for two copies sent at the same instant depends on which reaches it
first, for one worker as for two (docs/design.md, stage 3 limits).
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsstream.contract import topics
from newsstream.evaluation.stream_replay import Pipeline
from newsstream.ingest.events import event_from_json_line
from newsstream.ingest.producer import RawEventProducer
from newsstream.platform.broker import EmbeddedBroker
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.dedup.texts import (
    LIGHT_EDIT_BODY,
    MATCH,
    MATCH_TITLE,
    QUAKE_A,
    QUAKE_A_TITLE,
    QUAKE_B,
    QUAKE_B_TITLE,
    QUAKE_TICKER_1,
    QUAKE_TICKER_2,
    TICKER_LINE,
    TICKER_OTHER,
    TICKER_REWORDED,
    WATER_BODY,
    WIRE_BODY,
)
from tests.integration import harness

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def _article(id_: str, source: str, minutes: int, title: str, body: str, start: datetime = T0) -> bytes:
    at = (start + timedelta(minutes=minutes)).isoformat()
    return orjson.dumps({"kind": "article", "id": id_, "source": source, "url": f"https://{source}.example/{id_}",
                         "title": title, "body": body, "published_at": at})


def _ticker(id_: str, source: str, minutes: int, attribution: str, text: str, continues: bool = False) -> bytes:
    at = T0 + timedelta(minutes=minutes)
    return orjson.dumps({"kind": "ticker", "id": id_, "source": source, "time": at.strftime("%H:%M"),
                         "published_at": at.isoformat(), "attribution": attribution, "text": text,
                         "continues_previous": continues, "thread_id": f"th_{id_}"})


WAVES: list[list[bytes]] = [
    # t1 and a1 tell the same story: whichever comes first founds it (and names
    # it), so they go in separate waves; in one wave two workers raced them.
    [_ticker("t1", "tv", 0, "آفاد", QUAKE_TICKER_1)],
    [
        _article("a1", "agency", 40, QUAKE_A_TITLE, QUAKE_A),
        _article("m1", "sport", 50, MATCH_TITLE, MATCH),
        _article("w1", "agency", 100, "مؤتمر الأمم المتحدة للمياه", WATER_BODY),
        _article("e1", "wire", 110, "الأردن يطلق مشروعاً لتخزين الكهرباء", WIRE_BODY),
        _ticker("r1", "tv", 130, "الرئاسة اللبنانية", TICKER_LINE),
    ],
    [
        _ticker("t2", "tv", 12, "آفاد", QUAKE_TICKER_2, continues=True),  # continues t1's thread
        _article("a2", "daily", 75, QUAKE_B_TITLE, QUAKE_B),  # the quake, another outlet
        _article("e2", "outlet-b", 120, "معان تستضيف محطة بطاريات", LIGHT_EDIT_BODY),  # near copy of e1
        _ticker("r2", "other-tv", 132, "الرئاسة اللبنانية", TICKER_REWORDED),  # near copy of r1
        _ticker("r3", "tv", 140, "الرئاسة اللبنانية", TICKER_OTHER),  # follow-up: r1's thread
    ],
    [
        _article("a3", "aggregator", 90, "", QUAKE_A),  # exact copy of a1
    ],
]
ALL_IDS = [orjson.loads(line)["id"] for wave in WAVES for line in wave]

Placement = dict[str, tuple[str | None, str | None, str | None, str]]  # id -> (duplicate_of, kind, thread, story)


def _expected(waves: list[list[bytes]] = WAVES) -> Placement:
    """What the offline replay (the worker's functions, in the same order) decides."""
    pipeline = Pipeline()
    out: Placement = {}
    now = datetime.now(UTC)
    for wave in waves:
        for line in sorted(wave, key=lambda l: orjson.loads(l)["published_at"]):
            e = pipeline.process(event_from_json_line(line, now)).enriched
            en = e.enrichment
            out[e.id] = (en.duplicate_of, en.duplicate_kind, en.thread_id, en.story_id)  # type: ignore[assignment]
    return out


async def _stored(url: str) -> Placement:
    async with open_store(url) as store:
        await store.migrate()
    rows = []
    for table, thread in (("articles", "NULL"), ("ticker_items", "stream_thread_id")):
        rows += await _query(url, f"SELECT id, duplicate_of, duplicate_kind, {thread} AS thread, story_id FROM {table}")
    return {r["id"]: (r["duplicate_of"], r["duplicate_kind"], r["thread"], r["story_id"]) for r in rows}


async def _query(url: str, sql: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


async def _send_wave(settings: Settings, wave: list[bytes], services: list, url: str, placed: bool = True) -> None:
    async with RawEventProducer(settings) as producer:
        await producer.ingest_json_lines((f"wave:{n}", line) for n, line in enumerate(wave))
    ids = {orjson.loads(line)["id"] for line in wave}

    async def arrived() -> bool:
        stored = await _stored(url)
        return ids <= stored.keys() and (not placed or all(stored[i][3] for i in ids))

    await harness.wait_for(arrived, 90, f"items {sorted(ids)} placed and stored", services)


async def _story_events(settings: Settings) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topics.STORIES, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        events: list[dict] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            events += [orjson.loads(r.value) for records in batch.values() for r in records]
            positions = [await consumer.position(tp) for tp in tps]
            if not batch and all(pos >= (consumer.highwater(tp) or 0) for pos, tp in zip(positions, tps)):
                break
        return events
    finally:
        await consumer.stop()


def _settings(bootstrap: str, tmp_path: Path, name: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap, partitions=4, session_timeout_s=6, rebalance_timeout_s=3,
        heartbeat_interval_s=1, metrics_host="127.0.0.1", metrics_port=0, sink_batch_wait_ms=100,
        store_url=f"sqlite:///{tmp_path / name}.sqlite",
    )


async def _run(settings: Settings, tmp_path: Path, workers: int, kill_after_wave: int | None = None,
               waves: list[list[bytes]] = WAVES) -> Placement:
    dirs = []
    for n in range(workers + 1):
        (tmp_path / f"w{n}").mkdir(parents=True, exist_ok=True)
        dirs.append(tmp_path / f"w{n}")
    running = [harness.start("worker", settings, dirs[n]) for n in range(workers)]
    sink = harness.start("sink", settings, tmp_path)
    try:
        await harness.wait_for(lambda: all(harness.ready(w.metrics_port) for w in running), 60, "workers ready",
                               [*running, sink])
        for n, wave in enumerate(waves):
            await _send_wave(settings, wave, [*running, sink], settings.store_url, settings.stories_enabled)
            if n == kill_after_wave:
                # The wave is placed and stored; kill only once the worker has committed it,
                # so the restart tests recovery from the changelogs, not a re-delivery.
                app_id = settings.worker_app_id
                await harness.wait_committed(settings, app_id, [*topics.RAW_TOPICS, f"{app_id}-by-content",
                                                                f"{app_id}-placement"], [*running, sink])
                os.kill(running[0].proc.pid, signal.SIGKILL)
                running[0].proc.wait()
                running[0] = harness.start("worker", settings, dirs[workers])
        if workers > 1:
            per_worker = [harness.metric_sum(w.metrics_port, "newsstream_items_in_total", service="worker") for w in running]
            assert all(n > 0 for n in per_worker), f"one worker did all of stage 1: {per_worker}"
        return await _stored(settings.store_url)
    finally:
        for svc in (*running, sink):
            svc.stop()


async def test_one_worker_places_items_as_the_offline_replay_does(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = _settings(broker.bootstrap, tmp_path, "one")
    placed = await _run(settings, tmp_path, workers=1)
    expected = _expected()
    assert placed == expected

    # What the expectation says, spelled out: the behaviour the issue asks for.
    assert placed["a3"][:2] == ("a1", "exact")
    assert placed["e2"][:2] == ("e1", "near") and placed["r2"][:2] == ("r1", "near")
    assert placed["t1"][2] == placed["t2"][2] and placed["r1"][2] == placed["r3"][2] != placed["t1"][2]
    quake = {placed[i][3] for i in ("t1", "t2", "a1", "a2", "a3")}
    assert len(quake) == 1
    assert len({placed[i][3] for i in ("m1", "w1", "e1")} | quake) == 4

    rows = await _query(settings.store_url, "SELECT * FROM stories")
    quake_row = next(r for r in rows if r["id"] in quake)
    assert quake_row["member_count"] == 5
    assert sorted(orjson.loads(quake_row["sources"])) == ["agency", "aggregator", "daily", "tv"]
    assert orjson.loads(quake_row["event"])["headline"] in (QUAKE_A_TITLE, QUAKE_B_TITLE)
    events = await _story_events(settings)
    created = [e["story_id"] for e in events if e["event"] == "created"]
    assert sorted(created) == sorted({p[3] for p in placed.values()}), "one 'created' event per story"


async def test_two_workers_and_a_killed_worker_place_items_as_one_worker_does(tmp_path: Path) -> None:
    expected = _expected()
    with EmbeddedBroker() as broker:
        placed = await _run(_settings(broker.bootstrap, tmp_path / "two", "two"), tmp_path / "two", workers=2)
    assert placed == expected

    with EmbeddedBroker() as broker:
        settings = _settings(broker.bootstrap, tmp_path / "killed", "killed")
        placed = await _run(settings, tmp_path / "killed", workers=1, kill_after_wave=1)
        assert placed == expected  # near copies, threads and stories found against recovered state
        events = await _story_events(settings)
    created = [e["story_id"] for e in events if e["event"] == "created"]
    assert sorted(created) == sorted({p[3] for p in placed.values()}), "a restart must not create a story again"


async def test_without_stage_3_items_carry_exact_duplicates_only(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = _settings(broker.bootstrap, tmp_path, "off").model_copy(update={"stories_enabled": False})
    placed = await _run(settings, tmp_path, workers=1)
    assert placed["a3"] == ("a1", "exact", None, None)
    assert all(p == (None, None, None, None) for i, p in placed.items() if i != "a3")  # no near copies, threads, stories
    assert await _story_events(settings) == []


# An archive of 2019 replayed today: a wire story, a copy an hour later, and copies two days
# later, when the 48-hour exact-dedup window has left the first one behind (in event time).
ARCHIVE_START = datetime(2019, 3, 1, 8, 0, tzinfo=UTC)
ARCHIVE_WAVES = [
    [_article(f"x{n}", f"outlet-{n}", minutes, f"عنوان {n}", WIRE_BODY, ARCHIVE_START)]
    for n, minutes in ((1, 0), (2, 60), (3, 50 * 60), (4, 51 * 60))
]


async def test_an_archive_replay_gets_the_verdicts_of_the_offline_replay(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Before: stage 2 judged exact copies on the wall clock, so x3 and x4 were copies of x1."""
    settings = _settings(broker.bootstrap, tmp_path, "archive")
    placed = await _run(settings, tmp_path, workers=1, waves=ARCHIVE_WAVES)
    expected = _expected(ARCHIVE_WAVES)
    assert placed == expected
    assert [placed[i][:2] for i in ("x1", "x2", "x3", "x4")] == [(None, None), ("x1", "exact"), (None, None),
                                                                  ("x3", "exact")]

"""The sink end to end on a real Tansu broker, into SQLite and PostgreSQL.

Waiting is by polling with a deadline (never fixed sleeps). "Everything was
consumed" is established from the group's committed offsets against the
offsets the test's own producer got back: Tansu reports a partition's end
offset as the start of its last batch, so end offsets would not do.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from newsstream.contract import topics
from newsstream.contract.models import StoryEvent, StoryMember
from newsstream.contract.wire import dumps
from newsstream.platform.broker import free_port
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.settings import Settings
from newsstream.sink import service
from newsstream.sink.service import run_sink
from newsstream.sink.stores import Store, StoreSummary, open_store

pytestmark = pytest.mark.integration

GARBAGE = b'{"kind": "article", "id": "half a mess'
DLQ_GARBAGE = b"\xff\xfe not even UTF-8"
DEADLINE_S = 60.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, *tasks: asyncio.Task[Any]) -> None:
    """Poll ``check`` until true; fail at the deadline, or at once if a sink task died."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        for task in tasks:
            if task.done():
                task.result()  # re-raises the sink's exception
                pytest.fail(f"sink stopped while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_S:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def produce(settings: Settings, messages: Iterable[tuple[str, bytes, bytes | None]]) -> dict[TopicPartition, int]:
    """Send (topic, key, value) messages (a value None is a tombstone); returns the offset after the last one per partition."""
    producer = await start_producer(settings)
    try:
        ends: dict[TopicPartition, int] = {}
        for topic, key, value in messages:
            md = await producer.send_and_wait(topic, value=value, key=key)
            tp = TopicPartition(md.topic, md.partition)
            ends[tp] = max(ends.get(tp, 0), md.offset + 1)
        return ends
    finally:
        await producer.stop()


def committed_at_least(settings: Settings, expected: dict[TopicPartition, int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            # Name the partitions: Tansu sends a response aiokafka cannot parse
            # when asked for "all partitions of the group" (partitions=None).
            committed = await admin.list_consumer_group_offsets(settings.sink_group_id, partitions=list(expected))
        finally:
            await admin.close()
        return all(tp in committed and committed[tp].offset >= end for tp, end in expected.items())

    return check


def summary_is(store: Store, expected: StoreSummary) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await store.summary() == expected

    return check


def items_in(topic: str) -> float:
    return REGISTRY.get_sample_value("newsstream_items_in_total", {"service": "sink", "topic": topic}) or 0.0


async def stop_sink(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_sink_stores_everything_once_and_resumes_from_committed_offsets(
    fast_settings: Settings, store_url: str, events, query_store
) -> None:
    settings = fast_settings.model_copy(
        update={
            "store_url": store_url,
            "sink_group_id": f"sink-{uuid.uuid4().hex[:8]}",
            "sink_batch_size": 7,  # several batches
            "metrics_port": free_port(),  # a known port, to probe /readyz
        }
    )
    # 12 articles (two duplicates) and 8 ticker lines in 3 threads (one duplicate).
    enriched = [events.article(n) for n in range(1, 11)]
    enriched += [events.article(11, duplicate_of="a_0001"), events.article(12, duplicate_of="a_0002")]
    enriched += [events.ticker(n, thread_id=f"th_{n % 3}") for n in range(1, 8)]
    enriched += [events.ticker(8, thread_id="th_0", duplicate_of="t_0001")]
    n = len(enriched)
    messages = [(topics.ENRICHED_TOPIC_BY_KIND[e.kind], e.id.encode(), dumps(e)) for e in enriched]
    expected = StoreSummary(
        articles=12,
        ticker_items=8,
        threads=3,
        duplicates=3,
        dead_letters=2,
        dead_letters_by_reason={"invalid_json": 2},
    )

    await ensure_topics(settings)
    garbage = [(topics.ENRICHED_ARTICLES, b"garbage", GARBAGE), (topics.DEAD_LETTERS, b"garbage", DLQ_GARBAGE)]
    ends = await produce(settings, [*messages, *garbage])

    async with open_store(store_url) as store:
        await store.migrate()  # the test reads before the sink may have created the tables
        # --- first run: every event stored, each garbage message becomes a dead-letter row.
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))
        await wait_until(summary_is(store, expected), "all rows and two dead letters", task)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{settings.metrics_port}"
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(f"{base}/metrics") as resp:
                assert "newsstream_sink_rows_written_total" in await resp.text()
        # The sink produced a dead letter to the DLQ (1 partition) after the DLQ
        # garbage, then consumed and stored it itself; wait until that is committed.
        dlq_end = {TopicPartition(topics.DEAD_LETTERS, 0): 2}
        await wait_until(committed_at_least(settings, {**ends, **dlq_end}), "committed offsets", task)
        await stop_sink(stop, task)

        rows = await query_store(
            store_url,
            "SELECT stage, reason, source_topic, source_partition, source_offset, payload, payload_encoding"
            " FROM dead_letters",
        )
        by_topic = {r["source_topic"]: r for r in rows}
        row, dlq_row = by_topic[topics.ENRICHED_ARTICLES], by_topic[topics.DEAD_LETTERS]
        # The garbage was the last message produced to its partition.
        assert row["source_offset"] == ends[TopicPartition(topics.ENRICHED_ARTICLES, row["source_partition"])] - 1
        assert row["stage"] == "sink" and row["reason"] == "invalid_json"
        assert row["source_topic"] == topics.ENRICHED_ARTICLES
        assert (row["payload"], row["payload_encoding"]) == (GARBAGE.decode(), "utf-8")
        # Garbage on the DLQ itself is stored directly, not sent round again.
        assert dlq_row["stage"] == "sink" and dlq_row["source_topic"] == topics.DEAD_LETTERS
        assert (dlq_row["source_partition"], dlq_row["source_offset"]) == (0, 0)
        assert (base64.b64decode(dlq_row["payload"]), dlq_row["payload_encoding"]) == (DLQ_GARBAGE, "base64")

        # --- restart with the same group: resumes after the committed offsets.
        before = {t: items_in(t) for t in service.SOURCE_TOPICS}
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))
        again = await produce(settings, messages)  # the same events once more
        await wait_until(committed_at_least(settings, again), "re-sent events committed", task)
        assert await store.summary() == expected  # upserts: nothing new
        consumed = {t: items_in(t) - before[t] for t in service.SOURCE_TOPICS}
        # Exactly the re-sent events were read: nothing from the first run again.
        assert consumed[topics.ENRICHED_ARTICLES] + consumed[topics.ENRICHED_TICKER] == n
        assert consumed[topics.DEAD_LETTERS] == 0

        # Cancellation is a graceful stop too: the task ends with CancelledError.
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)


async def test_sink_retries_a_failing_store_without_committing(
    fast_settings: Settings, pg_url: str, events, query_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refusing writes stalls the sink (retry, no commit), never skips."""
    monkeypatch.setattr(service, "RETRY_INITIAL_S", 0.05)
    monkeypatch.setattr(service, "RETRY_MAX_S", 0.2)
    settings = fast_settings.model_copy(update={"store_url": pg_url, "sink_group_id": f"sink-{uuid.uuid4().hex[:8]}"})
    def write_errors() -> float:
        labels = {"store": "postgresql", "target": "store"}
        return REGISTRY.get_sample_value("newsstream_sink_write_errors_total", labels) or 0.0

    errors_before = write_errors()

    await ensure_topics(settings)
    async with open_store(pg_url) as store:
        await store.migrate()
        # A real server-side failure on every insert into articles, until dropped.
        await query_store(
            pg_url,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refusing writes (test)'; END $$",
        )
        await query_store(pg_url, "CREATE TRIGGER refuse BEFORE INSERT ON articles FOR EACH ROW EXECUTE FUNCTION refuse()")
        ends = await produce(
            settings,
            [(topics.ENRICHED_ARTICLES, b"a", dumps(events.article(1))), (topics.ENRICHED_TICKER, b"t", dumps(events.ticker(1)))],
        )

        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))

        async def failing() -> bool:
            return write_errors() >= errors_before + 3

        await wait_until(failing, "failed write attempts", task)
        # Nothing committed and nothing half-written: the ticker line shares the batch's transaction.
        assert not await committed_at_least(settings, ends)()
        assert await store.summary() == StoreSummary()

        await query_store(pg_url, "DROP TRIGGER refuse ON articles")
        await wait_until(committed_at_least(settings, ends), "the batch written and committed", task)
        summary = await store.summary()
        assert (summary.articles, summary.ticker_items) == (1, 1)
        await stop_sink(stop, task)


async def test_a_row_the_store_rejects_becomes_a_dead_letter_and_the_rest_is_stored(
    fast_settings: Settings, store_url: str, events, query_store
) -> None:
    """A poison row (here: a CHECK constraint the database enforces) must not stop the sink forever."""
    settings = fast_settings.model_copy(
        update={"store_url": store_url, "sink_group_id": f"sink-{uuid.uuid4().hex[:8]}", "sink_batch_size": 50}
    )
    enriched = [events.article(n) for n in range(1, 8)]
    poison = events.article(8, title="POISON")
    messages = [(topics.ENRICHED_ARTICLES, e.id.encode(), dumps(e)) for e in [*enriched[:4], poison, *enriched[4:]]]
    async with open_store(store_url) as store:
        await store.migrate()
        # SQLite cannot add a CHECK to an existing table: a trigger rejects the row the same way.
        if store_url.startswith("sqlite:"):
            await query_store(store_url, "CREATE TRIGGER no_poison BEFORE INSERT ON articles WHEN NEW.title = 'POISON'"
                                         " BEGIN SELECT RAISE(ABORT, 'constraint failed: poison'); END")
        else:
            await query_store(store_url, "ALTER TABLE articles ADD CONSTRAINT no_poison CHECK (title <> 'POISON')")
        await ensure_topics(settings)
        await produce(settings, messages)
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))

        async def settled() -> bool:
            s = await store.summary()
            return s.articles == 7 and s.dead_letters == 1

        await wait_until(settled, "7 articles stored and the poison row dead-lettered", task)
        await stop_sink(stop, task)
    letter = (await query_store(store_url, "SELECT stage, reason, error, source_topic, payload FROM dead_letters"))[0]
    assert letter["stage"] == "sink" and letter["reason"] == "store_rejected"
    assert letter["source_topic"] == topics.ENRICHED_ARTICLES and "poison" in letter["error"].lower()
    assert '"POISON"' in letter["payload"]  # the whole event, to replay once the cause is fixed
    stored = {r["id"] for r in await query_store(store_url, "SELECT id FROM articles")}
    assert stored == {e.id for e in enriched}


async def test_the_newest_version_of_an_item_is_kept_whatever_order_its_versions_arrive_in(
    fast_settings: Settings, store_url: str, events, query_store
) -> None:
    """An edited article keeps its id but not its content hash: its versions reach the enriched
    topic through different by-content partitions, in any order. Before: the last one written won."""
    settings = fast_settings.model_copy(update={"store_url": store_url, "sink_group_id": f"sink-{uuid.uuid4().hex[:8]}"})
    edited_at = events.T0 + timedelta(hours=2)
    newer = [events.article(1, body="النص بعد التعديل", content_hash="h_edit", fetched_at=edited_at),
             events.ticker(1, text="النص بعد التعديل", content_hash="h_edit", fetched_at=edited_at)]
    older = [events.article(1), events.ticker(1)]

    def messages(batch: list[Any]) -> list[tuple[str, bytes, bytes]]:
        return [(topics.ENRICHED_TOPIC_BY_KIND[e.kind], e.id.encode(), dumps(e)) for e in batch]

    async def stored_hashes() -> dict[str, str]:
        rows = [*await query_store(store_url, "SELECT id, content_hash FROM articles"),
                *await query_store(store_url, "SELECT id, content_hash FROM ticker_items")]
        return {r["id"]: r["content_hash"] for r in rows}

    await ensure_topics(settings)
    async with open_store(store_url) as store:
        await store.migrate()
        # The article's versions newest first, both there before the sink starts (one batch, as a rule);
        # the ticker line's newest version alone first.
        ends = await produce(settings, messages([newer[0], older[0], newer[1]]))
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))
        await wait_until(committed_at_least(settings, ends), "both versions and the newer ticker line", task)
        stored_at = await query_store(store_url, "SELECT stored_at FROM ticker_items")
        # The ticker line's older version arrives in a batch of its own, then the newer one again.
        ends = await produce(settings, messages([older[1], newer[1]]))
        await wait_until(committed_at_least(settings, ends), "the late older version", task)
        await stop_sink(stop, task)
    assert await stored_hashes() == {"a_0001": "h_edit", "t_0001": "h_edit"}
    # Re-delivery of the stored version stays a no-op: the row is not rewritten.
    assert await query_store(store_url, "SELECT stored_at FROM ticker_items") == stored_at


async def test_a_story_tombstone_marks_the_story_expired_and_is_no_dead_letter(
    fast_settings: Settings, store_url: str, query_store
) -> None:
    """Stage 3 tombstones a story it forgets. Before: the sink decoded the empty value and dead-lettered it."""
    settings = fast_settings.model_copy(update={"store_url": store_url, "sink_group_id": f"sink-{uuid.uuid4().hex[:8]}"})
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    member = StoryMember(id="a_1", kind="article", source="s", at=at, similarity=1.0, joined_by="founder")

    def story(story_id: str) -> StoryEvent:
        return StoryEvent(story_id=story_id, event="created", revision=1, headline=story_id, first_seen=at,
                          last_seen=at, member_count=1, members=[member], sources=["s"], trigger_id="a_1")

    await ensure_topics(settings)
    async with open_store(store_url) as store:
        await store.migrate()
        ends = await produce(settings, [(topics.STORIES, b"st_gone", dumps(story("st_gone"))),
                                        (topics.STORIES, b"st_live", dumps(story("st_live"))),
                                        (topics.STORIES, b"st_gone", None)])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(settings, stop=stop))
        await wait_until(committed_at_least(settings, ends), "the story events and the tombstone", task)
        await stop_sink(stop, task)
        assert (await store.summary()).dead_letters == 0
    rows = await query_store(store_url, "SELECT id, expired_at FROM stories ORDER BY id")
    assert [(r["id"], r["expired_at"] is not None) for r in rows] == [("st_gone", True), ("st_live", False)]

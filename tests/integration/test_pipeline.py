"""End to end on the real Tansu broker and real stores: ingest -> worker -> sink.

The worker and sink run as separate processes (see harness.py); nothing is mocked.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.platform.kafka import start_producer
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.integration import harness

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_d53218aacc3a3954.txt"
# The seed's ticker runs from 21:17 to 22:35; fetched just after, every clock time
# is of the same day. With the wall clock as fetch time the order of its lines
# depended on the hour the test ran (between 21:17 and 22:35 UTC some were "yesterday").
SEED_FETCHED_AT = datetime(2026, 11, 25, 22, 40, tzinfo=UTC)
ENRICHED_IN = "newsstream_items_in_total"


async def _migrated(url: str) -> str:
    """Create the tables up front so that polling queries never race the sink's start-up."""
    async with open_store(url) as store:
        await store.migrate()
    return url


async def _ingest_pages(settings: Settings, *pages: Path, source: str = "seed-outlet") -> None:
    async with RawEventProducer(settings) as producer:
        for page in pages:
            await producer.ingest_page(page, source=source, fetched_at=SEED_FETCHED_AT)
    assert producer.report.total_dead_letters == 0


async def _ingest_lines(settings: Settings, lines: list[bytes]) -> RawEventProducer:
    async with RawEventProducer(settings) as producer:
        await producer.ingest_json_lines((f"test:{n}", line) for n, line in enumerate(lines, start=1))
    return producer


async def test_seed_page_lands_in_postgres_once_even_when_ingested_twice(
    fast_settings: Settings, pg_url: str, tmp_path: Path, query_store
) -> None:
    settings = fast_settings.model_copy(update={"store_url": await _migrated(pg_url)})
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    sink = services[1]
    try:
        await _ingest_pages(settings, SEED)

        async def stored() -> bool:
            rows = await query_store(pg_url, "SELECT (SELECT count(*) FROM articles) a, (SELECT count(*) FROM ticker_items) t")
            return rows[0]["a"] == 1 and rows[0]["t"] == 6

        await harness.wait_for(stored, 60, "1 article and 6 ticker rows", services)

        articles = await query_store(pg_url, "SELECT * FROM articles")
        assert len(articles) == 1
        article = articles[0]
        assert article["body"].count("\n\n") == 5  # six paragraphs
        assert "يتم قراءة الآن" not in article["body"] and "الأكثر قراءة" not in article["body"]
        assert article["language"] == "ar"
        assert article["duplicate_of"] is None and len(article["content_hash"]) == 40

        ticker = await query_store(pg_url, "SELECT * FROM ticker_items ORDER BY published_at DESC")
        assert [t["time"] for t in ticker] == ["22:35", "22:34", "22:04", "22:03", "21:52", "21:17"]
        assert [t["attribution"] for t in ticker] == [
            "الخارجية التركية", "الخارجية التركية", "تلغراف عن مسؤول إيراني رفيع",
            "تلغراف عن مسؤول إيراني رفيع", "الرئيس الإيراني", "حماس",
        ]
        threads = [t["thread_id"] for t in ticker]
        assert threads[0] == threads[1] and threads[2] == threads[3]
        assert len(set(threads)) == 4
        assert [t["continues_previous"] for t in ticker] == [False, True, False, True, False, False]

        # The same page again: every item is re-delivered to the sink, no row is added.
        await _ingest_pages(settings, SEED)
        await harness.wait_for(
            lambda: harness.metric_sum(sink.metrics_port, ENRICHED_IN, service="sink", topic=topics.ENRICHED_TICKER) >= 12
            and harness.metric_sum(sink.metrics_port, ENRICHED_IN, service="sink", topic=topics.ENRICHED_ARTICLES) >= 2,
            60, "the sink to read the second copy", services,
        )
        counts = await query_store(pg_url, "SELECT (SELECT count(*) FROM articles) a, (SELECT count(*) FROM ticker_items) t")
        assert counts == [{"a": 1, "t": 6}]
        # Re-ingesting is not duplication: same ids, so no row says duplicate_of.
        dups = await query_store(pg_url, "SELECT count(*) n FROM ticker_items WHERE duplicate_of IS NOT NULL")
        assert dups[0]["n"] == 0
    finally:
        for svc in services:
            svc.stop()


_LOAD_T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def _ticker_line(n: int, text: str) -> bytes:
    """Line n of a load: one a second, no attribution (each line its own thread)."""
    at = _LOAD_T0 + timedelta(seconds=n)
    return orjson.dumps({
        "kind": "ticker", "source": "load-test", "time": at.strftime("%H:%M"), "published_at": at.isoformat(),
        "text": text, "attribution": None, "thread_id": f"th_{n}",
    })


_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"


def _distinct_text(template: str, n: int) -> str:
    """A line that shares no content word with any other n: neither an exact nor a near
    duplicate, and a story of its own (a load of look-alike lines would build a few giant
    stories, whose 100-member events would make the test about the sink's JSON speed)."""
    import random

    rng = random.Random(n)
    return template.format(n) + " " + " ".join("".join(rng.choices(_LETTERS, k=6)) for _ in range(8))


def _texts_with_repeats(template: str, total: int, every: int, back: int) -> list[str]:
    """Unique texts, except that every ``every``-th repeats the one ``back`` before it: true exact duplicates."""
    texts = [_distinct_text(template, n) for n in range(total)]
    for n in range(every, total, every):
        texts[n] = texts[n - back]
    return texts


def _assert_exactly_the_repeats_are_duplicates(rows: list[dict], expected: int) -> None:
    """Exactly ``expected`` rows are duplicates, each an exact copy of a first occurrence with the same text."""
    by_id = {r["id"]: r for r in rows}
    dups = [r for r in rows if r["duplicate_of"] is not None]
    assert len(dups) == expected
    for row in dups:
        first = by_id[row["duplicate_of"]]
        assert first["text"] == row["text"] and first["duplicate_of"] is None
        assert row["duplicate_kind"] == "exact" and row["duplicate_similarity"] == 1.0


async def test_killing_the_worker_mid_stream_loses_nothing_and_stores_nothing_twice(
    fast_settings: Settings, pg_url: str, tmp_path: Path, query_store
) -> None:
    total, every = 3000, 10
    texts = _texts_with_repeats("خبر عاجل رقم {} عن تطورات الوضع", total, every, back=5)
    lines = [_ticker_line(n, texts[n]) for n in range(total)]
    # A load test of delivery, not of meaning: the encoder's CPU would only stretch it on 2 cores.
    settings = fast_settings.model_copy(update={"store_url": await _migrated(pg_url), "partitions": 4, "embeddings": False})
    worker = harness.start("worker", settings, tmp_path)
    sink = harness.start("sink", settings, tmp_path)
    try:
        producer = await _ingest_lines(settings, lines)
        assert producer.report.total_emitted == total

        async def count() -> int:
            return (await query_store(pg_url, "SELECT count(*) n FROM ticker_items"))[0]["n"]

        await harness.wait_for(lambda: _at_least(count, total // 5), 60, "a fifth of the items", [worker, sink])
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        assert await count() < total, "the worker finished before it was killed: the test proves nothing"

        (tmp_path / "restart").mkdir()
        worker = harness.start("worker", settings, tmp_path / "restart")
        await harness.wait_for(lambda: _at_least(count, total), 90, f"all {total} items", [worker, sink])

        rows = await query_store(pg_url, "SELECT id, text, duplicate_of, duplicate_kind, duplicate_similarity FROM ticker_items")
        assert len(rows) == total and len({r["id"] for r in rows}) == total
        _assert_exactly_the_repeats_are_duplicates(rows, total // every - 1)
    finally:
        for svc in (worker, sink):
            svc.stop()


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def test_bad_input_at_ingest_and_on_the_raw_topic_becomes_dead_letters_and_the_rest_is_stored(
    fast_settings: Settings, sqlite_url: str, tmp_path: Path, query_store
) -> None:
    settings = fast_settings.model_copy(update={"store_url": await _migrated(sqlite_url)})
    good = [
        orjson.dumps({"kind": "article", "source": "wire", "url": f"https://example.org/{n}", "title": f"عنوان {n}",
                      "body": f"نص مختلف للخبر رقم {n}"})
        for n in range(4)
    ]
    lines = good[:2] + [b'{"kind": "article", "source": "wire", "title": "broken'] + good[2:]
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    try:
        producer = await _ingest_lines(settings, lines)
        assert producer.report.total_emitted == 4
        assert dict(producer.report.dead_letters) == {"invalid_json": 1}
        # A producer that skips validation: the worker must dead-letter it, not crash.
        rogue = await start_producer(settings)
        await rogue.send_and_wait(topics.RAW_TICKER, b'{"kind": "ticker", "text": "no id"}', key=b"rogue")
        await rogue.stop()

        async def done() -> bool:
            rows = await query_store(sqlite_url, "SELECT (SELECT count(*) FROM articles) a, (SELECT count(*) FROM dead_letters) d")
            return rows == [{"a": 4, "d": 2}]

        await harness.wait_for(done, 60, "4 articles and 2 dead letters", services)
        letters = {r["stage"]: r for r in await query_store(sqlite_url, "SELECT * FROM dead_letters")}
        assert letters["ingest"]["reason"] == "invalid_json"
        assert letters["ingest"]["input_ref"] == "test:3"
        assert letters["ingest"]["payload"] == lines[2].decode()
        assert letters["worker"]["reason"] == "validation_error"
        assert letters["worker"]["source_topic"] == topics.RAW_TICKER and letters["worker"]["source_offset"] == 0
        assert letters["worker"]["payload"] == '{"kind": "ticker", "text": "no id"}'
        worker_port = services[0].metrics_port
        assert harness.metric_sum(worker_port, "newsstream_dead_letters_total", service="worker", reason="validation_error") == 1
        assert harness.metric_sum(worker_port, "newsstream_items_out_total", service="worker", topic=topics.ENRICHED_ARTICLES) == 4
    finally:
        for svc in services:
            svc.stop()


async def test_two_workers_find_the_same_duplicates_as_one(
    fast_settings: Settings, sqlite_url: str, tmp_path: Path, query_store
) -> None:
    total, every = 2000, 10
    texts = _texts_with_repeats("خبر رقم {} عن حركة الملاحة في الميناء", total, every, back=3)
    settings = fast_settings.model_copy(update={"store_url": await _migrated(sqlite_url), "partitions": 4,
                                                "embeddings": False})  # a load test of exact dedup
    (tmp_path / "w2").mkdir()
    workers = [harness.start("worker", settings, tmp_path), harness.start("worker", settings, tmp_path / "w2")]
    sink = harness.start("sink", settings, tmp_path)
    services = [*workers, sink]
    try:
        # Both members must hold their partitions before the flow starts, so that
        # the work really is split between them.
        await harness.wait_for(lambda: all(harness.ready(w.metrics_port) for w in workers), 60, "both workers ready", services)
        await _ingest_lines(settings, [_ticker_line(n, texts[n]) for n in range(total)])

        async def count() -> int:
            return (await query_store(sqlite_url, "SELECT count(*) n FROM ticker_items"))[0]["n"]

        await harness.wait_for(lambda: _at_least(count, total), 90, f"all {total} items", services)
        per_worker = [harness.metric_sum(w.metrics_port, "newsstream_items_in_total", service="worker") for w in workers]
        assert all(n > 0 for n in per_worker), f"one worker did all the work: {per_worker}"

        rows = await query_store(sqlite_url, "SELECT id, text, duplicate_of, duplicate_kind, duplicate_similarity FROM ticker_items")
        _assert_exactly_the_repeats_are_duplicates(rows, total // every - 1)
    finally:
        for svc in services:
            svc.stop()


async def test_an_item_too_big_once_enriched_becomes_a_dead_letter_and_the_flow_goes_on(
    fast_settings: Settings, sqlite_url: str, tmp_path: Path, query_store
) -> None:
    settings = fast_settings.model_copy(update={"store_url": await _migrated(sqlite_url)})
    huge_body = " ".join(f"كلمة{n}" for n in range(60_000))  # ~600 KB raw; enriched it exceeds an envelope
    lines = [
        orjson.dumps({"kind": "article", "source": "wire", "url": "https://example.org/huge", "title": "ضخم",
                      "body": huge_body}),
        orjson.dumps({"kind": "article", "source": "wire", "url": "https://example.org/small", "title": "صغير",
                      "body": "نص قصير عن الطقس"}),
    ]
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    try:
        producer = await _ingest_lines(settings, lines)
        assert producer.report.total_emitted == 2

        async def done() -> bool:
            rows = await query_store(sqlite_url, "SELECT (SELECT count(*) FROM articles) a, (SELECT count(*) FROM dead_letters) d")
            return rows == [{"a": 1, "d": 1}]

        await harness.wait_for(done, 90, "1 article and 1 dead letter", services)
        letter = (await query_store(sqlite_url, "SELECT stage, error, source_topic FROM dead_letters"))[0]
        assert letter["stage"] == "worker" and "more than an envelope may hold" in letter["error"]
        assert all(svc.proc.poll() is None for svc in services), "a too-big item must not stop a service"
    finally:
        for svc in services:
            svc.stop()

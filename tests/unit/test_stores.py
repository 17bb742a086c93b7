"""Stores against real SQLite files and a real PostgreSQL (a private schema per test)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsstream.contract.models import StoryEvent, StoryMember
from newsstream.contract.wire import loads_dead_letter, loads_enriched
from newsstream.sink.stores import (
    PostgresStore,
    SQLiteStore,
    Store,
    StoreSummary,
    StoreUrlError,
    StoryTombstone,
    open_store,
    parse_postgres_url,
    redact_url,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(store_url)
    await s.connect()
    await s.migrate()
    yield s
    await s.close()


def _event_json(value: object) -> bytes:
    # asyncpg returns JSONB as text, sqlite3 returns TEXT: both are JSON strings.
    assert isinstance(value, str)
    return value.encode("utf-8")


async def test_migrate_twice_and_empty_summary(store: Store) -> None:
    await store.migrate()
    await store.migrate()
    assert await store.summary() == StoreSummary()
    assert await store.ping()


async def test_upsert_all_kinds_and_summary(store: Store, events) -> None:
    batch = [
        events.article(1),
        events.article(2),
        events.article(3, content_hash="h_0001", duplicate_of="a_0001"),
        events.ticker(1, thread_id="th_a"),
        events.ticker(2, thread_id="th_a"),
        events.ticker(3, thread_id="th_b"),
        events.ticker(4, thread_id="th_b", duplicate_of="t_0003"),
        events.dead_letter(1, reason="invalid_json"),
        events.dead_letter(2, reason="invalid_json"),
        events.dead_letter(3, reason="validation_error"),
    ]
    await store.upsert(batch)
    assert await store.summary() == StoreSummary(
        articles=3,
        ticker_items=4,
        threads=2,
        duplicates=2,
        dead_letters=3,
        dead_letters_by_reason={"invalid_json": 2, "validation_error": 1},
    )


async def test_same_batch_twice_is_a_no_op(store: Store, store_url: str, events, query_store) -> None:
    batch = [events.article(1), events.ticker(1), events.dead_letter(1)]
    await store.upsert(batch)
    first = await store.summary()
    before = await query_store(store_url, "SELECT id, stored_at FROM articles")
    await store.upsert(batch)
    assert await store.summary() == first == StoreSummary(
        articles=1, ticker_items=1, threads=1, dead_letters=1, dead_letters_by_reason={"invalid_json": 1}
    )
    # An unchanged event does not even rewrite its row.
    assert await query_store(store_url, "SELECT id, stored_at FROM articles") == before


async def test_last_occurrence_wins_within_a_batch_and_across_batches(store: Store, store_url: str, events, query_store) -> None:
    await store.upsert([events.article(1, title="old"), events.ticker(1), events.article(1, title="new")])
    rows = await query_store(store_url, "SELECT id, title FROM articles")
    assert rows == [{"id": "a_0001", "title": "new"}]

    # A later batch with a changed event (same id) updates the row in place.
    await store.upsert([events.article(1, title="edited", duplicate_of="a_0000")])
    rows = await query_store(store_url, "SELECT id, title, duplicate_of FROM articles")
    assert rows == [{"id": "a_0001", "title": "edited", "duplicate_of": "a_0000"}]
    assert (await store.summary()).duplicates == 1


async def test_an_older_version_never_replaces_a_newer_one(store: Store, store_url: str, events, query_store) -> None:
    """Versions of one id (an edited article: same id, new content hash) may arrive in any order."""
    later = events.T0 + timedelta(minutes=30)  # the factory's events are fetched at T0 + 1 min
    new_article = events.article(1, body="النص بعد التعديل", content_hash="h_edit", fetched_at=later)
    new_ticker = events.ticker(1, text="النص بعد التعديل", content_hash="h_edit", fetched_at=later)
    # Newest first, in one batch and across batches.
    await store.upsert([new_article, events.article(1)])
    await store.upsert([new_ticker])
    await store.upsert([events.ticker(1)])
    assert await query_store(store_url, "SELECT id, content_hash FROM articles") == [{"id": "a_0001", "content_hash": "h_edit"}]
    assert await query_store(store_url, "SELECT id, content_hash FROM ticker_items") == [{"id": "t_0001", "content_hash": "h_edit"}]
    # Fetched at the same instant: the greater content hash wins, whatever the order.
    twin = events.article(1, body="نص آخر", content_hash="h_zzz", fetched_at=later)
    await store.upsert([twin, new_article])
    assert (await query_store(store_url, "SELECT content_hash FROM articles"))[0]["content_hash"] == "h_zzz"


async def test_event_column_keeps_the_whole_event(store: Store, store_url: str, events, query_store) -> None:
    article, ticker, letter = events.article(7), events.ticker(7, thread_id="th_x"), events.dead_letter(7)
    await store.upsert([article, ticker, letter])
    (a,) = await query_store(store_url, "SELECT event, word_count, language_confidence, published_at FROM articles")
    (t,) = await query_store(store_url, "SELECT event, thread_id, continues_previous, time FROM ticker_items")
    (d,) = await query_store(store_url, "SELECT event, source_offset, payload FROM dead_letters")
    assert loads_enriched(_event_json(a["event"])) == article
    assert loads_enriched(_event_json(t["event"])) == ticker
    assert loads_dead_letter(_event_json(d["event"])) == letter
    assert a["word_count"] == article.enrichment.word_count
    assert a["language_confidence"] == pytest.approx(0.98)
    assert t["thread_id"] == "th_x" and bool(t["continues_previous"]) and t["time"] == "09:30"
    assert d["source_offset"] == 7 and d["payload"] == "{not json"
    if isinstance(store, PostgresStore):
        assert a["published_at"] == article.raw.published_at  # timestamptz, timezone-aware
    else:
        assert a["published_at"] == "2024-05-01T09:30:00+00:00"


async def test_nul_characters_do_not_poison_the_store(store: Store, store_url: str, events, query_store) -> None:
    # PostgreSQL rejects U+0000 in text and JSONB; a row that can never be
    # written would block the sink forever, so the store must cope.
    payload = "bad\x00line".encode("utf-8")
    await store.upsert([events.dead_letter(1, payload=payload), events.article(1, body="نص\x00مع صفر")])
    summary = await store.summary()
    assert (summary.articles, summary.dead_letters) == (1, 1)
    (d,) = await query_store(store_url, "SELECT payload, payload_encoding FROM dead_letters")
    stored = base64.b64decode(d["payload"]) if d["payload_encoding"] == "base64" else d["payload"].encode("utf-8")
    assert stored == payload  # byte-exact either way


async def test_ping_is_false_when_closed(store_url: str) -> None:
    s = open_store(store_url)
    assert not await s.ping()
    await s.connect()
    assert await s.ping()
    await s.close()
    assert not await s.ping()


async def test_empty_batch_is_a_no_op(store: Store) -> None:
    await store.upsert([])
    assert await store.summary() == StoreSummary()


def test_open_store_chooses_by_scheme(tmp_path: Path) -> None:
    rel = open_store("sqlite:///.newsstream/x.sqlite")
    assert isinstance(rel, SQLiteStore) and rel.path == ".newsstream/x.sqlite"
    absolute = open_store(f"sqlite:///{tmp_path}/x.sqlite")
    assert isinstance(absolute, SQLiteStore) and absolute.path == f"{tmp_path}/x.sqlite"
    pg = open_store("postgres://u:secret@db:5432/news?schema=news_v1&sslmode=disable")
    assert isinstance(pg, PostgresStore)
    assert (pg.dsn, pg.schema) == ("postgres://u:secret@db:5432/news?sslmode=disable", "news_v1")
    assert parse_postgres_url("postgresql://db/news") == ("postgresql://db/news", None)
    for bad in ("mysql://db/x", "news.sqlite", "sqlite://", "postgresql://db/x?schema=a;drop"):
        with pytest.raises(StoreUrlError, match="--store or NEWSSTREAM_STORE_URL"):
            open_store(bad)
    assert redact_url("postgresql://u:secret@db/news") == "postgresql://u:***@db/news"


async def test_sqlite_creates_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/er/store.sqlite"
    async with open_store(url) as s:
        await s.migrate()
    import sqlite3

    conn = sqlite3.connect(tmp_path / "deep/er/store.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def _story(story_id: str, revision: int, headline: str) -> StoryEvent:
    from datetime import UTC, datetime

    from newsstream.contract.models import StoryEvent

    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    members = [StoryMember(id=f"i{n}", kind="article", source=f"s{n % 2}", at=at, similarity=1.0,
                           joined_by="founder" if n == 0 else "similarity") for n in range(revision)]
    return StoryEvent(story_id=story_id, event="created" if revision == 1 else "updated", revision=revision,
                      headline=headline, first_seen=at, last_seen=at, member_count=revision, members=members,
                      sources=sorted({m.source for m in members}), trigger_id=members[-1].id)


async def test_a_story_row_only_moves_forward(store: Store, store_url: str, query_store) -> None:
    await store.upsert([_story("st_1", 1, "first"), _story("st_2", 1, "other")])
    await store.upsert([_story("st_1", 3, "third")])
    await store.upsert([_story("st_1", 2, "late second")])  # delivered late: must not win
    rows = {r["id"]: r for r in await query_store(store_url, "SELECT id, revision, headline, member_count FROM stories")}
    assert rows["st_1"]["revision"] == 3 and rows["st_1"]["headline"] == "third"
    assert rows["st_1"]["member_count"] == 3 and rows["st_2"]["revision"] == 1
    summary = await store.summary()
    assert summary.stories == 2 and summary.multi_member_stories == 1
    assert [(s.story_id, s.member_count, s.sources) for s in await store.stories()] == [("st_1", 3, ["s0", "s1"])]


async def test_a_story_tombstone_marks_the_row_expired_and_a_story_founded_again_replaces_it(
    store: Store, store_url: str, query_store
) -> None:
    first_tombstone = StoryTombstone(story_id="st_1", expired_at=datetime(2026, 11, 28, tzinfo=UTC))
    await store.upsert([_story("st_1", 3, "third"), _story("st_2", 1, "live")])
    await store.upsert([first_tombstone])
    await store.upsert([first_tombstone.model_copy(update={"expired_at": datetime(2026, 11, 29, tzinfo=UTC)})])
    # In one batch, in topic order: created then gone; gone then founded again.
    await store.upsert([_story("st_3", 1, "brief"), StoryTombstone(story_id="st_3", expired_at=first_tombstone.expired_at),
                        StoryTombstone(story_id="st_4", expired_at=first_tombstone.expired_at), _story("st_4", 1, "back")])
    sql = "SELECT id, revision, headline, expired_at FROM stories ORDER BY id"
    rows = await query_store(store_url, sql)
    assert {r["id"]: r["expired_at"] is not None for r in rows} == {"st_1": True, "st_2": False, "st_3": True,
                                                                     "st_4": False}
    assert (rows[0]["revision"], rows[0]["headline"]) == (3, "third")  # the story's last state is kept
    assert str(rows[0]["expired_at"]).startswith("2026-11-28")  # a re-delivered tombstone changes nothing
    # Its founder replayed after the TTL founds the story again, revision 1: it replaces the expired row.
    await store.upsert([_story("st_1", 1, "founded again")])
    rows = await query_store(store_url, sql)
    assert (rows[0]["revision"], rows[0]["headline"], rows[0]["expired_at"]) == (1, "founded again", None)
    assert (await store.summary()).stories == 4


async def test_migrate_adds_the_new_columns_to_an_older_database(store_url: str, query_store) -> None:
    """A database created before stage 3 (no story_id etc.) is upgraded in place, rows kept."""
    old_table = (
        "CREATE TABLE ticker_items (id TEXT PRIMARY KEY, source TEXT, time TEXT, text TEXT, attribution TEXT,"
        " continues_previous BOOLEAN, thread_id TEXT, published_at TEXT, language TEXT,"
        " language_confidence DOUBLE PRECISION, normalized_text TEXT, content_hash TEXT, word_count INTEGER,"
        " duplicate_of TEXT, fetched_at TEXT, processed_at TEXT, event TEXT NOT NULL, stored_at TEXT NOT NULL)"
    )
    old_row = "INSERT INTO ticker_items (id, event, stored_at) VALUES ('old', '{}', 'x')"
    # And a stories table from before story tombstones (no expired_at).
    old_stories = ("CREATE TABLE stories (id TEXT PRIMARY KEY, revision INTEGER, headline TEXT, member_count INTEGER,"
                   " first_seen TEXT, last_seen TEXT, sources TEXT, event TEXT NOT NULL, stored_at TEXT NOT NULL)")
    if store_url.startswith("sqlite:"):
        import sqlite3

        path = Path(store_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as conn:
            for sql in (old_table, old_row, old_stories):
                conn.execute(sql)
        columns_sql = "SELECT name FROM pragma_table_info('{table}')"
    else:
        fresh = open_store(store_url)
        await fresh.connect()  # creates the private schema
        await fresh.close()
        for sql in (old_table, old_row, old_stories):
            await query_store(store_url, sql)
        columns_sql = ("SELECT column_name AS name FROM information_schema.columns"
                       " WHERE table_schema = current_schema() AND table_name = '{table}'")
    async with open_store(store_url) as store:
        await store.migrate()
        await store.migrate()  # twice: idempotent
    cols = {r["name"] for r in await query_store(store_url, columns_sql.format(table="ticker_items"))}
    assert {"duplicate_kind", "duplicate_similarity", "stream_thread_id", "story_id"} <= cols
    assert "expired_at" in {r["name"] for r in await query_store(store_url, columns_sql.format(table="stories"))}
    assert (await query_store(store_url, "SELECT id FROM ticker_items")) == [{"id": "old"}]

"""Where the sink writes: SQLite for a laptop, PostgreSQL for production.

Both stores share one table layout (``articles``, ``ticker_items``,
``dead_letters``, ``stories``): the useful fields flattened into columns for querying, plus
the whole event as JSON in ``event`` so nothing is lost when the models grow.
Every write is an upsert keyed by the event id, so re-delivering a batch (the
sink commits Kafka offsets only after a write) leaves the tables unchanged.

Pick a store by URL with :func:`open_store`:

* ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite``
* ``postgresql://user@host:5432/db`` (also ``postgres://``), optionally with
  ``?schema=NAME`` to keep the tables in their own schema (created if missing).
"""

from __future__ import annotations

import asyncio
import base64
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from pydantic import BaseModel, Field, field_validator

from newsstream.contract.models import DeadLetter, EnrichedArticle, EnrichedTickerItem, StoryEvent

StoredEvent = EnrichedArticle | EnrichedTickerItem | DeadLetter | StoryEvent

ARTICLES = "articles"
TICKER_ITEMS = "ticker_items"
DEAD_LETTERS = "dead_letters"
STORIES = "stories"
TABLES = (ARTICLES, TICKER_ITEMS, DEAD_LETTERS, STORIES)


class StoreSummary(BaseModel):
    """Row counts of a store, for the CLI, tests and health reporting."""

    articles: int = 0
    ticker_items: int = 0
    threads: int = Field(default=0, description="Distinct ticker thread ids.")
    duplicates: int = Field(default=0, description="Articles and ticker items whose duplicate_of is set (exact or near).")
    near_duplicates: int = Field(default=0, description="Of those, near (not exact) copies.")
    stories: int = 0
    multi_member_stories: int = Field(default=0, description="Stories with more than one member.")
    dead_letters: int = 0
    dead_letters_by_reason: dict[str, int] = Field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """An async, idempotent event store (see the module docstring)."""

    kind: str
    """Short backend name, used as the ``store`` metrics label: 'sqlite' or 'postgresql'."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> None:
        """Create the tables and indexes that do not exist yet (safe to call every start)."""
        ...

    async def upsert(self, batch: Sequence[StoredEvent]) -> None:
        """Insert or update every event by id in one transaction, durable on return.

        When an id occurs more than once in the batch, the last occurrence wins.
        """
        ...

    async def summary(self) -> StoreSummary: ...

    async def ping(self) -> bool:
        """True when the store answers a trivial query; never raises."""
        ...

    async def __aenter__(self) -> Store:
        """``async with open_store(url) as store:`` connects, and closes on exit."""
        ...

    async def __aexit__(self, *exc: object) -> None: ...


# --------------------------------------------------------------------------- rows


# Column order per table. ``id`` comes first and ``event``/``stored_at`` last;
# the SQL below is generated from these lists so the two backends cannot drift.
COLUMNS: dict[str, tuple[str, ...]] = {
    ARTICLES: (
        "id", "source", "url", "title", "body", "language", "language_confidence", "normalized_text",
        "content_hash", "word_count", "duplicate_of", "published_at", "fetched_at", "processed_at",
        "duplicate_kind", "duplicate_similarity", "story_id", "event", "stored_at",
    ),
    TICKER_ITEMS: (
        "id", "source", "time", "text", "attribution", "continues_previous", "thread_id", "published_at",
        "language", "language_confidence", "normalized_text", "content_hash", "word_count", "duplicate_of",
        "fetched_at", "processed_at", "duplicate_kind", "duplicate_similarity", "stream_thread_id", "story_id",
        "event", "stored_at",
    ),
    DEAD_LETTERS: (
        "id", "stage", "reason", "error", "source_topic", "source_partition", "source_offset", "input_ref",
        "payload", "payload_encoding", "failed_at", "event", "stored_at",
    ),
    # One row per story (id = story id): its latest state from news.stories.v1.
    STORIES: (
        "id", "revision", "headline", "member_count", "first_seen", "last_seen", "sources", "event", "stored_at",
    ),
}
# Columns added after a table's first release, in order (migrate() adds them to older databases).
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    ARTICLES: ("duplicate_kind", "duplicate_similarity", "story_id"),
    TICKER_ITEMS: ("duplicate_kind", "duplicate_similarity", "stream_thread_id", "story_id"),
}

# Column -> SQL type; "TS" becomes TIMESTAMPTZ in PostgreSQL and ISO 8601 TEXT in
# SQLite, "JSON" becomes JSONB / TEXT, "BOOL" becomes BOOLEAN / INTEGER 0-1.
_TYPES: dict[str, str] = {
    "id": "TEXT PRIMARY KEY",
    "language_confidence": "DOUBLE PRECISION",
    "word_count": "INTEGER",
    "duplicate_similarity": "DOUBLE PRECISION",
    "revision": "INTEGER",
    "member_count": "INTEGER",
    "first_seen": "TS",
    "last_seen": "TS",
    "sources": "JSON",
    "continues_previous": "BOOL",
    "source_partition": "INTEGER",
    "source_offset": "BIGINT",
    "published_at": "TS",
    "fetched_at": "TS",
    "processed_at": "TS",
    "failed_at": "TS",
    "stored_at": "TS NOT NULL",
    "event": "JSON NOT NULL",
}

_INDEXES: tuple[tuple[str, str], ...] = (
    (ARTICLES, "content_hash"),
    (ARTICLES, "duplicate_of"),
    (TICKER_ITEMS, "content_hash"),
    (TICKER_ITEMS, "duplicate_of"),
    (TICKER_ITEMS, "thread_id"),
    (ARTICLES, "story_id"),
    (TICKER_ITEMS, "story_id"),
    (TICKER_ITEMS, "stream_thread_id"),
    (DEAD_LETTERS, "reason"),
    (STORIES, "last_seen"),
)


def table_for(event: StoredEvent) -> str:
    """The table an event is stored in."""
    if isinstance(event, EnrichedArticle):
        return ARTICLES
    if isinstance(event, EnrichedTickerItem):
        return TICKER_ITEMS
    if isinstance(event, DeadLetter):
        return DEAD_LETTERS
    if isinstance(event, StoryEvent):
        return STORIES
    raise TypeError(f"cannot store {type(event).__name__}")


def is_data_error(exc: BaseException) -> bool:
    """True when the store rejected the *data* (retrying the same rows cannot succeed),
    False for what may pass on a retry (connection lost, database locked, timeout)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, ValueError, TypeError, OverflowError)):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    # Class 22 (data exception), 23 (integrity constraint), 54 (program limit:
    # e.g. a value too large for an index row).
    return isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                            asyncpg.ProgramLimitExceededError))


def row_id(event: StoredEvent) -> str:
    """The primary key of the event's row."""
    return event.story_id if isinstance(event, StoryEvent) else event.id


def _utc(value: datetime | None) -> datetime | None:
    # Producers should send UTC with an offset; a naive time is taken as UTC
    # rather than as the sink host's local time.
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _safe_dead_letter(event: DeadLetter) -> DeadLetter:
    """A dead letter whose payload has NUL characters, re-encoded as base64.

    PostgreSQL text and JSONB cannot hold U+0000, and a row that can never be
    written would block the sink forever; base64 keeps the payload byte-exact.
    """
    if event.payload_encoding == "utf-8" and "\x00" in event.payload:
        encoded = base64.b64encode(event.payload.encode("utf-8")).decode("ascii")
        return event.model_copy(update={"payload": encoded, "payload_encoding": "base64"})
    return event


def _row(event: StoredEvent, stored_at: datetime) -> tuple[str, tuple[Any, ...]]:
    """(table, values in COLUMNS order) with Python values; backends adapt types."""
    event_json = event.model_dump(mode="json")
    if isinstance(event, DeadLetter):
        return DEAD_LETTERS, (
            event.id, event.stage, event.reason, event.error, event.source_topic, event.source_partition,
            event.source_offset, event.input_ref, event.payload, event.payload_encoding, _utc(event.failed_at),
            event_json, stored_at,
        )
    if isinstance(event, StoryEvent):
        return STORIES, (
            event.story_id, event.revision, event.headline, event.member_count, _utc(event.first_seen),
            _utc(event.last_seen), event.sources, event_json, stored_at,
        )
    e = event.enrichment
    if isinstance(event, EnrichedArticle):
        a = event.raw
        return ARTICLES, (
            event.id, a.source, a.url, a.title, a.body, e.language, e.language_confidence, e.normalized_text,
            e.content_hash, e.word_count, e.duplicate_of, _utc(a.published_at), _utc(a.fetched_at),
            _utc(e.processed_at), e.duplicate_kind, e.duplicate_similarity, e.story_id, event_json, stored_at,
        )
    if isinstance(event, EnrichedTickerItem):
        t = event.raw
        return TICKER_ITEMS, (
            event.id, t.source, t.time, t.text, t.attribution, t.continues_previous, t.thread_id,
            _utc(t.published_at), e.language, e.language_confidence, e.normalized_text, e.content_hash,
            e.word_count, e.duplicate_of, _utc(t.fetched_at), _utc(e.processed_at), e.duplicate_kind,
            e.duplicate_similarity, e.thread_id, e.story_id, event_json, stored_at,
        )
    raise TypeError(f"cannot store {type(event).__name__}")


def rows_by_table(
    batch: Iterable[StoredEvent], *, stored_at: datetime | None = None, nul_safe: bool = False
) -> dict[str, list[tuple[Any, ...]]]:
    """Group a batch into rows per table, keeping the last event of each id.

    Deduplicating here matters for PostgreSQL: one ``INSERT ... ON CONFLICT``
    statement may not touch the same row twice, and the batch must be one
    transaction. ``nul_safe`` replaces U+0000 (which PostgreSQL rejects) in
    every text value; dead-letter payloads are base64-encoded instead so they
    stay byte-exact.
    """
    stored_at = stored_at or datetime.now(timezone.utc)
    latest: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in TABLES}
    for event in batch:
        if nul_safe and isinstance(event, DeadLetter):
            event = _safe_dead_letter(event)
        table, row = _row(event, stored_at)
        if nul_safe:
            row = tuple(_strip_nul(v) for v in row)
        # pop first so that a repeated id moves to its latest position in the batch
        latest[table].pop(row[0], None)
        latest[table][row[0]] = row
    return {t: list(rows.values()) for t, rows in latest.items() if rows}


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _upsert_sql(table: str, placeholders: Sequence[str], dialect: str) -> str:
    cols = COLUMNS[table]
    # SQLite spells IS DISTINCT FROM as IS NOT before 3.39 (older builds are common).
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    # The WHERE clause turns a re-delivered, unchanged event into a no-op (no
    # new row version, stored_at kept); a changed event (same id) is updated.
    # A story only moves forward: an older revision delivered late is ignored.
    newer = f" AND {table}.revision <= excluded.revision" if table == STORIES else ""
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(placeholders)}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE {table}.event {distinct} excluded.event{newer}"
    )


def _sql_type(column: str, dialect: str) -> str:
    base, _, rest = _TYPES.get(column, "TEXT").partition(" ")
    if dialect == "postgresql":
        base = {"TS": "TIMESTAMPTZ", "JSON": "JSONB", "BOOL": "BOOLEAN"}.get(base, base)
    else:
        base = {"TS": "TEXT", "JSON": "TEXT", "BOOL": "INTEGER"}.get(base, base)
    return f"{base} {rest}".strip()


def _create_sql(dialect: str, existing: dict[str, set[str]] | None = None) -> list[str]:
    """Statements that create missing tables, add ``ADDED_COLUMNS`` missing from
    ``existing`` (table -> its current columns), and create missing indexes."""
    statements = []
    for table, cols in COLUMNS.items():
        defs = ", ".join(f"{col} {_sql_type(col, dialect)}" for col in cols)
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({defs})")
        have = (existing or {}).get(table)
        for col in ADDED_COLUMNS.get(table, ()):
            if have and col not in have:
                statements.append(f"ALTER TABLE {table} ADD COLUMN {col} {_sql_type(col, dialect)}")
    for table, col in _INDEXES:
        statements.append(f"CREATE INDEX IF NOT EXISTS {table}_{col}_idx ON {table} ({col})")
    return statements


_SUMMARY_SQL = {
    ARTICLES: "SELECT count(*) FROM articles",
    TICKER_ITEMS: "SELECT count(*) FROM ticker_items",
    # The worker's stream thread (across fetches) when stage 3 ran, else the page's.
    "threads": "SELECT count(DISTINCT coalesce(stream_thread_id, thread_id)) FROM ticker_items",
    "duplicates": (
        "SELECT (SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL)"
        " + (SELECT count(*) FROM ticker_items WHERE duplicate_of IS NOT NULL)"
    ),
    "near_duplicates": (
        "SELECT (SELECT count(*) FROM articles WHERE duplicate_kind = 'near')"
        " + (SELECT count(*) FROM ticker_items WHERE duplicate_kind = 'near')"
    ),
    STORIES: "SELECT count(*) FROM stories",
    "multi_member_stories": "SELECT count(*) FROM stories WHERE member_count > 1",
    DEAD_LETTERS: "SELECT count(*) FROM dead_letters",
}
_BY_REASON_SQL = "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason"

# {limit} is the dialect's placeholder ("?" or "$1").
_DUPLICATES_SQL = """
SELECT 'article' AS kind, d.id, d.source, d.title AS text, f.id AS first_id, f.source AS first_source,
       coalesce(d.duplicate_kind, 'exact') AS duplicate_kind, d.duplicate_similarity AS similarity
  FROM articles d JOIN articles f ON f.id = d.duplicate_of
UNION ALL
SELECT 'ticker' AS kind, d.id, d.source, d.text, f.id AS first_id, f.source AS first_source,
       coalesce(d.duplicate_kind, 'exact') AS duplicate_kind, d.duplicate_similarity AS similarity
  FROM ticker_items d JOIN ticker_items f ON f.id = d.duplicate_of
ORDER BY 1, 2 LIMIT {limit}
"""
_THREADS_SQL = """
SELECT coalesce(stream_thread_id, thread_id) AS thread_id, count(*) AS lines, min(source) AS source,
       min(attribution) AS attribution
  FROM ticker_items GROUP BY coalesce(stream_thread_id, thread_id) HAVING count(*) > 1
 ORDER BY lines DESC, thread_id LIMIT {limit}
"""
_STORIES_SQL = """
SELECT id AS story_id, headline, member_count, sources FROM stories WHERE member_count > 1
 ORDER BY member_count DESC, id LIMIT {limit}
"""


class DuplicateRow(BaseModel):
    kind: str
    id: str
    source: str
    text: str
    first_id: str
    first_source: str
    duplicate_kind: str = "exact"
    similarity: float | None = None


class ThreadRow(BaseModel):
    thread_id: str
    lines: int
    source: str
    attribution: str | None


class StoryRow(BaseModel):
    story_id: str
    headline: str
    member_count: int
    sources: list[str]

    @field_validator("sources", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:  # SQLite returns the JSON column as text
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value


class _StoreBase:
    """``async with store:`` connects, and closes on exit."""

    kind = "store"

    async def connect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def _fetch(self, sql: str, limit: int) -> list[dict[str, Any]]:  # pragma: no cover - overridden
        raise NotImplementedError

    async def duplicates(self, limit: int = 20) -> list[DuplicateRow]:
        """Items marked as duplicates, each with the item it duplicates."""
        return [DuplicateRow(**row) for row in await self._fetch(_DUPLICATES_SQL, limit)]

    async def threads(self, limit: int = 20) -> list[ThreadRow]:
        """Ticker threads of more than one line, longest first."""
        return [ThreadRow(**row) for row in await self._fetch(_THREADS_SQL, limit)]

    async def stories(self, limit: int = 20) -> list[StoryRow]:
        """Stories with more than one member, largest first."""
        return [StoryRow(**row) for row in await self._fetch(_STORIES_SQL, limit)]

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --------------------------------------------------------------------------- SQLite


class SQLiteStore(_StoreBase):
    """stdlib sqlite3 driven from worker threads so the event loop never blocks.

    WAL lets readers (the CLI, tests) query while the sink writes, and
    ``synchronous=FULL`` makes every commit durable before ``upsert`` returns.
    One connection is shared by the worker threads under a lock.
    """

    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
        conn = sqlite3.connect(
            Path(self.path).expanduser() if self.path != ":memory:" else ":memory:",
            isolation_level=None,
            check_same_thread=False,
            timeout=30.0,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    async def connect(self) -> None:
        if self._conn is None:
            self._conn = await asyncio.to_thread(self._open)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._locked, conn.close)

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(*args)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteStore is not connected: call connect() first")
        return self._conn

    def _transaction(self, statements: list[tuple[str, list[tuple[Any, ...]] | None]]) -> None:
        conn = self._require()
        with self._lock:
            # IMMEDIATE takes the write lock up front, so a concurrent writer makes
            # us wait (busy timeout) instead of failing half-way through a batch.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    if rows is None:
                        conn.execute(sql)
                    else:
                        conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # BEGIN itself may have failed (database locked)
                    conn.execute("ROLLBACK")
                raise

    async def migrate(self) -> None:
        def columns() -> dict[str, set[str]]:
            conn = self._require()
            return {t: {row[1] for row in conn.execute(f"PRAGMA table_info({t})")} for t in TABLES}

        existing = await asyncio.to_thread(self._locked, columns)
        await asyncio.to_thread(self._transaction, [(sql, None) for sql in _create_sql("sqlite", existing)])

    async def upsert(self, batch: Sequence[StoredEvent]) -> None:
        if not batch:
            return
        statements = []
        for table, rows in rows_by_table(batch).items():
            sql = _upsert_sql(table, ["?"] * len(COLUMNS[table]), "sqlite")
            statements.append((sql, [tuple(_sqlite_value(v) for v in row) for row in rows]))
        await asyncio.to_thread(self._transaction, statements)

    def _summary(self) -> StoreSummary:
        conn = self._require()
        with self._lock:
            # One read transaction: all counts from the same snapshot.
            conn.execute("BEGIN")
            try:
                counts = {key: conn.execute(sql).fetchone()[0] for key, sql in _SUMMARY_SQL.items()}
                by_reason = dict(conn.execute(_BY_REASON_SQL).fetchall())
            finally:
                conn.execute("COMMIT")
        return StoreSummary(**counts, dead_letters_by_reason=by_reason)

    async def summary(self) -> StoreSummary:
        return await asyncio.to_thread(self._summary)

    async def _fetch(self, sql: str, limit: int) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            cursor = self._require().execute(sql.format(limit="?"), (limit,))
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

        return await asyncio.to_thread(self._locked, run)

    async def ping(self) -> bool:
        if self._conn is None:
            return False
        try:
            await asyncio.to_thread(self._locked, lambda: self._require().execute("SELECT 1").fetchone())
            return True
        except Exception:
            return False


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # always UTC here (see _utc): sorts and compares as text
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode("utf-8")
    return value


# --------------------------------------------------------------------------- PostgreSQL

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def parse_postgres_url(url: str) -> tuple[str, str | None]:
    """(DSN for asyncpg, schema or None): ``?schema=NAME`` is ours, not libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None) or None
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use letters, digits and underscores")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresStore(_StoreBase):
    """asyncpg connection pool; one transaction per batch, pipelined ``executemany``."""

    kind = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, command_timeout: float = 60.0) -> None:
        self.dsn, self.schema = parse_postgres_url(url)
        self._pool_kwargs = dict(min_size=min_size, max_size=max_size, command_timeout=command_timeout)
        self._pool: Any = None  # asyncpg.Pool; asyncpg is imported lazily (SQLite users need not load it)

    async def connect(self) -> None:
        import asyncpg

        if self._pool is not None:
            return
        server_settings: dict[str, str] = {"application_name": "newsstream-sink"}
        if self.schema:
            conn = await asyncpg.connect(self.dsn)
            try:
                # Two services starting together may both try to create it.
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(self.schema)}")
            except asyncpg.UniqueViolationError:
                pass
            finally:
                await conn.close()
            server_settings["search_path"] = _quote_ident(self.schema)
        self._pool = await asyncpg.create_pool(self.dsn, server_settings=server_settings, **self._pool_kwargs)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require(self) -> Any:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not connected: call connect() first")
        return self._pool

    async def migrate(self) -> None:
        async with self._require().acquire() as conn, conn.transaction():
            # CREATE ... IF NOT EXISTS is not race-free in PostgreSQL (two sessions
            # can both pass the check); a transaction-scoped advisory lock is.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('newsstream.sink.migrate'))")
            existing: dict[str, set[str]] = {}
            for row in await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            ):
                existing.setdefault(row["table_name"], set()).add(row["column_name"])
            for sql in _create_sql("postgresql", existing):
                await conn.execute(sql)

    async def upsert(self, batch: Sequence[StoredEvent]) -> None:
        if not batch:
            return
        tables = rows_by_table(batch, nul_safe=True)
        async with self._require().acquire() as conn, conn.transaction():
            for table, rows in tables.items():
                placeholders = [f"${i}" for i in range(1, len(COLUMNS[table]) + 1)]
                await conn.executemany(
                    _upsert_sql(table, placeholders, "postgresql"), [tuple(_pg_value(v) for v in row) for row in rows]
                )

    async def summary(self) -> StoreSummary:
        async with self._require().acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # repeatable read: all counts from the same snapshot
            counts = {key: int(await conn.fetchval(sql)) for key, sql in _SUMMARY_SQL.items()}
            by_reason = {r["reason"]: int(r["count"]) for r in await conn.fetch(_BY_REASON_SQL)}
        return StoreSummary(**counts, dead_letters_by_reason=by_reason)

    async def _fetch(self, sql: str, limit: int) -> list[dict[str, Any]]:
        async with self._require().acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql.format(limit="$1"), limit)]

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(2.0):
                async with self._pool.acquire() as conn:
                    return bool(await conn.fetchval("SELECT 1") == 1)
        except Exception:
            return False


def _pg_value(value: Any) -> Any:
    # asyncpg takes JSONB parameters as text unless a codec is registered.
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode("utf-8")
    return value


# --------------------------------------------------------------------------- factory


def open_store(url: str) -> Store:
    """A store for ``url`` (not yet connected: call ``connect()`` then ``migrate()``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL needs a scheme (sqlite:/// or postgresql://): {url!r}")
    scheme = scheme.lower()
    if scheme == "sqlite":
        # sqlite:///rel/path -> "rel/path"; sqlite:////abs/path -> "/abs/path"
        if not rest.startswith("/"):
            raise ValueError(f"SQLite URLs look like sqlite:///path/to/file.sqlite, got {url!r}")
        path = rest[1:].split("?", 1)[0]
        if not path:
            raise ValueError(f"SQLite URL without a path: {url!r}")
        return SQLiteStore(path)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise ValueError(f"unsupported store URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))

"""What every store shares: the table layout, event -> row mapping and SQL generation.

Both stores share one table layout (``articles``, ``ticker_items``,
``dead_letters``, ``stories``): the useful fields flattened into columns for
querying, plus the whole event as JSON in ``event`` so nothing is lost when
the models grow. Every write is an upsert keyed by the event id, so
re-delivering a batch (the sink commits Kafka offsets only after a write)
leaves the tables unchanged, and guarded by the event's version
(:data:`VERSION_COLUMNS`), so an older version arriving late never replaces
a newer one. The SQL of both backends is generated from
:data:`COLUMNS` here, so they cannot drift apart.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

from newsstream.contract.models import (
    DeadLetter,
    EnrichedArticle,
    EnrichedTickerItem,
    StoryEvent,
)
from newsstream.errors import DataError
from newsstream.sink.stores.queries import (
    DUPLICATES_SQL,
    STORIES_SQL,
    THREADS_SQL,
    DuplicateRow,
    StoreSummary,
    StoryRow,
    ThreadRow,
)
from newsstream.sink.stores.tables import (
    ARTICLES,
    DEAD_LETTERS,
    STORIES,
    TABLES,
    TICKER_ITEMS,
)


class StoryTombstone(BaseModel):
    """A tombstone on ``news.stories.v1`` (key: story id, no value): stage 3 forgot the story.

    The store keeps the story's row and marks it expired (``expired_at``): the
    compacted topic carries the live stories, the table their history too,
    and the items keep their ``story_id``.
    """

    model_config = ConfigDict(frozen=True)

    story_id: str
    expired_at: datetime


StoredEvent = EnrichedArticle | EnrichedTickerItem | DeadLetter | StoryEvent | StoryTombstone


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

        A row is replaced only by a version at least as new (:data:`VERSION_COLUMNS`);
        among equal versions in one batch the last occurrence wins.
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
    # One row per story (id = story id): its latest state from news.stories.v1;
    # expired_at is set when the topic tombstones it (the story is no longer live).
    STORIES: (
        "id", "revision", "headline", "member_count", "first_seen", "last_seen", "sources", "event", "stored_at",
        "expired_at",
    ),
}
# The version of a row, compared as a tuple: an older version never replaces a
# newer one, in a batch or in the table, whatever order they arrive in. Versions
# of an edited article (same id, new content hash) travel through different
# by-content partitions and reach the enriched topics in any order. An item's
# version is its raw fetch time; then its content hash, so that two versions
# fetched at the same instant have a fixed winner; then its processing time (the
# same version enriched again). A story's is its revision.
VERSION_COLUMNS: dict[str, tuple[str, ...]] = {
    ARTICLES: ("fetched_at", "content_hash", "processed_at"),
    TICKER_ITEMS: ("fetched_at", "content_hash", "processed_at"),
    STORIES: ("revision",),
}

# Columns added after a table's first release, in order (migrate() adds them to older databases).
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    ARTICLES: ("duplicate_kind", "duplicate_similarity", "story_id"),
    TICKER_ITEMS: ("duplicate_kind", "duplicate_similarity", "stream_thread_id", "story_id"),
    STORIES: ("expired_at",),
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
    "expired_at": "TS",
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
    if isinstance(event, (StoryEvent, StoryTombstone)):
        return STORIES
    raise TypeError(f"cannot store {type(event).__name__}")


def is_data_error(exc: BaseException) -> bool:
    """True when the store rejected the *data* (retrying the same rows cannot succeed).

    Only the drivers' own data and constraint errors count: a ``TypeError`` or
    ``ValueError`` raised on the way is a bug in newsstream, and treating it as
    bad data would quietly dead-letter good items (see :mod:`newsstream.errors`).
    """
    if isinstance(exc, DataError):
        return True
    # sqlite3 raises OverflowError for an integer it cannot hold.
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, OverflowError)):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    # Class 22 (data exception, also asyncpg's "invalid input for query
    # argument"), 23 (integrity constraint), 54 (program limit: e.g. a value
    # too large for an index row).
    return isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                            asyncpg.ProgramLimitExceededError))


def row_id(event: StoredEvent) -> str:
    """The primary key of the event's row."""
    return event.story_id if isinstance(event, (StoryEvent, StoryTombstone)) else event.id


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
            _utc(event.last_seen), event.sources, event_json, stored_at, None,
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


def rows_by_table(batch: Iterable[StoredEvent], *, stored_at: datetime | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Group a batch into rows per table, keeping the newest version of each id (the last of equal ones).

    Deduplicating here matters for PostgreSQL: one ``INSERT ... ON CONFLICT``
    statement may not touch the same row twice, and the batch must be one
    transaction. U+0000 (which PostgreSQL rejects) is replaced in every text
    value but the key, in both stores alike so they hold the same rows;
    dead-letter payloads are base64-encoded instead so they stay byte-exact.
    An id with U+0000 is refused (:class:`DataError`): a key is never rewritten.
    """
    stored_at = stored_at or datetime.now(timezone.utc)
    latest: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in TABLES}
    for event in batch:
        if isinstance(event, DeadLetter):
            event = _safe_dead_letter(event)
        table, row = _row(event, stored_at)
        if "\x00" in row[0]:
            # A key is never rewritten: the row could not be found under its own id.
            raise DataError(f"the id {row[0]!r} holds a NUL character", reason="invalid_id")
        row = (row[0], *(_strip_nul(v) for v in row[1:]))
        held = latest[table].get(row[0])
        if held is not None and _version(table, held) > _version(table, row):
            continue  # an older version delivered after a newer one
        # pop first so that a repeated id moves to its latest position in the batch
        latest[table].pop(row[0], None)
        latest[table][row[0]] = row
    return {t: list(rows.values()) for t, rows in latest.items() if rows}


def _version(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(row[COLUMNS[table].index(column)] for column in VERSION_COLUMNS.get(table, ()))


class Writes(NamedTuple):
    """A batch as a store writes it, in one transaction: the upserts, then the stories to mark expired."""

    rows: dict[str, list[tuple[Any, ...]]]  # see rows_by_table
    expired_stories: list[tuple[datetime, str]]  # (expired_at, story id): EXPIRE_STORY_SQL's parameters


def writes_for(batch: Sequence[StoredEvent]) -> Writes:
    """Split a batch into upserts and story expiries, in the order the topic gave them.

    A tombstone after a story's events in the batch marks the row those events
    wrote; a story event after its tombstone (the story founded again, say by a
    replayed archive) cancels it, and its upsert clears ``expired_at``.
    """
    tombstones: dict[str, StoryTombstone] = {}
    events: list[StoredEvent] = []
    for event in batch:
        if isinstance(event, StoryTombstone):
            tombstones[event.story_id] = event
            continue
        if isinstance(event, StoryEvent):
            tombstones.pop(event.story_id, None)
        events.append(event)
    expired = [(_utc(t.expired_at), t.story_id) for t in tombstones.values()]
    return Writes(rows_by_table(events) if events else {}, expired)


def expire_story_sql(placeholders: Sequence[str]) -> str:
    """Mark a story expired (parameters: expired_at, id); the first tombstone's time is kept."""
    return f"UPDATE {STORIES} SET expired_at = {placeholders[0]} WHERE id = {placeholders[1]} AND expired_at IS NULL"


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def upsert_sql(table: str, placeholders: Sequence[str], dialect: str) -> str:
    cols = COLUMNS[table]
    # SQLite spells IS DISTINCT FROM as IS NOT before 3.39 (older builds are common).
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    # The WHERE clause turns a re-delivered, unchanged event into a no-op (no
    # new row version, stored_at kept); a changed event (same id) is updated,
    # unless it is an older version delivered late (row values compare as
    # tuples in both databases; SQLite's timestamps are UTC ISO text, which
    # sorts as time does).
    newer = ""
    if version := VERSION_COLUMNS.get(table):
        held, incoming = (", ".join(f"{side}.{c}" for c in version) for side in (table, "excluded"))
        newer = f"({held}) <= ({incoming})"
        if table == STORIES:
            # An expired story's id comes back only when the story is founded again
            # (its founder replayed after the TTL): the new story replaces the old row
            # whatever its revision, and the update clears expired_at.
            newer = f"({STORIES}.expired_at IS NOT NULL OR {newer})"
        newer = f" AND {newer}"
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


def create_sql(dialect: str, existing: dict[str, set[str]] | None = None) -> list[str]:
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


class StoreBase:
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
        return [DuplicateRow(**row) for row in await self._fetch(DUPLICATES_SQL, limit)]

    async def threads(self, limit: int = 20) -> list[ThreadRow]:
        """Ticker threads of more than one line, longest first."""
        return [ThreadRow(**row) for row in await self._fetch(THREADS_SQL, limit)]

    async def stories(self, limit: int = 20) -> list[StoryRow]:
        """Stories with more than one member, largest first."""
        return [StoryRow(**row) for row in await self._fetch(STORIES_SQL, limit)]

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

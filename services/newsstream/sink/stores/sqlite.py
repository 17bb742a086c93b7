"""SQLite store: the embedded default (a laptop, the demo, tests)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from newsstream.sink.stores.base import (
    COLUMNS,
    StoreBase,
    StoredEvent,
    create_sql,
    expire_story_sql,
    upsert_sql,
    writes_for,
)
from newsstream.sink.stores.queries import BY_REASON_SQL, SUMMARY_SQL, StoreSummary
from newsstream.sink.stores.tables import TABLES


class SQLiteStore(StoreBase):
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
        await asyncio.to_thread(self._transaction, [(sql, None) for sql in create_sql("sqlite", existing)])

    async def upsert(self, batch: Sequence[StoredEvent]) -> None:
        if not batch:
            return
        writes = writes_for(batch)
        statements = []
        for table, rows in writes.rows.items():
            sql = upsert_sql(table, ["?"] * len(COLUMNS[table]), "sqlite")
            statements.append((sql, [tuple(_sqlite_value(v) for v in row) for row in rows]))
        if writes.expired_stories:
            statements.append((expire_story_sql(["?", "?"]),
                               [tuple(_sqlite_value(v) for v in row) for row in writes.expired_stories]))
        await asyncio.to_thread(self._transaction, statements)

    def _summary(self) -> StoreSummary:
        conn = self._require()
        with self._lock:
            # One read transaction: all counts from the same snapshot.
            conn.execute("BEGIN")
            try:
                counts = {key: conn.execute(sql).fetchone()[0] for key, sql in SUMMARY_SQL.items()}
                by_reason = dict(conn.execute(BY_REASON_SQL).fetchall())
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

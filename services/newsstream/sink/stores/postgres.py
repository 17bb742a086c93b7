"""PostgreSQL store (asyncpg): production."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


class PostgresStore(StoreBase):
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
            for sql in create_sql("postgresql", existing):
                await conn.execute(sql)

    async def upsert(self, batch: Sequence[StoredEvent]) -> None:
        if not batch:
            return
        writes = writes_for(batch)
        async with self._require().acquire() as conn, conn.transaction():
            for table, rows in writes.rows.items():
                placeholders = [f"${i}" for i in range(1, len(COLUMNS[table]) + 1)]
                await conn.executemany(
                    upsert_sql(table, placeholders, "postgresql"), [tuple(_pg_value(v) for v in row) for row in rows]
                )
            if writes.expired_stories:
                await conn.executemany(expire_story_sql(["$1", "$2"]), writes.expired_stories)

    async def summary(self) -> StoreSummary:
        async with self._require().acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # repeatable read: all counts from the same snapshot
            counts = {key: int(await conn.fetchval(sql)) for key, sql in SUMMARY_SQL.items()}
            by_reason = {r["reason"]: int(r["count"]) for r in await conn.fetch(BY_REASON_SQL)}
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

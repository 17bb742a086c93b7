"""Shared fixtures: real components only (a Tansu broker, PostgreSQL, SQLite files).

* ``broker``        - a fresh in-memory Tansu broker per test (starts in milliseconds).
* ``fast_settings`` - Settings pointing at ``broker`` with short group timings
                      (a consumer gets its partitions in ~3 s instead of ~30 s).
* ``pg_url``        - a PostgreSQL store URL with a private schema, dropped afterwards.
* ``sqlite_url``    - a SQLite store URL in the test's tmp_path.
* ``events``        - builds valid enriched events and dead letters (see EventFactory).
* ``query_store``   - ``await query_store(url, sql)`` -> rows as dicts, read straight
                      from SQLite or PostgreSQL (checks what a store really wrote).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from newsstream.contract.models import (
    DeadLetter,
    EnrichedArticle,
    EnrichedTickerItem,
    Enrichment,
    RawArticle,
    RawTickerItem,
)
from newsstream.contract.wire import dead_letter
from newsstream.platform.broker import EmbeddedBroker
from newsstream.platform.settings import Settings
from tests.needs import require

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"  # trust auth on this machine


# Tests that start real components (the Tansu broker, PostgreSQL) are integration
# tests whatever their file: marked here from the fixtures they use, so
# ``-m "not integration"`` is always the quick, self-contained subset.
_INTEGRATION_FIXTURES = {"broker", "fast_settings", "pg_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def fast_settings(broker: EmbeddedBroker) -> Settings:
    """Settings for ``broker``; use ``.model_copy(update={...})`` to adjust per test."""
    return Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        partitions=2,
        session_timeout_s=6,
        rebalance_timeout_s=3,
        heartbeat_interval_s=1,
        metrics_host="127.0.0.1",
        metrics_port=0,  # the OS picks a free port: several services per test are fine
        sink_batch_wait_ms=100,
    )


def _pg_reachable(timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def _ensure_postgres() -> None:
    """Start the local cluster if it is installed but not running."""
    if _pg_reachable():
        return
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        require("PostgreSQL is not installed on this machine")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )
    deadline = time.monotonic() + 20
    while not _pg_reachable():
        if time.monotonic() > deadline:
            pytest.fail(f"PostgreSQL did not come up on {PG_HOST}:{PG_PORT}")
        time.sleep(0.1)


def _pg_execute(sql: str) -> None:
    """Run one statement from a sync fixture without touching the test's event loop."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_BASE_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """``postgresql://...?schema=t_<random>``: the store creates the schema; it is dropped afterwards."""
    _ensure_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG_BASE_URL}?schema={schema}"
    _pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'newsstream.sqlite'}"


class EventFactory:
    """Valid events with predictable ids (``a_0001``, ``t_0001``); override any field."""

    T0 = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)

    def _enrichment(self, text: str, n: int, **overrides: Any) -> Enrichment:
        fields: dict[str, Any] = dict(
            language="ar",
            language_confidence=0.98,
            normalized_text=text,
            content_hash=f"h_{n:04d}",
            word_count=len(text.split()),
            duplicate_of=None,
            processed_at=self.T0 + timedelta(minutes=5),
            pipeline_version="test",
        )
        return Enrichment(**{**fields, **overrides})

    def article(self, n: int, *, title: str | None = None, body: str | None = None, fetched_at: datetime | None = None,
                **enrichment: Any) -> EnrichedArticle:
        body = body if body is not None else f"نص الخبر رقم {n} عن الاجتماع الوزاري"
        raw = RawArticle(
            id=f"a_{n:04d}",
            source="almayadeen",
            url=f"https://example.org/news/{n}",
            title=title if title is not None else f"عنوان {n}",
            body=body,
            published_at=self.T0,
            fetched_at=fetched_at or self.T0 + timedelta(minutes=1),
        )
        return EnrichedArticle(id=raw.id, raw=raw, enrichment=self._enrichment(body, n, **enrichment))

    def ticker(self, n: int, *, thread_id: str = "th_1", text: str | None = None, fetched_at: datetime | None = None,
               **enrichment: Any) -> EnrichedTickerItem:
        text = text if text is not None else f"وزير الخارجية: نرحب بالاتفاق رقم {n}"
        raw = RawTickerItem(
            id=f"t_{n:04d}",
            source="almayadeen",
            time="09:30",
            published_at=self.T0,
            text=text,
            attribution="الخارجية التركية",
            continues_previous=n > 1,
            thread_id=thread_id,
            fetched_at=fetched_at or self.T0 + timedelta(minutes=1),
        )
        return EnrichedTickerItem(id=raw.id, raw=raw, enrichment=self._enrichment(text, 1000 + n, **enrichment))

    def dead_letter(self, n: int, *, reason: str = "invalid_json", payload: bytes | str = b"{not json") -> DeadLetter:
        return dead_letter(
            payload, stage="worker", reason=reason, error="test", source_topic="news.raw.articles.v1",
            source_partition=0, source_offset=n,
        )


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()


async def _query(url: str, sql: str) -> list[dict[str, Any]]:
    if url.startswith("sqlite:"):
        import sqlite3

        from newsstream.sink.stores import SQLiteStore, open_store

        store = open_store(url)
        assert isinstance(store, SQLiteStore)
        with closing(sqlite3.connect(store.path)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql).fetchall()]
    import asyncpg

    from newsstream.sink.stores import parse_postgres_url

    dsn, schema = parse_postgres_url(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else None)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


@pytest.fixture
def query_store() -> Callable[[str, str], Awaitable[list[dict[str, Any]]]]:
    return _query

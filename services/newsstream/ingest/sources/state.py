"""Durable source state in one SQLite file.

* ``seen``        (source, key): items already handed to the broker, so a
                   restart re-emits nothing. A key is written only *after*
                   the broker acknowledged the item's events.
* ``validators``  (url): ETag / Last-Modified of the last response whose items
                   were all acknowledged, for conditional GET.
* ``threads``     (source, item id): ticker thread ids already given out, so a
                   continuation keeps its thread after its first line scrolled off.
* ``checkpoints`` (name): how far a replay got (line number or file index).

``synchronous=FULL`` with WAL: a committed mark survives a power cut.
SQLite calls are short and local, so they run inline in the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, key TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    source TEXT NOT NULL, item_id TEXT NOT NULL, thread_id TEXT NOT NULL,
    attribution TEXT NOT NULL, published_at TEXT NOT NULL,
    PRIMARY KEY (source, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated REAL NOT NULL
);
"""


class SourceState:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SourceState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # seen items
    def unseen(self, source: str, keys: Iterable[str]) -> list[str]:
        """The keys not marked yet, in the given order (duplicates removed)."""
        out: list[str] = []
        for key in dict.fromkeys(keys):
            row = self._db.execute("SELECT 1 FROM seen WHERE source=? AND key=?", (source, key)).fetchone()
            if row is None:
                out.append(key)
        return out

    def is_seen(self, source: str, key: str) -> bool:
        return not self.unseen(source, [key])

    def mark_seen(self, source: str, keys: Iterable[str]) -> None:
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO seen (source, key, first_seen) VALUES (?, ?, ?)",
                [(source, k, now) for k in keys],
            )

    def seen_count(self, source: str) -> int:
        return self._db.execute("SELECT count(*) FROM seen WHERE source=?", (source,)).fetchone()[0]

    # conditional GET validators
    def validators(self, url: str) -> tuple[str | None, str | None]:
        row = self._db.execute("SELECT etag, last_modified FROM validators WHERE url=?", (url,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self._db.execute(
            "INSERT INTO validators (url, etag, last_modified, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (url) DO UPDATE SET etag=excluded.etag, last_modified=excluded.last_modified, "
            "updated=excluded.updated",
            (url, etag, last_modified, time.time()),
        )

    # ticker threads
    def thread_of(self, source: str, item_id: str) -> str | None:
        row = self._db.execute("SELECT thread_id FROM threads WHERE source=? AND item_id=?", (source, item_id)).fetchone()
        return row[0] if row else None

    def remember_threads(self, source: str, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """rows: (item_id, thread_id, attribution key, published_at iso)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO threads (source, item_id, thread_id, attribution, published_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(source, *r) for r in rows],
            )

    def prune(self, max_age_s: float) -> int:
        """Forget seen keys and ticker threads older than ``max_age_s``; returns the rows removed.

        Keeps the file bounded. An item older than that which a feed still lists is
        emitted again with its stable id: an upsert downstream, not a duplicate.
        """
        from datetime import datetime

        cutoff = time.time() - max_age_s
        cutoff_iso = datetime.fromtimestamp(cutoff, tz=UTC).isoformat()
        with self._db:
            self._db.execute("BEGIN")
            removed = self._db.execute("DELETE FROM seen WHERE first_seen < ?", (cutoff,)).rowcount
            removed += self._db.execute("DELETE FROM threads WHERE published_at < ?", (cutoff_iso,)).rowcount
        return removed

    # replay checkpoints
    def checkpoint(self, name: str) -> int:
        row = self._db.execute("SELECT position FROM checkpoints WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, name: str, position: int) -> None:
        self._db.execute(
            "INSERT INTO checkpoints (name, position, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position=excluded.position, updated=excluded.updated",
            (name, position, time.time()),
        )

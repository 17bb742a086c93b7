"""Where the sink writes: SQLite for a laptop, PostgreSQL for production.

One base (:mod:`.base`: table layout, rows, SQL) and one module per backend.
Pick a store by URL with :func:`open_store`:

* ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite``
* ``postgresql://user@host:5432/db`` (also ``postgres://``), optionally with
  ``?schema=NAME`` to keep the tables in their own schema (created if missing).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from newsstream.sink.stores.base import (
    Store,
    StoredEvent,
    StoryTombstone,
    is_data_error,
    row_id,
    rows_by_table,
    table_for,
)
from newsstream.sink.stores.postgres import PostgresStore, parse_postgres_url
from newsstream.sink.stores.queries import StoreSummary
from newsstream.sink.stores.sqlite import SQLiteStore

__all__ = [
    "PostgresStore", "SQLiteStore", "Store", "StoreSummary", "StoredEvent", "StoryTombstone", "is_data_error",
    "open_store",
    "parse_postgres_url", "redact_url", "row_id", "rows_by_table", "table_for",
]

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

"""Where the sink writes: SQLite for a laptop, PostgreSQL for production.

One base (:mod:`.base`: table layout, rows, SQL) and one module per backend.
Pick a store by URL with :func:`open_store`:

* ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite``
* ``postgresql://user@host:5432/db`` (also ``postgres://``), optionally with
  ``?schema=NAME`` to keep the tables in their own schema (created if missing).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from newsstream.errors import ConfigError
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
    "PostgresStore", "SQLiteStore", "Store", "StoreSummary", "StoreUrlError", "StoredEvent", "StoryTombstone",
    "is_data_error", "open_store",
    "parse_postgres_url", "redact_url", "row_id", "rows_by_table", "table_for",
]

class StoreUrlError(ConfigError):
    """A store URL newsstream cannot use; the message names the flag and the variable."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} (--store or NEWSSTREAM_STORE_URL: sqlite:///PATH or postgresql://USER@HOST/DB)")


def open_store(url: str) -> Store:
    """A store for ``url`` (not yet connected: call ``connect()`` then ``migrate()``).

    A URL it cannot use raises :class:`StoreUrlError` before anything is opened."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreUrlError(f"store URL {redact_url(url)!r} has no scheme")
    scheme = scheme.lower()
    if scheme == "sqlite":
        # sqlite:///rel/path -> "rel/path"; sqlite:////abs/path -> "/abs/path"
        if not rest.startswith("/"):
            raise StoreUrlError(f"SQLite URL {url!r} needs three slashes before a path")
        path = rest[1:].split("?", 1)[0]
        if not path:
            raise StoreUrlError(f"SQLite URL {url!r} has no path")
        return SQLiteStore(path)
    if scheme in ("postgresql", "postgres"):
        try:
            return PostgresStore(url)
        except ValueError as exc:
            raise StoreUrlError(f"PostgreSQL URL {redact_url(url)!r}: {exc}") from None
    raise StoreUrlError(f"unsupported store URL scheme {scheme!r}")


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))

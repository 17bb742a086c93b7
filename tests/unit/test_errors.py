"""The exception hierarchy: bad data becomes a dead letter, a bug in newsstream crashes, an outage is retried."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from newsstream.contract import wire
from newsstream.errors import ConfigError, DataError, InfrastructureError, NewsstreamError, is_programming_error
from newsstream.ingest.sources.http import FetchError
from newsstream.ingest.sources.registry import RegistryError
from newsstream.ingest.sources.ticker import TickerFormatError
from newsstream.platform.broker import BrokerError
from newsstream.platform.settings import Settings
from newsstream.sink import service as sink_service
from newsstream.sink.stores import is_data_error


def test_package_exceptions_sit_in_one_hierarchy() -> None:
    assert issubclass(RegistryError, ConfigError) and issubclass(BrokerError, InfrastructureError)
    assert issubclass(FetchError, InfrastructureError) and issubclass(TickerFormatError, DataError)
    assert all(issubclass(c, NewsstreamError) for c in (ConfigError, DataError, InfrastructureError))


def test_a_data_error_names_its_dead_letter_reason() -> None:
    letter = wire.dead_letter_for(b"{}", TickerFormatError("bad_shape", "no lines"), stage="ingest")
    assert letter.reason == "bad_shape"


def test_only_driver_data_errors_count_as_bad_data() -> None:
    assert is_data_error(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert is_data_error(DataError("bad row"))
    for bug in (TypeError("unhashable"), ValueError("bad literal"), AttributeError("x")):
        assert not is_data_error(bug)
    assert is_programming_error(TypeError("x")) and not is_programming_error(sqlite3.OperationalError("locked"))


class _Store:
    """A store whose write fails as told; records what reached it."""

    kind = "stub"

    def __init__(self, exc: BaseException) -> None:
        self.exc, self.calls = exc, 0

    async def upsert(self, batch: object) -> None:
        self.calls += 1
        raise self.exc


async def _write_with(store: _Store, tmp_path) -> list[object]:  # type: ignore[no-untyped-def]
    sink = sink_service._Sink(Settings(store_url=f"sqlite:///{tmp_path}/s.sqlite"), asyncio.Event())
    sink.store = store  # type: ignore[assignment]
    rejected: list[object] = []

    async def reject(event: object, exc: BaseException) -> None:
        rejected.append(event)

    sink.reject = reject  # type: ignore[method-assign]
    events = [wire.dead_letter(b"x", stage="test", reason="invalid_json", error="e", input_ref=str(i)) for i in range(3)]
    await sink.write(events)
    return rejected


async def test_a_bug_in_the_store_code_crashes_the_sink_instead_of_dead_lettering(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = _Store(TypeError("'NoneType' object is not subscriptable"))
    with pytest.raises(TypeError):
        await _write_with(store, tmp_path)
    assert store.calls == 1  # neither retried nor split into dead letters


async def test_rows_the_database_rejects_become_dead_letters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = _Store(sqlite3.IntegrityError("CHECK constraint failed"))
    assert len(await _write_with(store, tmp_path)) == 3  # split down to each row, each rejected

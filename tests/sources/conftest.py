from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.server import FixtureServer


@pytest.fixture
def site() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.stop()

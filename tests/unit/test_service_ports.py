"""Each service has its own default metrics port, so a worker, a sink and an ingest server share a host
(issue 15, item 13). Before, all three asked for 9300 and the second one died."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from newsstream.platform.settings import DEFAULT_METRICS_PORTS, Settings


class _Asked(Exception):
    """Raised by the stand-in health server: the port the service asked for is all the test needs."""


def _record_port(monkeypatch: pytest.MonkeyPatch, module: Any, asked: list[tuple[str, int]]) -> None:
    async def start_health_server(service: str, host: str, port: int, ready: Any = None) -> Any:
        asked.append((service, port))
        raise _Asked

    monkeypatch.setattr(module, "start_health_server", start_health_server)


def _ports_asked(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Any) -> dict[str, int]:
    from newsstream.ingest import service as ingest_service
    from newsstream.ingest.sources.registry import Registry
    from newsstream.sink import service as sink_service
    from newsstream.worker import app as worker_app

    asked: list[tuple[str, int]] = []
    for module in (worker_app, sink_service, ingest_service):
        _record_port(monkeypatch, module, asked)
    with pytest.raises(_Asked):
        worker_app.run_worker(settings.model_copy(update={"worker_datadir": str(tmp_path / "w")}))
    with pytest.raises(_Asked):
        asyncio.run(sink_service.run_sink(settings.model_copy(update={"store_url": f"sqlite:///{tmp_path}/s.sqlite"})))
    registry = Registry.model_validate({"sources": [], "state": str(tmp_path / "state.sqlite")})
    with pytest.raises(_Asked):
        asyncio.run(ingest_service.serve(settings, registry, poll=True, push=False, metrics=True, stop=asyncio.Event()))
    return dict(asked)


def test_worker_sink_and_ingest_default_to_their_own_ports(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("NEWSSTREAM_METRICS_PORT", raising=False)
    assert _ports_asked(monkeypatch, Settings(), tmp_path) == {"worker": 9300, "sink": 9301, "ingest": 9302}
    assert DEFAULT_METRICS_PORTS == {"worker": 9300, "sink": 9301, "ingest": 9302}


def test_newsstream_metrics_port_overrides_every_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("NEWSSTREAM_METRICS_PORT", "9400")
    assert set(_ports_asked(monkeypatch, Settings(), tmp_path).values()) == {9400}


async def test_the_image_liveness_check_finds_the_service_on_its_port() -> None:
    """deploy/Dockerfile's HEALTHCHECK: ``python -m newsstream.platform.health``."""
    import os
    import sys

    from newsstream.platform.broker import free_port
    from newsstream.platform.health import start_health_server

    port = free_port()

    async def check() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "newsstream.platform.health", env={**os.environ, "NEWSSTREAM_METRICS_PORT": str(port)})
        return await proc.wait()

    assert await check() == 1  # nothing listening
    runner = await start_health_server("sink", "127.0.0.1", port)
    try:
        assert await check() == 0
    finally:
        await runner.cleanup()


def test_newsstream_broker_listens_where_the_other_commands_look() -> None:
    from newsstream.platform.broker import bootstrap_port

    assert bootstrap_port("localhost:9092") == 9092
    assert bootstrap_port("127.0.0.1:19092,127.0.0.1:29092") == 19092
    assert bootstrap_port("kafka") == 9092 and bootstrap_port("[::1]:9093") == 9093


def test_free_ports_are_outside_the_ephemeral_range() -> None:
    """An outgoing connection takes its local port from the ephemeral range; a
    listener's port picked there could be taken before the listener binds it."""
    import socket

    from newsstream.platform.broker import EPHEMERAL_PORTS, free_port, listen_port_range

    low, high = (int(p) for p in EPHEMERAL_PORTS.read_text().split())
    assert listen_port_range() is not None
    ports = {free_port() for _ in range(20)}
    assert all(not low <= p <= high for p in ports)
    assert len(ports) > 1  # picked at random: two services asking at once get different ports
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # and free

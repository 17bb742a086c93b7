"""The HTTP endpoints every service serves: ``/metrics``, ``/healthz`` (alive) and ``/readyz`` (can do work).

``python -m newsstream.platform.health`` is the container image's liveness
check: exit 0 when ``/healthz`` answers on ``NEWSSTREAM_METRICS_PORT`` or, when
that is unset, on any service's default port (one service runs per container).
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.request
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsstream.errors import ConfigError
from newsstream.platform.metrics import SERVICE_UP
from newsstream.platform.settings import DEFAULT_METRICS_PORTS

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[bool] | bool]


async def _call(check: ReadyCheck) -> bool:
    result = check()
    if isinstance(result, Awaitable):
        result = await result
    return bool(result)


def health_app(service: str, ready: ReadyCheck | None = None) -> web.Application:
    """An aiohttp app with /metrics, /healthz (process alive) and /readyz (can do work)."""

    async def readiness() -> bool:
        try:
            ok = True if ready is None else await _call(ready)
        except Exception:  # a failing check means "not ready", never a 500 that hides the answer
            log.warning("readiness check of %s failed", service, exc_info=True)
            ok = False
        SERVICE_UP.labels(service).set(1 if ok else 0)
        return ok

    async def metrics(_: web.Request) -> web.Response:
        # Readiness is evaluated on every scrape too: otherwise newsstream_service_ready
        # would only move when something polls /readyz (compose and Prometheus don't).
        await readiness()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        ok = await readiness()
        return web.json_response({"ready": ok, "service": service}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_health_server(
    service: str, host: str, port: int, ready: ReadyCheck | None = None
) -> web.AppRunner:
    """Start serving in the running event loop; call ``await runner.cleanup()`` to stop."""
    # Created before the first scrape so that the dashboard shows the service as
    # not ready (0) rather than absent until someone polls /readyz.
    SERVICE_UP.labels(service).set(0)
    runner = web.AppRunner(health_app(service, ready), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"cannot serve {service} metrics on {host}:{port} ({exc.strerror or exc}): "
            "pass --metrics-port PORT or set NEWSSTREAM_METRICS_PORT"
        ) from None
    return runner


def _answers(host: str, port: int, path: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout_s) as response:
            return response.status == 200
    except OSError:
        return False


def alive(ports: list[int], host: str = "127.0.0.1", timeout_s: float = 1.0) -> bool:
    """True when ``/healthz`` answers 200 on one of ``ports``."""
    return any(_answers(host, port, "/healthz", timeout_s) for port in ports)


def ready(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> bool:
    """True when the service on ``port`` answers ``/readyz`` with 200 (it can do work)."""
    return _answers(host, port, "/readyz", timeout_s)


if __name__ == "__main__":
    override = os.environ.get("NEWSSTREAM_METRICS_PORT")
    sys.exit(0 if alive([int(override)] if override else list(DEFAULT_METRICS_PORTS.values())) else 1)

"""Prometheus metrics and the /metrics, /healthz, /readyz HTTP endpoints.

Labels are bounded sets (service, topic, reason, kind): never item ids or URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

ITEMS_IN = Counter("newsstream_items_in_total", "Items read by a service", ["service", "topic"])
ITEMS_OUT = Counter("newsstream_items_out_total", "Items written by a service", ["service", "topic"])
DEAD_LETTERS = Counter(
    "newsstream_dead_letters_total", "Items sent to the dead-letter topic", ["service", "topic", "reason"]
)
DUPLICATES = Counter("newsstream_duplicates_total", "Items found to duplicate an earlier item", ["service", "topic", "kind"])
PROCESSING_SECONDS = Histogram(
    "newsstream_processing_seconds",
    "Time spent processing one batch of items, per stage",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SINK_WRITES = Counter("newsstream_sink_rows_written_total", "Rows upserted into the store", ["store", "table"])
SINK_BATCH_SIZE = Histogram(
    "newsstream_sink_batch_size", "Items per sink write batch", ["store"], buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000)
)
SERVICE_UP = Gauge("newsstream_service_ready", "1 when the service is connected and processing", ["service"])

ReadyCheck = Callable[[], Awaitable[bool] | bool]


async def _call(check: ReadyCheck) -> bool:
    result = check()
    if isinstance(result, Awaitable):
        result = await result
    return bool(result)


def health_app(service: str, ready: ReadyCheck | None = None) -> web.Application:
    """An aiohttp app with /metrics, /healthz (process alive) and /readyz (can do work)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        ok = True if ready is None else await _call(ready)
        SERVICE_UP.labels(service).set(1 if ok else 0)
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
    runner = web.AppRunner(health_app(service, ready), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

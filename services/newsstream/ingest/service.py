"""The ingest service's composition root: pollers, the push endpoint and archive replay on one producer.

The command line (:mod:`newsstream.cli.ingest`) parses flags and calls these;
they wire the source registry, the HTTP fetcher, the source state and the
Kafka producer together, run until stopped, and return an exit code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from newsstream.contract import wire
from newsstream.errors import ConfigError
from newsstream.ingest.producer import SERVICE, RawEventProducer
from newsstream.ingest.sources.archive import (
    ReplayReport,
    checkpoint_name,
    input_files,
    replay,
)
from newsstream.ingest.sources.base import Source
from newsstream.ingest.sources.http import Fetcher
from newsstream.ingest.sources.push import push_app
from newsstream.ingest.sources.registry import Registry, RegistryError
from newsstream.ingest.sources.runner import Poller, PollError, SourceRunner
from newsstream.ingest.sources.state import SourceState
from newsstream.platform.health import start_health_server
from newsstream.platform.settings import Settings
from newsstream.text.wording import counted


def _say(text: str) -> None:
    """A line for the person at the terminal (summaries, errors), on stderr."""
    print(text, file=sys.stderr, flush=True)


def fetcher_for(registry: Registry | None = None, **overrides: object) -> Fetcher:
    """An HTTP fetcher with the registry's fetch policy (or the defaults), ``overrides`` on top."""
    kwargs: dict[str, object] = {}
    if registry is not None:
        f = registry.fetch
        kwargs = dict(user_agent=f.user_agent, timeout_s=f.timeout_s, per_host_concurrency=f.per_host_concurrency,
                      max_bytes=f.max_bytes, max_redirects=f.max_redirects, respect_robots=f.respect_robots)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return Fetcher(**kwargs)  # type: ignore[arg-type]


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (a graceful end: pending events are flushed)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass


async def dry_run(
    url: str, *, kind: str = "auto", source: str | None = None, tz: str = "UTC", language: str | None = None,
    follow: bool = True, respect_robots: bool = True, timeout_s: float = 20.0, out=None,  # type: ignore[no-untyped-def]
) -> tuple[int, int, str | None]:
    """Fetch once and write the raw events as JSON lines to ``out``. Returns (events, dead letters, error)."""
    out = out or sys.stdout.buffer
    name = source or (urlsplit(url).hostname or "fetch")
    src = Source(name=name, kind=kind if kind != "auto" else "page", url=url, language=language, tz=ZoneInfo(tz),
                 follow=follow)
    async with fetcher_for(timeout_s=timeout_s, respect_robots=respect_robots) as fetcher:
        try:
            outcome = await Poller(fetcher, page_attempts=1).poll(src, kind=kind)
        except PollError as exc:
            return 0, 0, str(exc)
    for event in outcome.events:
        out.write(wire.dumps(event) + b"\n")
    for letter in outcome.dead_letters:
        _say(f"dead letter: {letter.input_ref}: {letter.reason}: {letter.error[:200]}")
    for k, n in sorted(outcome.errors.items()):
        _say(f"error: {k} x{n}")
    for k, n in sorted(outcome.cleaned.items()):
        _say(f"cleaned: {k} x{n}")
    return len(outcome.events), len(outcome.dead_letters), None


async def check_sources(registry: Registry, *, try_sources: bool = True, environ=None) -> tuple[list[tuple[str, ...]], bool]:  # type: ignore[no-untyped-def]
    """Rows for the ``sources check`` table and whether any source failed."""
    rows: list[tuple[str, ...]] = []
    failed = False
    async with fetcher_for(registry) as fetcher:
        poller = Poller(fetcher, page_attempts=1)

        async def one(cfg):  # type: ignore[no-untyped-def]
            base = (cfg.name, cfg.kind, cfg.url, cfg.tz)
            if not cfg.enabled:
                return (*base, "disabled", "", "", ""), False
            try:
                src = cfg.to_source(environ)
            except RegistryError as exc:
                return (*base, "config error", "", "", str(exc)), True
            if not try_sources:
                return (*base, "valid", "", "", ""), False
            started = time.monotonic()
            try:
                out = await poller.poll(src)
            except PollError as exc:
                return (*base, "FAILED", "", f"{time.monotonic() - started:.2f}s", str(exc)[:120]), True
            took = f"{time.monotonic() - started:.2f}s"
            detail = ", ".join([f"{k} x{n}" for k, n in sorted(out.errors.items())]
                               + [f"cleaned {k} x{n}" for k, n in sorted(out.cleaned.items())])
            status = "ok" if out.events else ("dead letters" if out.dead_letters else "ok (no items)")
            return (*base, status, str(len(out.events)), took, detail[:120]), not out.events and bool(out.dead_letters)

        for row, bad in await asyncio.gather(*(one(c) for c in registry.sources)):
            rows.append(row)
            failed = failed or bad
    if registry.push.tokens:
        missing = [t.token_env for t in registry.push.tokens if not (environ or os.environ).get(t.token_env)]
        rows.append(("push", "push", f"{registry.push.host}:{registry.push.port}", "", "config error" if missing else "valid",
                     counted(len(registry.push.tokens), "token"), "", f"unset: {', '.join(missing)}" if missing else ""))
        failed = failed or bool(missing)
    return rows, failed


async def serve(settings: Settings, registry: Registry, *, state: Path | None = None, poll: bool = True, push: bool = True,  # type: ignore[no-untyped-def]
                once: bool = False, host: str | None = None, port: int | None = None, metrics: bool = False,
                stop: asyncio.Event | None = None, environ=None) -> int:
    """Run pollers and/or the push endpoint on one producer until ``stop`` (or SIGINT/SIGTERM)."""
    try:
        sources = registry.enabled_sources(environ) if poll else []
        push_config = registry.push.to_config(environ) if push else None
    except RegistryError as exc:
        _say(f"error: {exc}")
        return 2
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    runners: list[web.AppRunner] = []
    producing = False
    try:
        if metrics:
            # Health first: /healthz answers (and /readyz says "not ready") while Kafka is awaited.
            runners.append(await start_health_server(SERVICE, settings.metrics_host, settings.metrics_port_for(SERVICE),
                                                     lambda: producing))
        with SourceState(state or registry.state) as st:
            st.prune(registry.seen_retention_days * 86400)
            async with RawEventProducer(settings) as producer, fetcher_for(registry) as fetcher:
                producing = True
                if push_config is not None:
                    runner = web.AppRunner(push_app(producer, push_config), access_log=None)
                    runners.append(runner)
                    await runner.setup()
                    push_host, push_port = host or registry.push.host, port if port is not None else registry.push.port
                    try:
                        await web.TCPSite(runner, push_host, push_port).start()
                    except OSError as exc:
                        raise ConfigError(f"cannot listen for pushes on {push_host}:{push_port} "
                                          f"({exc.strerror or exc}): pass --port PORT") from None
                source_runner = SourceRunner(sources, fetcher=fetcher, sink=producer, state=st,
                                             max_backoff_s=registry.fetch.max_backoff_s)
                if once:
                    results = await source_runner.run_once()
                    failed = [name for name, r in results.items() if r is None]
                    _say(producer.report.summary())
                    for name in failed:
                        _say(f"  source {name} failed: {source_runner.last_error.get(name)}")
                    return 1 if failed else 0
                tasks = [asyncio.create_task(source_runner.run(stop))] if sources else []
                await stop.wait()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        producing = False
        for r in runners:
            await r.cleanup()
    _say(producer.report.summary())
    return 0


async def run_replay(settings: Settings, paths: list[Path], *, state: Path, fresh: bool = False, rate: float | None = None,  # type: ignore[no-untyped-def]
                     progress: bool = False, source: str | None = None, tz: ZoneInfo = ZoneInfo("UTC")):
    report = ReplayReport()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        try:  # SIGTERM (and SIGINT) cancel the run: the pending events are flushed and the position saved
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
    with SourceState(state) as st:
        if fresh:
            for f in input_files(paths):
                st.set_checkpoint(checkpoint_name(f), 0)
        async with RawEventProducer(settings) as producer:
            try:
                await replay(paths, producer, st, rate=rate, progress=progress, source=source, tz=tz, report=report)
            except asyncio.CancelledError:
                report.interrupted = True
    return report

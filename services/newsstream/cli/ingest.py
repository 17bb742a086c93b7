"""Commands for the real-source producers (issue 3), added to the ``newsstream`` app by
``register(app, ingest_app)`` in :mod:`newsstream.cli`:

* ``newsstream fetch URL``          dry run, no Kafka: the raw events a page, feed or ticker endpoint gives
* ``newsstream sources check``      validate the registry and try every source once (table)
* ``newsstream ingest feeds``       poll every registry source (feeds, pages, tickers) onto the raw topics
* ``newsstream ingest push``        the HTTP push endpoint
* ``newsstream ingest serve``       both, plus /metrics
* ``newsstream ingest dir PATH...`` replay JSONL files / page directories (rate limit, progress, resume)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers host:port (env KAFKA_BOOTSTRAP_SERVERS)."),
]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Source registry (TOML).", exists=True, dir_okay=False)]


def _settings(**overrides: object):  # type: ignore[no-untyped-def]
    from newsstream.platform.settings import load_settings
    from newsstream.platform.logs import configure_logging

    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _load(config: Path):  # type: ignore[no-untyped-def]
    from newsstream.ingest.sources.registry import RegistryError, load_registry

    try:
        return load_registry(config)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


def _fetcher(registry=None, **overrides: object):  # type: ignore[no-untyped-def]
    from newsstream.ingest.sources.http import Fetcher

    kwargs: dict[str, object] = {}
    if registry is not None:
        f = registry.fetch
        kwargs = dict(user_agent=f.user_agent, timeout_s=f.timeout_s, per_host_concurrency=f.per_host_concurrency,
                      max_bytes=f.max_bytes, max_redirects=f.max_redirects, respect_robots=f.respect_robots)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return Fetcher(**kwargs)  # type: ignore[arg-type]


def _install_stop(stop: asyncio.Event) -> None:
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
    from urllib.parse import urlsplit

    from newsstream.contract import wire
    from newsstream.ingest.sources.base import Source
    from newsstream.ingest.sources.runner import Poller, PollError

    out = out or sys.stdout.buffer
    name = source or (urlsplit(url).hostname or "fetch")
    src = Source(name=name, kind=kind if kind != "auto" else "page", url=url, language=language, tz=ZoneInfo(tz),
                 follow=follow)
    async with _fetcher(timeout_s=timeout_s, respect_robots=respect_robots) as fetcher:
        try:
            outcome = await Poller(fetcher, page_attempts=1).poll(src, kind=kind)
        except PollError as exc:
            return 0, 0, str(exc)
    for event in outcome.events:
        out.write(wire.dumps(event) + b"\n")
    for letter in outcome.dead_letters:
        typer.echo(f"dead letter: {letter.input_ref}: {letter.reason}: {letter.error[:200]}", err=True)
    for k, n in sorted(outcome.errors.items()):
        typer.echo(f"error: {k} x{n}", err=True)
    for k, n in sorted(outcome.cleaned.items()):
        typer.echo(f"cleaned: {k} x{n}", err=True)
    return len(outcome.events), len(outcome.dead_letters), None


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add the source commands to the ``newsstream`` app and its ``ingest`` group."""
    sources_app = typer.Typer(help="The source registry (feeds, pages, ticker endpoints, push tokens).",
                              no_args_is_help=True)
    app.add_typer(sources_app, name="sources")

    @app.command("fetch")
    def fetch(
        url: Annotated[str, typer.Argument(help="Page, feed or ticker endpoint URL.")],
        kind: Annotated[str, typer.Option(help="auto, page, feed or ticker.")] = "auto",
        source: Annotated[str | None, typer.Option(help="Source name in the events (default: the host).")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of ticker clock times.")] = "UTC",
        language: Annotated[str | None, typer.Option(help="Language to declare when the source does not.")] = None,
        no_follow: Annotated[bool, typer.Option("--no-follow", help="Feeds: use the entries' own text, do not fetch the linked pages.")] = False,
        ignore_robots: Annotated[bool, typer.Option("--ignore-robots", help="Do not consult robots.txt.")] = False,
        timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 20.0,
    ) -> None:
        """Dry run, no Kafka: print the raw events one source would emit, one JSON object per line."""
        if kind not in ("auto", "page", "feed", "ticker"):
            raise typer.BadParameter("kind must be auto, page, feed or ticker")
        try:
            ZoneInfo(tz)
        except Exception:
            raise typer.BadParameter(f"unknown time zone {tz!r}") from None
        n, dead, error = asyncio.run(dry_run(
            url, kind=kind, source=source, tz=tz, language=language, follow=not no_follow,
            respect_robots=not ignore_robots, timeout_s=timeout,
        ))
        sys.stdout.flush()
        if error:
            typer.echo(f"error: {error}", err=True)
            raise SystemExit(1)
        typer.echo(f"{n} event(s), {dead} dead letter(s)", err=True)

    @sources_app.command("check")
    def sources_check(
        config: ConfigOpt,
        try_sources: Annotated[bool, typer.Option("--try/--no-try", help="Fetch every source once.")] = True,
    ) -> None:
        """Validate the registry and try every source once (no Kafka); print a table. Exit 1 on any failure."""
        from rich.console import Console
        from rich.table import Table

        registry = _load(config)
        rows, failed = asyncio.run(check_sources(registry, try_sources=try_sources))
        table = Table(title=f"sources in {config}")
        for col in ("source", "kind", "url", "tz", "status", "events", "time", "detail"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        Console(width=200).print(table)
        raise SystemExit(1 if failed else 0)

    @ingest_app.command("feeds")
    def ingest_feeds(
        config: ConfigOpt,
        once: Annotated[bool, typer.Option("--once", help="Poll every source once and exit.")] = False,
        state: Annotated[Path | None, typer.Option(help="State file (default: the registry's).")] = None,
        bootstrap: Bootstrap = None,
        metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve /metrics on this port.")] = None,
    ) -> None:
        """Poll every enabled source of the registry onto the raw topics (until Ctrl-C, or --once)."""
        settings = _settings(kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port)
        registry = _load(config)
        raise SystemExit(asyncio.run(serve(settings, registry, state=state, poll=True, push=False, once=once,
                                           metrics=metrics_port is not None)))

    @ingest_app.command("push")
    def ingest_push(
        config: ConfigOpt,
        host: Annotated[str | None, typer.Option(help="Listen address (default: the registry's).")] = None,
        port: Annotated[int | None, typer.Option(help="Listen port (default: the registry's).")] = None,
        bootstrap: Bootstrap = None,
    ) -> None:
        """Run the HTTP push endpoint (POST /v1/articles, /v1/ticker; GET /openapi.json)."""
        settings = _settings(kafka_bootstrap_servers=bootstrap)
        registry = _load(config)
        raise SystemExit(asyncio.run(serve(settings, registry, poll=False, push=True, host=host, port=port)))

    @ingest_app.command("serve")
    def ingest_serve(
        config: ConfigOpt,
        host: Annotated[str | None, typer.Option(help="Push endpoint address.")] = None,
        port: Annotated[int | None, typer.Option(help="Push endpoint port.")] = None,
        state: Annotated[Path | None, typer.Option(help="State file (default: the registry's).")] = None,
        bootstrap: Bootstrap = None,
        metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Port of /metrics, /healthz.")] = None,
    ) -> None:
        """Poll the registry's sources and run the push endpoint, with /metrics."""
        settings = _settings(kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port)
        registry = _load(config)
        raise SystemExit(asyncio.run(serve(settings, registry, state=state, poll=True, push=True, host=host,
                                           port=port, metrics=True)))

    @ingest_app.command("dir")
    def ingest_dir(
        paths: Annotated[list[Path], typer.Argument(exists=True, help="JSONL files, page files or directories of them.")],
        rate: Annotated[float | None, typer.Option(help="At most this many inputs per second.")] = None,
        state: Annotated[Path, typer.Option(help="Resume state (SQLite).")] = Path(".newsstream/replay.sqlite"),
        fresh: Annotated[bool, typer.Option("--fresh", help="Ignore earlier progress and replay from the start.")] = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar (default: on a TTY).")] = sys.stderr.isatty(),
        source: Annotated[str | None, typer.Option(help="Source name for page files (default: file name).")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of page ticker clock times.")] = "UTC",
        bootstrap: Bootstrap = None,
        strict: Annotated[bool, typer.Option(help="Exit 1 when any input became a dead letter.")] = False,
    ) -> None:
        """Replay archives (JSONL and page files) onto the raw topics: rate limit, progress, resumable."""
        settings = _settings(kafka_bootstrap_servers=bootstrap)
        report = asyncio.run(run_replay(settings, paths, state=state, fresh=fresh, rate=rate, progress=progress,
                                        source=source, tz=ZoneInfo(tz)))
        typer.echo(report.summary(), err=True)
        if report.interrupted:
            raise SystemExit(130)
        raise SystemExit(1 if strict and report.dead_letters else 0)


async def check_sources(registry, *, try_sources: bool = True, environ=None) -> tuple[list[tuple[str, ...]], bool]:  # type: ignore[no-untyped-def]
    """Rows for the ``sources check`` table and whether any source failed."""
    from newsstream.ingest.sources.registry import RegistryError
    from newsstream.ingest.sources.runner import Poller, PollError

    rows: list[tuple[str, ...]] = []
    failed = False
    async with _fetcher(registry) as fetcher:
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
                     str(len(registry.push.tokens)) + " token(s)", "", f"unset: {', '.join(missing)}" if missing else ""))
        failed = failed or bool(missing)
    return rows, failed


async def serve(settings, registry, *, state: Path | None = None, poll: bool = True, push: bool = True,  # type: ignore[no-untyped-def]
                once: bool = False, host: str | None = None, port: int | None = None, metrics: bool = False,
                stop: asyncio.Event | None = None, environ=None) -> int:
    """Run pollers and/or the push endpoint on one producer until ``stop`` (or SIGINT/SIGTERM)."""
    from aiohttp import web
    from newsstream.platform.metrics import start_health_server
    from newsstream.ingest.producer import RawEventProducer
    from newsstream.ingest.sources.push import push_app
    from newsstream.ingest.sources.registry import RegistryError
    from newsstream.ingest.sources.runner import SourceRunner
    from newsstream.ingest.sources.state import SourceState

    try:
        sources = registry.enabled_sources(environ) if poll else []
        push_config = registry.push.to_config(environ) if push else None
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    if stop is None:
        stop = asyncio.Event()
        _install_stop(stop)
    runners: list[web.AppRunner] = []
    with SourceState(state or registry.state) as st:
        st.prune(registry.seen_retention_days * 86400)
        async with RawEventProducer(settings) as producer, _fetcher(registry) as fetcher:
            try:
                if metrics:
                    runners.append(await start_health_server("ingest", settings.metrics_host, settings.metrics_port))
                if push_config is not None:
                    runner = web.AppRunner(push_app(producer, push_config), access_log=None)
                    await runner.setup()
                    await web.TCPSite(runner, host or registry.push.host, port if port is not None else registry.push.port).start()
                    runners.append(runner)
                source_runner = SourceRunner(sources, fetcher=fetcher, sink=producer, state=st,
                                             max_backoff_s=registry.fetch.max_backoff_s)
                if once:
                    results = await source_runner.run_once()
                    failed = [name for name, r in results.items() if r is None]
                    typer.echo(producer.report.summary(), err=True)
                    for name in failed:
                        typer.echo(f"  source {name} failed: {source_runner.last_error.get(name)}", err=True)
                    return 1 if failed else 0
                tasks = [asyncio.create_task(source_runner.run(stop))] if sources else []
                await stop.wait()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for r in runners:
                    await r.cleanup()
    typer.echo(producer.report.summary(), err=True)
    return 0


async def run_replay(settings, paths: list[Path], *, state: Path, fresh: bool = False, rate: float | None = None,  # type: ignore[no-untyped-def]
                     progress: bool = False, source: str | None = None, tz: ZoneInfo = ZoneInfo("UTC")):
    from newsstream.ingest.producer import RawEventProducer
    from newsstream.ingest.sources.archive import (
        ReplayReport,
        checkpoint_name,
        input_files,
        replay,
    )
    from newsstream.ingest.sources.state import SourceState

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

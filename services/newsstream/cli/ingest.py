"""Input commands: parse and fetch (dry runs, no Kafka), the source registry, and ``ingest``.

The ``ingest`` group is the producer side: files, JSONL, feeds and pages
polled from the registry, the HTTP push endpoint, archive replay. The work is
done in :mod:`newsstream.ingest.service` and :mod:`newsstream.ingest.producer`;
this module parses flags and turns outcomes into exit codes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from newsstream.cli.common import Bootstrap, print_json, settings_from, time_zone
from newsstream.errors import DataError, InfrastructureError
from newsstream.ingest import service
from newsstream.ingest.sources.base import SOURCE_KINDS
from newsstream.ingest.sources.registry import Registry, RegistryError, load_registry
from newsstream.platform.settings import Settings
from newsstream.text.wording import counted

parse_app = typer.Typer(help="Offline parsing (no Kafka).", no_args_is_help=True)
ingest_app = typer.Typer(help="Produce raw events onto the raw topics.", no_args_is_help=True)
sources_app = typer.Typer(help="The source registry (feeds, pages, ticker endpoints, push tokens).", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Source registry (TOML).", exists=True, dir_okay=False)]


def load_registry_or_exit(config: Path) -> Registry:
    try:
        return load_registry(config)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


@parse_app.command("page")
def parse_page_cmd(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Split a raw page into its article and its breaking-news ticker; print JSON.

    The same input policy as ``ingest page``: what that command would make a
    dead letter (not UTF-8, nothing found) is an error here, exit 1."""
    from newsstream.ingest.events import page_text
    from newsstream.text.page import parse_page

    try:
        page = parse_page(page_text(file.read_bytes()))
    except DataError as exc:
        typer.echo(f"error: {file}: {exc.reason}: {exc}", err=True)
        raise SystemExit(1) from None
    print_json(page.model_dump())
    if not page.articles and not page.ticker:
        typer.echo(f"error: {file}: empty_page: no article text and no ticker lines found", err=True)
        raise SystemExit(1)


async def _run_ingest(settings: Settings, work: Callable[[object], Awaitable[None]]) -> int:
    from aiokafka.errors import KafkaError

    from newsstream.ingest.producer import RawEventProducer

    try:
        async with RawEventProducer(settings) as producer:
            await work(producer)  # type: ignore[operator]
    except KafkaError as exc:  # the broker went away or refused a delivery: nothing more can be sent
        raise InfrastructureError(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from None
    # The first dead letters were logged one by one as they happened; the rest are in the counts.
    typer.echo(producer.report.summary(), err=True)
    return producer.report.total_dead_letters


@ingest_app.command("page")
def ingest_page(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[str | None, typer.Option(help="Outlet name; defaults to the file name.")] = None,
    url: Annotated[str | None, typer.Option(help="Canonical URL of the page (one file only).")] = None,
    tz: Annotated[str, typer.Option(help="Time zone of the ticker's clock times.")] = "UTC",
    bootstrap: Bootstrap = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any input became a dead letter.")] = False,
) -> None:
    """Parse page files and emit their article and ticker lines as raw events."""
    if url and len(files) > 1:
        raise typer.BadParameter("--url names one page; give one file with it")
    settings = settings_from(kafka_bootstrap_servers=bootstrap)
    zone = time_zone(tz)

    async def work(producer: object) -> None:
        for file in files:
            await producer.ingest_page(file, source=source or file.stem, url=url, tz=zone)  # type: ignore[attr-defined]

    failed = asyncio.run(_run_ingest(settings, work))
    raise SystemExit(1 if strict and failed else 0)


@ingest_app.command("jsonl")
def ingest_jsonl(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tz: Annotated[str | None, typer.Option(
        help="Time zone of timestamps written without an offset (default: such a line is a dead letter).")] = None,
    bootstrap: Bootstrap = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any line became a dead letter.")] = False,
) -> None:
    """Emit every line of a JSONL file (raw articles and ticker lines) as a raw event."""
    settings = settings_from(kafka_bootstrap_servers=bootstrap)
    zone = time_zone(tz) if tz else None

    async def work(producer: object) -> None:
        await producer.ingest_jsonl(file, tz=zone)  # type: ignore[attr-defined]

    failed = asyncio.run(_run_ingest(settings, work))
    raise SystemExit(1 if strict and failed else 0)



def fetch(
    url: Annotated[str, typer.Argument(help="Page, feed or ticker endpoint URL.")],
    kind: Annotated[str, typer.Option(help=f"auto, {', '.join(SOURCE_KINDS)}.")] = "auto",
    source: Annotated[str | None, typer.Option(help="Source name in the events (default: the host).")] = None,
    tz: Annotated[str, typer.Option(help="Time zone of ticker clock times.")] = "UTC",
    language: Annotated[str | None, typer.Option(help="Language to declare when the source does not.")] = None,
    no_follow: Annotated[bool, typer.Option("--no-follow", help="Feeds: use the entries' own text, do not fetch the linked pages.")] = False,
    ignore_robots: Annotated[bool, typer.Option("--ignore-robots", help="Do not consult robots.txt.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 20.0,
) -> None:
    """Dry run, no Kafka: print the raw events one source would emit, one JSON object per line."""
    if kind != "auto" and kind not in SOURCE_KINDS:
        raise typer.BadParameter(f"kind must be auto, {', '.join(SOURCE_KINDS)}")
    time_zone(tz)
    n, dead, error = asyncio.run(service.dry_run(
        url, kind=kind, source=source, tz=tz, language=language, follow=not no_follow,
        respect_robots=not ignore_robots, timeout_s=timeout,
    ))
    sys.stdout.flush()
    if error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1)
    typer.echo(f"{counted(n, 'event')}, {counted(dead, 'dead letter')}", err=True)

@sources_app.command("check")
def sources_check(
    config: ConfigOpt,
    try_sources: Annotated[bool, typer.Option("--try/--no-try", help="Fetch every source once.")] = True,
) -> None:
    """Validate the registry and try every source once (no Kafka); print a table. Exit 1 on any failure."""
    from rich.console import Console
    from rich.table import Table

    registry = load_registry_or_exit(config)
    rows, failed = asyncio.run(service.check_sources(registry, try_sources=try_sources))
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
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Port of /metrics, /healthz (default 9302; with --once only when given).")] = None,
) -> None:
    """Poll every enabled source of the registry onto the raw topics (until Ctrl-C, or --once)."""
    settings = settings_from(kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port)
    registry = load_registry_or_exit(config)
    # A one-shot poll exits before any scrape: it takes a port only when asked to.
    raise SystemExit(asyncio.run(service.serve(settings, registry, state=state, poll=True, push=False, once=once,
                                       metrics=metrics_port is not None or not once)))

@ingest_app.command("push")
def ingest_push(
    config: ConfigOpt,
    host: Annotated[str | None, typer.Option(help="Listen address (default: the registry's).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: the registry's).")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Run the HTTP push endpoint (POST /v1/articles, /v1/ticker; GET /openapi.json)."""
    settings = settings_from(kafka_bootstrap_servers=bootstrap)
    registry = load_registry_or_exit(config)
    raise SystemExit(asyncio.run(service.serve(settings, registry, poll=False, push=True, host=host, port=port)))

@ingest_app.command("serve")
def ingest_serve(
    config: ConfigOpt,
    host: Annotated[str | None, typer.Option(help="Push endpoint address.")] = None,
    port: Annotated[int | None, typer.Option(help="Push endpoint port.")] = None,
    state: Annotated[Path | None, typer.Option(help="State file (default: the registry's).")] = None,
    bootstrap: Bootstrap = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Port of /metrics, /healthz (default 9302).")] = None,
) -> None:
    """Poll the registry's sources and run the push endpoint, with /metrics."""
    settings = settings_from(kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port)
    registry = load_registry_or_exit(config)
    raise SystemExit(asyncio.run(service.serve(settings, registry, state=state, poll=True, push=True, host=host,
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
    settings = settings_from(kafka_bootstrap_servers=bootstrap)
    report = asyncio.run(service.run_replay(settings, paths, state=state, fresh=fresh, rate=rate, progress=progress,
                                    source=source, tz=time_zone(tz)))
    typer.echo(report.summary(), err=True)
    if report.interrupted:
        raise SystemExit(130)
    raise SystemExit(1 if strict and report.dead_letters else 0)



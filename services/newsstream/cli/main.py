"""The ``newsstream`` command line: one entry point for every service and tool.

Every option also reads an environment variable (``NEWSSTREAM_<NAME>``, and
``KAFKA_BOOTSTRAP_SERVERS`` for the broker address); flags win.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional
from zoneinfo import ZoneInfo

import orjson
import typer

from newsstream.platform.settings import Settings, load_settings
from newsstream.platform.logs import configure_logging

app = typer.Typer(help="newsstream: news ingestion on Kafka — producers, enrichment worker, sinks.", no_args_is_help=True)
parse_app = typer.Typer(help="Offline parsing (no Kafka).", no_args_is_help=True)
ingest_app = typer.Typer(help="Produce raw events onto the raw topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the public topics.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure quality on labelled data (offline).", no_args_is_help=True)
app.add_typer(parse_app, name="parse")
app.add_typer(ingest_app, name="ingest")
app.add_typer(schemas_app, name="schemas")
app.add_typer(topics_app, name="topics")
app.add_typer(eval_app, name="eval")

# Source producers (feeds, pages, ticker feeds, push endpoint, replay): their own module.
from newsstream.cli.ingest import register as _register_sources  # noqa: E402

_register_sources(app, ingest_app)

# Quality evaluations: near-duplicates and stories.
from newsstream.evaluation.stream import register as _register_dedup_eval  # noqa: E402

_register_dedup_eval(eval_app)

# Quality evaluations: topics and entities.
from newsstream.evaluation.enrichment import register as _register_enrich_eval  # noqa: E402

_register_enrich_eval(eval_app)

Bootstrap = Annotated[
    Optional[str],
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers host:port (env KAFKA_BOOTSTRAP_SERVERS)."),
]
MetricsPort = Annotated[Optional[int], typer.Option("--metrics-port", help="Port of /metrics, /healthz, /readyz.")]
LogLevel = Annotated[Optional[str], typer.Option("--log-level", help="debug, info, warning, error.")]


def _settings(**overrides: object) -> Settings:
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _print_json(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) until Ctrl-C / SIGTERM."""
    from newsstream.platform.broker import EmbeddedBroker

    embedded = EmbeddedBroker(port=port).start()
    typer.echo(f"embedded broker listening on {embedded.bootstrap} (in-memory; Ctrl-C stops it)")

    class _Stop(Exception):
        pass

    def on_signal(signum: int, _frame: object) -> None:
        # Only raise here: stopping (which waits on the child) must happen
        # after the interrupted Popen.wait() has released its lock.
        raise _Stop

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        code = embedded.wait()
    except _Stop:
        code = 0
    finally:
        embedded.stop()
    raise SystemExit(code)


@parse_app.command("page")
def parse_page_cmd(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Split a raw page into its article and its breaking-news ticker; print JSON."""
    from newsstream.text.page import parse_page

    text = file.read_bytes().decode("utf-8", errors="replace")
    _print_json(parse_page(text).model_dump())


async def _run_ingest(settings: Settings, work: object) -> int:
    from aiokafka.errors import KafkaError

    from newsstream.ingest.producer import RawEventProducer

    try:
        async with RawEventProducer(settings) as producer:
            await work(producer)  # type: ignore[operator]
    except KafkaError as exc:
        typer.echo(f"error: Kafka at {settings.kafka_bootstrap_servers}: {exc}", err=True)
        raise SystemExit(2) from None
    typer.echo(producer.report.summary(), err=True)
    for ref in producer.report.dead_letter_refs[:20]:
        typer.echo(f"  dead letter: {ref}", err=True)
    return producer.report.total_dead_letters


@ingest_app.command("page")
def ingest_page(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[Optional[str], typer.Option(help="Outlet name; defaults to the file name.")] = None,
    url: Annotated[Optional[str], typer.Option(help="Canonical URL of the page (one file only).")] = None,
    tz: Annotated[str, typer.Option(help="Time zone of the ticker's clock times.")] = "UTC",
    bootstrap: Bootstrap = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any input became a dead letter.")] = False,
) -> None:
    """Parse page files and emit their article and ticker lines as raw events."""
    if url and len(files) > 1:
        raise typer.BadParameter("--url names one page; give one file with it")
    settings = _settings(kafka_bootstrap_servers=bootstrap)
    zone = ZoneInfo(tz)

    async def work(producer: object) -> None:
        for file in files:
            await producer.ingest_page(file, source=source or file.stem, url=url, tz=zone)  # type: ignore[attr-defined]

    failed = asyncio.run(_run_ingest(settings, work))
    raise SystemExit(1 if strict and failed else 0)


@ingest_app.command("jsonl")
def ingest_jsonl(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    bootstrap: Bootstrap = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any line became a dead letter.")] = False,
) -> None:
    """Emit every line of a JSONL file (raw articles and ticker lines) as a raw event."""
    settings = _settings(kafka_bootstrap_servers=bootstrap)

    async def work(producer: object) -> None:
        await producer.ingest_jsonl(file)  # type: ignore[attr-defined]

    failed = asyncio.run(_run_ingest(settings, work))
    raise SystemExit(1 if strict and failed else 0)


@app.command()
def worker(
    bootstrap: Bootstrap = None,
    metrics_port: MetricsPort = None,
    partitions: Annotated[Optional[int], typer.Option(help="Partitions of the topics it creates.")] = None,
    log_level: LogLevel = None,
) -> None:
    """Run the stream processor (faust): raw topics -> enrich, dedup -> enriched topics."""
    from newsstream.platform.kafka import require_bootstrap
    from newsstream.worker.app import run_worker

    settings = _settings(
        kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port, partitions=partitions, log_level=log_level
    )
    require_bootstrap(settings)
    run_worker(settings, loglevel=settings.log_level)


@app.command()
def sink(
    store: Annotated[Optional[str], typer.Option(help="sqlite:///PATH or postgresql://... (env NEWSSTREAM_STORE_URL).")] = None,
    bootstrap: Bootstrap = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
) -> None:
    """Run the sink: enriched topics and dead letters -> SQLite or PostgreSQL, idempotently."""
    from newsstream.platform.kafka import require_bootstrap
    from newsstream.sink.service import main as run_sink_main

    settings = _settings(kafka_bootstrap_servers=bootstrap, store_url=store, metrics_port=metrics_port, log_level=log_level)
    require_bootstrap(settings)
    run_sink_main(settings)


@app.command()
def demo(
    bootstrap: Bootstrap = None,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep broker, worker and sink up afterwards.")] = False,
    store: Annotated[Optional[str], typer.Option(help="Store URL; default a fresh SQLite file under .newsstream/demo/.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every item to be stored.")] = 90.0,
) -> None:
    """The whole pipeline on the embedded broker with bundled sample pages, then a summary."""
    from newsstream.cli.demo import run_demo

    raise SystemExit(run_demo(bootstrap=bootstrap, store_url=store, keep_running=keep_running, timeout=timeout))


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Directory to write the JSON Schema files to.")] = Path("schemas"),
) -> None:
    """Write the JSON Schema of every public event model into ``schemas/``."""
    from newsstream.contract.schemas import write_schemas

    for path in write_schemas(out):
        typer.echo(str(path))


@topics_app.command("create")
def topics_create(
    bootstrap: Bootstrap = None,
    partitions: Annotated[Optional[int], typer.Option(help="Partitions of raw and enriched topics.")] = None,
) -> None:
    """Create the pipeline's topics that do not exist yet (idempotent)."""
    from newsstream.platform.kafka import ensure_topics

    settings = _settings(kafka_bootstrap_servers=bootstrap, partitions=partitions)
    created = asyncio.run(ensure_topics(settings))
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


if __name__ == "__main__":  # pragma: no cover
    app()

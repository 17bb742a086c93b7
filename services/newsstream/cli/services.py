"""The deployables (``worker``, ``sink``) and the contract tools (``topics create``, ``schemas export``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from newsstream.cli.common import Bootstrap, LogLevel, MetricsPort, settings_from

schemas_app = typer.Typer(help="JSON Schemas of the public topics.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)


def worker(
    bootstrap: Bootstrap = None,
    metrics_port: MetricsPort = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of the topics it creates.")] = None,
    log_level: LogLevel = None,
) -> None:
    """Run the stream processor (faust): raw topics -> enrich, dedup -> enriched topics."""
    from newsstream.platform.kafka import require_bootstrap
    from newsstream.worker.app import run_worker

    settings = settings_from(
        kafka_bootstrap_servers=bootstrap, metrics_port=metrics_port, partitions=partitions, log_level=log_level
    )
    require_bootstrap(settings)
    run_worker(settings, loglevel=settings.log_level)


def sink(
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or postgresql://... (env NEWSSTREAM_STORE_URL).")] = None,
    bootstrap: Bootstrap = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
) -> None:
    """Run the sink: enriched topics and dead letters -> SQLite or PostgreSQL, idempotently."""
    from newsstream.platform.kafka import require_bootstrap
    from newsstream.sink.service import main as run_sink_main

    settings = settings_from(kafka_bootstrap_servers=bootstrap, store_url=store, metrics_port=metrics_port, log_level=log_level)
    require_bootstrap(settings)
    run_sink_main(settings)


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
    partitions: Annotated[int | None, typer.Option(help="Partitions of raw and enriched topics.")] = None,
) -> None:
    """Create the pipeline's topics that do not exist yet, the worker's internal and changelog topics included
    (idempotent); exit 2 when existing ones have other partition counts."""
    from newsstream.platform.kafka import ensure_topics
    from newsstream.worker.topology import every_topic_spec

    settings = settings_from(kafka_bootstrap_servers=bootstrap, partitions=partitions)
    created = asyncio.run(ensure_topics(settings, every_topic_spec(settings)))
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")

"""The ``newsstream`` command line: one command tree for every service and tool.

This is the composition root of the commands: each group lives in its own
module and is added here under a help panel (services, input and contract,
development tools, evaluation). Every option also reads an environment
variable (``NEWSSTREAM_<NAME>``, and ``KAFKA_BOOTSTRAP_SERVERS`` for the
broker address); flags win.
"""

from __future__ import annotations

import typer

from newsstream.cli import dev, eval, ingest, services
from newsstream.cli.common import DEVELOPMENT, EVALUATION, INPUT, SERVICES

app = typer.Typer(help="newsstream: news ingestion on Kafka — producers, enrichment worker, sinks.", no_args_is_help=True)

app.command(rich_help_panel=SERVICES)(services.worker)
app.command(rich_help_panel=SERVICES)(services.sink)
app.add_typer(ingest.ingest_app, name="ingest", rich_help_panel=SERVICES)
app.add_typer(services.topics_app, name="topics", rich_help_panel=INPUT)
app.add_typer(services.schemas_app, name="schemas", rich_help_panel=INPUT)
app.add_typer(ingest.sources_app, name="sources", rich_help_panel=INPUT)
app.command("fetch", rich_help_panel=INPUT)(ingest.fetch)
app.add_typer(ingest.parse_app, name="parse", rich_help_panel=INPUT)
app.command(rich_help_panel=DEVELOPMENT)(dev.broker)
app.command(rich_help_panel=DEVELOPMENT)(dev.demo)
app.add_typer(eval.eval_app, name="eval", rich_help_panel=EVALUATION)

if __name__ == "__main__":  # pragma: no cover
    app()

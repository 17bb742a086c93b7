"""The ``newsstream`` command line: one command tree for every service and tool.

This is the composition root of the commands: each group lives in its own
module and is added here under a help panel (services, input and contract,
development tools, evaluation). Every option also reads an environment
variable (``NEWSSTREAM_<NAME>``, and ``KAFKA_BOOTSTRAP_SERVERS`` for the
broker address); flags win.
"""

from __future__ import annotations

import sys

import typer

from newsstream.cli import dev, dlq, eval, ingest, services
from newsstream.cli.common import DEVELOPMENT, EVALUATION, INPUT, SERVICES
from newsstream.errors import NewsstreamError, exit_code_for

# pretty_exceptions off: a newsstream error is one line (below), a bug a plain traceback.
app = typer.Typer(help="newsstream: news ingestion on Kafka — producers, enrichment worker, sinks.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

app.command(rich_help_panel=SERVICES)(services.worker)
app.command(rich_help_panel=SERVICES)(services.sink)
app.add_typer(ingest.ingest_app, name="ingest", rich_help_panel=SERVICES)
app.add_typer(services.topics_app, name="topics", rich_help_panel=INPUT)
app.add_typer(services.schemas_app, name="schemas", rich_help_panel=INPUT)
app.add_typer(ingest.sources_app, name="sources", rich_help_panel=INPUT)
app.add_typer(dlq.dlq_app, name="dlq", rich_help_panel=INPUT)
app.command("fetch", rich_help_panel=INPUT)(ingest.fetch)
app.add_typer(ingest.parse_app, name="parse", rich_help_panel=INPUT)
app.command(rich_help_panel=DEVELOPMENT)(dev.broker)
app.command(rich_help_panel=DEVELOPMENT)(dev.samples)
app.command(rich_help_panel=DEVELOPMENT)(dev.demo)
app.add_typer(eval.eval_app, name="eval", rich_help_panel=EVALUATION)



def main() -> None:
    """The ``newsstream`` command: a configuration mistake or an absent dependency is one
    line on stderr and a fixed exit code (2 and 69), the same for every command."""
    try:
        app()
    except NewsstreamError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exit_code_for(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    main()

"""``newsstream dlq``: the dead-letter topic after the fact (the work is in :mod:`newsstream.dlq`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from newsstream.cli.common import Bootstrap, settings_from
from newsstream.contract.reasons import DEAD_LETTER_REASONS

dlq_app = typer.Typer(help="The dead-letter topic: re-drive dead letters once their cause is fixed.", no_args_is_help=True)

STAGES = ("ingest", "worker", "sink")


def _instant(value: str | None, flag: str) -> datetime | None:
    """An ISO 8601 date or time; UTC unless it carries an offset."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {value!r}", param_hint=flag) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _checked(values: list[str] | None, allowed: tuple[str, ...], flag: str) -> frozenset[str]:
    unknown = sorted(set(values or ()) - set(allowed))
    if unknown:
        raise typer.BadParameter(f"unknown value {', '.join(unknown)}; use one of: {', '.join(allowed)}", param_hint=flag)
    return frozenset(values or ())


@dlq_app.command("replay")
def replay(
    reason: Annotated[list[str] | None, typer.Option(help="Only this reason code (repeatable).")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="Only this stage: ingest, worker, sink (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="Failed at or after this time (ISO 8601, UTC unless an offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Failed before this time (ISO 8601, UTC unless an offset).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be re-published; publish nothing.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Re-publish the raw events of the selected dead letters to their raw topics, keyed by id.

    Run it once the cause is fixed: the items go through the pipeline again,
    and as every consumer is idempotent by id, running it twice changes
    nothing downstream. A dead letter whose payload was cut, or holds no raw
    event, is skipped and counted.
    """
    from newsstream.dlq.redrive import Selection
    from newsstream.dlq.service import replay as run_replay

    selection = Selection(
        reasons=_checked(reason, tuple(DEAD_LETTER_REASONS), "--reason"), stages=_checked(stage, STAGES, "--stage"),
        since=_instant(since, "--since"), until=_instant(until, "--until"),
    )
    settings = settings_from(kafka_bootstrap_servers=bootstrap)
    summary = asyncio.run(run_replay(settings, selection, dry_run=dry_run))
    for line in summary.lines(dry_run):
        typer.echo(line)

"""What every command shares: common options, settings with logging, JSON output, help panels."""

from __future__ import annotations

import sys
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer

from newsstream.platform.logs import configure_logging
from newsstream.platform.settings import Settings, load_settings

# Help panels of ``newsstream --help``: what runs in production, what feeds it,
# and the tools for development and measurement.
SERVICES = "Services"
INPUT = "Input and contract"
DEVELOPMENT = "Development tools"
EVALUATION = "Evaluation"

Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers host:port (env KAFKA_BOOTSTRAP_SERVERS)."),
]
MetricsPort = Annotated[int | None, typer.Option(
    "--metrics-port", help="Port of /metrics, /healthz, /readyz (default: worker 9300, sink 9301; env NEWSSTREAM_METRICS_PORT).")]
LogLevel = Annotated[str | None, typer.Option("--log-level", help="debug, info, warning, error.")]


def settings_from(**overrides: object) -> Settings:
    """Settings from the environment with the given flags on top; logging configured from them."""
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def print_json(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone, or a one-line error naming the flag."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {name!r} (an IANA name such as Asia/Beirut)", param_hint="--tz") from None

"""Structured logs (structlog over the standard library): JSON in production, readable on a terminal.

Every service logs through the standard ``logging`` module (faust, aiokafka and
our own code alike); :func:`configure_logging` routes all of it through one
structlog formatter. Fields passed as ``extra={...}`` become JSON keys, so an
error about one message carries ``item_id``, ``topic``, ``partition`` and
``offset`` as fields a log pipeline can filter on, not as words in a sentence.

No secrets in logs: :func:`redact_secrets` runs last before rendering, on our
records and on every library's. It blanks values of keys that name a secret
and passwords embedded in URLs (``postgresql://u:pw@host`` ->
``postgresql://u:***@host``) in any string field, the message included.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "***"

# Keys whose values are secrets whatever they contain (matched case-insensitively, as substrings).
_SECRET_KEYS = ("password", "passwd", "secret", "token", "sasl_plain", "api_key", "apikey", "authorization")
# scheme://user:password@host -> keep the user, drop the password. The user part
# stops at ':' '/' '@' or whitespace, so a plain "host:port/path" never matches.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@/\s]+)@")
# password=... / password: ... in free text (connection strings, exception messages).
_KV_PASSWORD = re.compile(r"(?i)(?P<head>\b(?:password|passwd|pwd|sasl_plain_password)\s*[=:]\s*)(?P<password>[^\s,;&'\"]+)")


def redact_text(text: str) -> str:
    """``text`` with URL passwords and ``password=...`` values replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}", text)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 4:  # log fields are shallow; don't walk arbitrary structures
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, depth + 1) for v in value]
    return value


def _is_secret_key(key: object) -> bool:
    name = str(key).lower()
    return any(marker in name for marker in _SECRET_KEYS)


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: no password or token leaves the process through a log line."""
    for key, value in list(event_dict.items()):
        if _is_secret_key(key) and value is not None:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    json_output = fmt == "json"
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_output
        # Never structlog's default (rich) traceback on the console: it prints every
        # frame's local variables, connection URLs and whole batches included.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # extra={...} of a standard-library call becomes fields of the event.
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    final: list[structlog.types.Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        # The traceback becomes text (without local variables) *before* redaction,
        # so a password in an exception message is blanked like any other field;
        # in JSON it is a string field of the one line a log shipper reads.
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every retry of a coordinator lookup at INFO; keep them for debugging only.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )

"""orjson on the wire: bytes <-> event models, and dead letters for what fails."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from newsstream.contract.ids import stable_hash
from newsstream.contract.models import DeadLetter, EnrichedEvent, RawEvent, StoryEvent
from newsstream.contract.reasons import DEAD_LETTER_REASONS
from newsstream.errors import DataError

M = TypeVar("M", bound=BaseModel)

_raw_adapter: TypeAdapter[RawEvent] = TypeAdapter(RawEvent)
_enriched_adapter: TypeAdapter[EnrichedEvent] = TypeAdapter(EnrichedEvent)


def dumps(event: BaseModel) -> bytes:
    # mode="json" turns datetimes into ISO 8601 strings; orjson then does the fast part.
    return orjson.dumps(event.model_dump(mode="json"))


def loads_raw(data: bytes | str) -> RawEvent:
    """Parse and validate a raw event read from a raw topic (fields it does not know are ignored). Raises on bad input."""
    return _raw_adapter.validate_python(orjson.loads(data))


def validate_raw(record: object) -> RawEvent:
    """Validate a decoded raw event at the ingest edge (JSONL, push, archives).

    Stricter than the topic's readers: a field the model does not know is a
    producer's typo (``titel``) and is refused, so it becomes a dead letter
    instead of vanishing. Raises ``pydantic.ValidationError`` on bad input.
    """
    event = _raw_adapter.validate_python(record)
    assert isinstance(record, dict)  # validation refuses anything else
    unknown = [name for name in record if name not in type(event).model_fields]
    if unknown:
        raise ValidationError.from_exception_data(
            type(event).__name__,
            # Located as the union's own errors are ("article.body"), so the message is the same as for any field.
            [{"type": "extra_forbidden", "loc": (event.kind, name), "input": record[name]} for name in unknown],
        )
    return event


def loads_enriched(data: bytes | str) -> EnrichedEvent:
    return _enriched_adapter.validate_python(orjson.loads(data))


def loads_dead_letter(data: bytes | str) -> DeadLetter:
    return DeadLetter.model_validate(orjson.loads(data))


def loads_story(data: bytes | str) -> StoryEvent:
    return StoryEvent.model_validate(orjson.loads(data))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for a dead letter: a code of ``DEAD_LETTER_REASONS`` and readable detail."""
    if isinstance(exc, orjson.JSONDecodeError):
        return "invalid_json", str(exc)
    if isinstance(exc, ValidationError):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:10]
        )
        return "validation_error", detail
    if isinstance(exc, UnicodeDecodeError):
        return "invalid_encoding", str(exc)
    if isinstance(exc, DataError):
        if exc.reason not in DEAD_LETTER_REASONS:  # a bug: the dead letter must still be written
            return "processing_error", f"unknown reason code {exc.reason!r}: {exc}"
        return exc.reason, str(exc)
    return "processing_error", f"{type(exc).__name__}: {exc}"


# A dead letter always fits in a Kafka record (1 MB by default), whatever the
# input: its payload is cut to this many bytes of JSON-escaped text (an input of
# quotes or control characters grows up to 6x when escaped), and the error to 2,000 characters.
DEAD_LETTER_MAX_PAYLOAD_BYTES = 256 * 1024


def dead_letter(
    payload: bytes | str,
    *,
    stage: str,
    reason: str,
    error: str,
    source_topic: str | None = None,
    source_partition: int | None = None,
    source_offset: int | None = None,
    input_ref: str | None = None,
) -> DeadLetter:
    """Wrap an input that could not be processed: byte-exact when it is small
    enough, otherwise its start with the whole input's size and hash."""
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if isinstance(payload, bytes):
        try:
            text, encoding = payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    else:
        text, encoding = payload, "utf-8"
    # The id depends on where the input came from too, so two different bad
    # lines with equal text (e.g. two empty lines) are two dead letters.
    locator = f"{source_topic}/{source_partition}/{source_offset}/{input_ref}"
    kept, truncated = _bounded(text, DEAD_LETTER_MAX_PAYLOAD_BYTES)
    return DeadLetter(
        id="dl_" + stable_hash(stage, locator, text),  # the whole input, truncated or not
        stage=stage,
        reason=reason,
        error=error[:2000],
        source_topic=source_topic,
        source_partition=source_partition,
        source_offset=source_offset,
        input_ref=input_ref[:2000] if input_ref else input_ref,
        payload=kept,
        payload_encoding=encoding,
        payload_truncated=truncated,
        payload_bytes=len(raw),
        payload_sha256=hashlib.sha256(raw).hexdigest(),
        failed_at=utcnow(),
    )


def _bounded(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text``, or its longest start whose JSON encoding fits in ``max_bytes``; and whether it was cut."""
    size = len(orjson.dumps(text))
    if size <= max_bytes:
        return text, False
    keep = len(text)
    while size > max_bytes:  # shrink in proportion; two or three rounds at most
        keep = max(0, keep * max_bytes // size - 1)
        size = len(orjson.dumps(text[:keep]))
    return text[:keep], True


def dead_letter_for(payload: bytes | str, exc: BaseException, *, stage: str, **where: object) -> DeadLetter:
    """The dead letter for an input that raised ``exc``; ``where`` locates it
    (``source_topic``/``source_partition``/``source_offset`` or ``input_ref``)."""
    reason, detail = describe_error(exc)
    return dead_letter(payload, stage=stage, reason=reason, error=detail, **where)  # type: ignore[arg-type]

"""Ticker endpoints: a JSON list of lines, or a text/HTML block, to raw ticker events.

Accepted JSON (what our fixtures and most CMS widgets serve)::

    {"items": [{"time": "22:35", "text": "الخارجية التركية: ...", "attribution": null}, ...]}
    [{"time": "22:35", "text": "..."}, "22:34 الخارجية التركية: - ...", ...]

An item with its own ``attribution`` (and optional ``continues``) is laid out
as ``attribution: [- ]text``, so every shape goes through the page parser and
gets the same attribution split, continuation flag and thread grouping as a
page's ticker. Lines are in page order (newest first).

Only new lines are emitted (the runner keeps their ids as seen). A line's
clock time is resolved in the source's time zone on the date of the poll, the
day before when it lies after the poll (midnight roll-over), by
:func:`newsstream.ingest.events.resolve_clock_time`.

Threads across polls: the parser's thread id comes from the oldest line of a
thread *on the page*; on a live ticker that line eventually scrolls off.
:func:`rethread` keeps a thread's first id: a line whose thread already has
emitted members takes their (remembered) id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from newsstream.contract.models import RawTickerItem
from newsstream.errors import DataError
from newsstream.ingest.events import events_from_page
from newsstream.ingest.sources.textutil import clean, decode_body, visible_lines
from newsstream.text.normalize import normalize_text
from newsstream.text.page import parse_page


class TickerFormatError(DataError):
    """A ticker endpoint's body is not a ticker; ``kind`` is the dead letter's reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}", reason=kind)
        self.kind = kind


def _line_of(item: object) -> str | None:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return None
    time_ = item.get("time")
    text = item.get("text") or item.get("title") or item.get("headline")
    if not isinstance(time_, str) or not isinstance(text, str):
        return None
    attribution = item.get("attribution") or item.get("source_name")
    if isinstance(attribution, str) and attribution.strip():
        marker = "- " if item.get("continues") or item.get("continues_previous") else ""
        text = f"{attribution.strip()}: {marker}{text.strip()}"
    return f"{time_.strip()}\n{text.strip()}"


def ticker_text(body: bytes, content_type: str = "", charset: str | None = None) -> tuple[str, int]:
    """(page text in the parser's layout, number of unusable JSON items).

    Raises :class:`TickerFormatError` (``invalid_encoding``, ``invalid_json``, ``bad_shape``).
    """
    try:
        text = decode_body(body, charset).text
    except UnicodeDecodeError as exc:
        raise TickerFormatError("invalid_encoding", str(exc)) from None
    stripped = text.lstrip()
    if "json" in content_type or stripped[:1] in ("{", "["):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise TickerFormatError("invalid_json", str(exc)) from None
        items = data.get("items", data.get("ticker")) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TickerFormatError("bad_shape", "expected a list of lines or {\"items\": [...]}")
        lines = [_line_of(item) for item in items]
        return "\n-\n".join(ln for ln in lines if ln), sum(1 for ln in lines if ln is None)
    if "html" in content_type or stripped[:1] == "<":
        return visible_lines(text), 0
    return clean(text), 0


def ticker_events(
    body: bytes, *, source: str, fetched_at: datetime, tz: ZoneInfo, content_type: str = "", charset: str | None = None
) -> tuple[list[RawTickerItem], int]:
    text, bad = ticker_text(body, content_type, charset)
    page = parse_page(text)
    page = page.model_copy(update={"articles": []})  # an endpoint carries ticker lines only
    events = events_from_page(page, source=source, fetched_at=fetched_at, tz=tz)
    return [e for e in events if isinstance(e, RawTickerItem)], bad


def attribution_key(line: RawTickerItem) -> str:
    return normalize_text(line.attribution or "")


def rethread(lines: list[RawTickerItem], *, known_thread: Callable[[str], str | None]) -> list[RawTickerItem]:
    """Give lines the thread ids already handed out (see the module doc).

    ``known_thread(item_id)`` is the stored thread of an emitted line. The
    page parser groups a thread from its newest line down to its oldest and
    derives the id from the oldest, so new lines arriving on top keep the id;
    only when the oldest lines scroll off the bottom would the id change, and
    then the members already emitted carry the id to keep.
    """
    groups: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(line.thread_id, []).append(i)
    mapping: dict[str, str] = {}
    for thread, members in groups.items():
        stored = next((t for i in reversed(members) if (t := known_thread(lines[i].id))), None)
        mapping[thread] = stored or thread
    return [ln if mapping[ln.thread_id] == ln.thread_id else ln.model_copy(update={"thread_id": mapping[ln.thread_id]})
            for ln in lines]

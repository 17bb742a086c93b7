"""Turning producer input into validated raw events. Pure: no Kafka here.

Pages become one article plus their ticker lines; JSONL lines become raw
events of either kind. Ids are filled in deterministically when the input
has none (see :mod:`newsstream.contract.ids`), so re-ingesting is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from newsstream.contract.ids import article_id, matching_text, stable_hash, ticker_id
from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.contract.wire import validate_raw
from newsstream.errors import DataError
from newsstream.text.normalize import normalize_text
from newsstream.text.page import ParsedPage, parse_page

RawItem = RawArticle | RawTickerItem

# A clock time up to this far in the future of the fetch is clock skew, not yesterday.
_CLOCK_SKEW = timedelta(minutes=10)


def resolve_clock_time(hhmm: str, fetched_at: datetime, tz: ZoneInfo, page_date: date | None = None) -> datetime:
    """A ticker's "HH:MM" as a UTC timestamp.

    The date is the page's when known, otherwise the fetch date in the
    source's time zone; a time later than the fetch (beyond clock skew) was
    posted before midnight, so it belongs to the day before.
    """
    hour, minute = (int(part) for part in hhmm.split(":"))
    local_fetch = fetched_at.astimezone(tz)
    day = page_date or local_fetch.date()
    local = datetime.combine(day, time(hour, minute), tzinfo=tz)
    if page_date is None and local > local_fetch + _CLOCK_SKEW:
        local -= timedelta(days=1)
    return local.astimezone(timezone.utc)


def events_from_page(
    page: ParsedPage,
    *,
    source: str,
    fetched_at: datetime,
    url: str | None = None,
    tz: ZoneInfo = ZoneInfo("UTC"),
    page_date: date | None = None,
    published_at: datetime | None = None,
) -> list[RawItem]:
    """Raw events for a parsed page: its articles, then its ticker lines in page order."""
    events: list[RawItem] = []
    for index, article in enumerate(page.articles):
        # A page carries one article as a rule; extra ones get their own id from their content.
        article_url = url if index == 0 else None
        events.append(
            RawArticle(
                id=article_id(source, article_url, article.title, article.body),
                source=source,
                url=article_url,
                title=article.title,
                body=article.body,
                published_at=published_at,
                fetched_at=fetched_at,
            )
        )
    for line in page.ticker:
        at = resolve_clock_time(line.time, fetched_at, tz, page_date)
        events.append(
            RawTickerItem(
                id=ticker_id(source, at.isoformat(), line.text, line.attribution),
                source=source,
                time=line.time,
                published_at=at,
                text=line.text,
                attribution=line.attribution,
                continues_previous=line.continues_previous,
                # The parser's thread id knows only the page; two outlets carrying the
                # same line are two threads (and the second line a duplicate).
                thread_id=source_thread_id(source, line.thread_id),
                fetched_at=fetched_at,
            )
        )
    return events


def source_thread_id(source: str, page_thread_id: str) -> str:
    return "th_" + stable_hash("thread", source.strip(), page_thread_id)[:16]


def page_text(raw: bytes) -> str:
    """A page file's text: UTF-8 or nothing (a :class:`DataError` with reason ``invalid_encoding``), at every
    entry point that reads page files (``ingest page``, ``ingest dir``, ``parse page``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: {exc}", reason="invalid_encoding") from None


def events_from_page_text(text: str, **kwargs: object) -> list[RawItem]:
    return events_from_page(parse_page(text), **kwargs)  # type: ignore[arg-type]


def event_from_json_line(line: bytes, fetched_at: datetime, tz: ZoneInfo | None = None) -> RawItem:
    """Validate one JSONL record as a raw event (see :func:`event_from_record`).

    Raises ``orjson.JSONDecodeError`` or ``pydantic.ValidationError`` on bad input.
    """
    return event_from_record(orjson.loads(line), fetched_at, tz)


def event_from_record(record: object, fetched_at: datetime, tz: ZoneInfo | None = None) -> RawItem:
    """Validate one decoded record as a raw event, filling ``id`` and ``fetched_at`` if absent.

    Timestamps must carry an offset; with ``tz`` (``ingest jsonl --tz``, the push
    API's ``?tz=``) one without is read as local time there. Raises
    ``pydantic.ValidationError`` on bad input.
    """
    if not isinstance(record, dict):
        raise ValidationError.from_exception_data(
            "RawEvent", [{"type": "dict_type", "loc": (), "input": record}]
        )
    record = dict(record)
    record.setdefault("fetched_at", fetched_at.isoformat())
    if tz is not None:
        for name in ("published_at", "fetched_at"):
            record[name] = _localized(record.get(name), tz)
    if not record.get("id"):
        record["id"] = _derived_id(record)
    return validate_raw(record)


def _localized(value: object, tz: ZoneInfo) -> object:
    """An ISO 8601 string without an offset, read as local time in ``tz``; anything else unchanged."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # the schema's error says what is wrong with it
    return parsed.replace(tzinfo=tz).isoformat() if parsed.tzinfo is None else value


def _derived_id(record: dict[str, object]) -> str:
    source = str(record.get("source") or "")
    if record.get("kind") == "ticker":
        return ticker_id(source, _utc_iso(record.get("published_at")), str(record.get("text") or ""),
                         record.get("attribution") if isinstance(record.get("attribution"), str) else None)
    url = record.get("url")
    return article_id(source, url if isinstance(url, str) else None, str(record.get("title") or ""),
                      str(record.get("body") or ""))


def _utc_iso(value: object) -> str:
    """A timestamp as the page path writes it into ids (UTC isoformat), so that
    "…Z", "…+00:00" and "…+03:00" spellings of one instant give one id."""
    if not isinstance(value, str):
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc).isoformat()
    except (ValueError, OverflowError):
        return value  # validation will reject it; the id does not matter then


def read_jsonl(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each non-blank line, without decoding: bad bytes are the caller's dead letter."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


# Timestamps an item may carry, around the wall clock at the edge: a publication
# date a day or more ahead is a broken feed, and would move the worker's stream
# time (its windows run on event time) past everything it holds.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)


def admit(event: RawItem, now: datetime) -> None:
    """The checks every entry point applies beyond the schema; raises :class:`DataError` with the reason code.

    * ``empty_text``: nothing left once invisible characters are removed;
    * ``timestamp_out_of_range``: published or fetched before 1900, or a day or more after ``now``.
    """
    if not normalize_text(matching_text(event)):
        raise DataError("the text is empty once invisible characters are removed", reason="empty_text")
    for name in ("published_at", "fetched_at"):
        value = getattr(event, name)
        if value is not None and not EARLIEST <= value <= now + MAX_FUTURE:
            raise DataError(f"{name} {value.isoformat()} is outside [1900-01-01, now + 1 day]",
                            reason="timestamp_out_of_range")

"""Shared types: a configured source, and the outcome of one poll of it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from newsstream.contract.models import DeadLetter, RawArticle, RawTickerItem

RawItem = RawArticle | RawTickerItem
# The kinds of polled source; each has its module (feed.py, page.py, ticker.py)
# and its handler in runner.Poller. Push and archive replay are not polled.
SOURCE_KINDS = ("feed", "page", "ticker")
SourceKind = Literal[SOURCE_KINDS]  # type: ignore[valid-type]
STAGE = "ingest"

_LANG_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*$")


@dataclass
class Source:
    """One source as the pollers see it (see :mod:`.registry` for the config file)."""

    name: str
    kind: SourceKind
    url: str
    language: str | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    interval_s: float = 300.0
    follow: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    max_items: int = 200  # feed entries considered per poll


@dataclass
class Outcome:
    """What one poll produced. ``seen_keys``/``threads``/``validators`` are
    written to the state only after the broker acknowledged ``events`` and
    ``dead_letters``: a crash in between re-emits (same ids), never loses."""

    events: list[RawItem] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    seen_keys: list[str] = field(default_factory=list)
    threads: list[tuple[str, str, str, str]] = field(default_factory=list)
    validators: tuple[str, str | None, str | None] | None = None
    not_modified: bool = False
    cleaned: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    deferred: int = 0  # feed items left for the next poll (transient page failure)

    def clean(self, kind: str, n: int = 1) -> None:
        if n:
            self.cleaned[kind] = self.cleaned.get(kind, 0) + n

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + n

    def extend(self, other: Outcome) -> None:
        self.events += other.events
        self.dead_letters += other.dead_letters
        self.seen_keys += other.seen_keys
        self.threads += other.threads
        self.deferred += other.deferred
        for k, n in other.cleaned.items():
            self.clean(k, n)
        for k, n in other.errors.items():
            self.error(k, n)


def language_code(value: str | None) -> str | None:
    """ISO 639 code from a declared language ('ar-LB' -> 'ar'); None when absent or not a code."""
    if not value:
        return None
    m = _LANG_RE.match(value.strip())
    return m.group(1).lower() if m else None


def as_utc(value: datetime | None) -> datetime | None:

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

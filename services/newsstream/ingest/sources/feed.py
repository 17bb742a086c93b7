"""RSS and Atom feeds with feedparser: entries to :class:`FeedItem`, pure.

Defined outcomes for bad feeds (counted in ``newsstream_source_errors_total``
or ``..._cleaned_total``):

* not well-formed XML with no entries recovered: :class:`FeedError`
  ``broken_xml`` (a feed-level error: counted, retried with backoff);
* not well-formed but entries recovered (feedparser's loose parser): the
  entries are used, counted as cleaned ``loose_xml``;
* bytes that are neither declared-charset nor UTF-8: ``invalid_encoding``;
* an entry without a link: an article identified by its content, from the
  entry's own text (cleaned ``missing_link``); without a date:
  ``published_at`` null (cleaned ``missing_date``); with neither a link nor
  any text: an ``empty_item`` dead letter.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

import feedparser

from newsstream.contract.ids import stable_hash
from newsstream.errors import NewsstreamError
from newsstream.ingest.sources.base import language_code
from newsstream.ingest.sources.textutil import (
    clean,
    count_invisible,
    decode_body,
    visible_lines,
)
from newsstream.ingest.sources.urls import canonical_url


class FeedError(NewsstreamError):
    """A feed that cannot be read: bad bytes (a dead letter) or broken XML (the source failed)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class FeedItem:
    key: str  # what "seen" remembers: guid, else link, else a content hash
    link: str | None  # canonical
    title: str
    text: str  # the entry's own text (content or summary), HTML stripped
    published_at: datetime | None
    language: str | None
    invisible_chars: int


@dataclass
class ParsedFeed:
    title: str
    language: str | None
    items: list[FeedItem]
    loose: bool  # recovered from malformed XML


def _struct_to_dt(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def _text_of(fragment: str) -> str:
    if not fragment or not fragment.strip():
        return ""
    if "<" in fragment:
        fragment = visible_lines(f"<div>{fragment}</div>")
    lines = [ln for ln in clean(fragment).split("\n") if ln.strip()]
    return "\n\n".join(lines)


def looks_like_feed(body: bytes, content_type: str = "") -> bool:
    if any(t in content_type for t in ("rss", "atom", "xml")):
        return True
    head = body[:1024].lstrip().lower()
    return head.startswith(b"<?xml") or head.startswith(b"<rss") or head.startswith(b"<feed") or b"<rdf:rdf" in head


def parse_feed(body: bytes, *, content_type: str = "", charset: str | None = None, url: str | None = None) -> ParsedFeed:
    """Parse feed bytes. Raises :class:`FeedError` (``invalid_encoding``, ``broken_xml``, ``not_a_feed``)."""
    try:
        decode_body(body, charset)
    except UnicodeDecodeError as exc:
        raise FeedError("invalid_encoding", f"neither the declared charset nor UTF-8: {exc}") from None
    headers = {"content-type": content_type + (f"; charset={charset}" if charset else "")} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=True)
    if parsed.get("bozo") and not parsed.entries:
        exc = parsed.get("bozo_exception")
        raise FeedError("broken_xml", f"{type(exc).__name__}: {exc}" if exc else "not a well-formed feed")
    if not parsed.entries and not parsed.get("version") and not parsed.feed.get("title"):
        raise FeedError("not_a_feed", "no RSS/Atom structure found")
    feed_lang = language_code(parsed.feed.get("language"))
    items: list[FeedItem] = []
    for entry in parsed.entries:
        link = canonical_url(entry.get("link"))
        raw_title = entry.get("title") or ""
        content = ""
        if entry.get("content"):
            content = max((c.get("value") or "" for c in entry.content), key=len)
        raw_text = content or entry.get("summary") or ""
        title = clean(_text_of(raw_title).replace("\n\n", " "))
        text = _text_of(raw_text)
        published = _struct_to_dt(entry.get("published_parsed") or entry.get("updated_parsed"))
        guid = entry.get("id") or entry.get("guid")
        key = "g:" + guid if guid else ("l:" + link if link else "h:" + stable_hash(title, text))
        items.append(
            FeedItem(
                key=key, link=link, title=title, text=text, published_at=published,
                language=language_code(entry.get("language")) or feed_lang,
                invisible_chars=count_invisible(raw_title) + count_invisible(raw_text),
            )
        )
    return ParsedFeed(clean(parsed.feed.get("title") or ""), feed_lang, items, bool(parsed.get("bozo")))

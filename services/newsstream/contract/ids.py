"""Stable item ids: the same input always gets the same id.

Ids are the Kafka message key and the primary key in every store, so
re-ingesting a page or replaying an archive updates rows instead of adding
new ones. They are derived from what identifies an item, never from the time
it was fetched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsstream.text.digest import stable_hash
from newsstream.text.normalize import normalize_text

if TYPE_CHECKING:  # the models use these ids; no import cycle at run time
    from newsstream.contract.models import RawArticle, RawTickerItem

__all__ = ["article_id", "content_hash", "matching_text", "stable_hash", "ticker_id"]


def article_id(source: str, url: str | None, title: str, body: str) -> str:
    """An article is identified by its URL when it has one (edits keep the id),
    otherwise by its normalised content within its source."""
    if url:
        return "a_" + stable_hash("url", url.strip())
    return "a_" + stable_hash("content", source.strip(), normalize_text(title), normalize_text(body))


def ticker_id(source: str, published_at_iso: str, text: str, attribution: str | None) -> str:
    """A ticker line is identified by its source, its resolved time and its words."""
    return "t_" + stable_hash(
        "ticker", source.strip(), published_at_iso, normalize_text(attribution or ""), normalize_text(text)
    )


def content_hash(normalized_text: str) -> str:
    """Exact-duplicate key: equal normalised text, equal hash."""
    return stable_hash("content", normalized_text, size=20)


def matching_text(raw: "RawArticle | RawTickerItem") -> str:
    """The text whose normalised form identifies the item's content.

    For an article that is its body alone: outlets republish wire copy under
    their own headline, and that is still the same content. For a ticker line
    it is the sentence without the attribution.
    """
    return raw.body if raw.kind == "article" else raw.text

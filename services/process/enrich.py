"""Enrichment as pure functions: raw event in, enriched event out. No Kafka here.

The worker calls :func:`enrich` on every raw event and then decides
``duplicate_of`` with its dedup state (see :mod:`newsstream.process.dedup`).
"""

from __future__ import annotations

from datetime import datetime

from newsstream import __version__
from newsstream.core.ids import content_hash
from newsstream.core.models import (
    EnrichedArticle,
    EnrichedTickerItem,
    Enrichment,
    RawArticle,
    RawTickerItem,
)
from newsstream.core.text.language import detect_language
from newsstream.core.text.normalize import normalize_text, word_count

PIPELINE_VERSION = f"newsstream/{__version__}"

# Language identification is linear in the text (~0.4 µs a byte); the headline
# and lead decide the language of a news article as well as the whole of it does.
_LANGUAGE_SAMPLE_CHARS = 400


def matching_text(raw: RawArticle | RawTickerItem) -> str:
    """The text whose normalised form identifies the item's content.

    For an article that is its body alone: outlets republish wire copy under
    their own headline, and that is still the same content. For a ticker line
    it is the sentence without the attribution.
    """
    return raw.body if isinstance(raw, RawArticle) else raw.text


def dedup_key(enriched: EnrichedArticle | EnrichedTickerItem) -> str:
    """Key of the exact-dedup state: articles and ticker lines never match each other."""
    return f"{enriched.kind}:{enriched.enrichment.content_hash}"


def enrich(raw: RawArticle | RawTickerItem, processed_at: datetime) -> EnrichedArticle | EnrichedTickerItem:
    """Language, normalised text, content hash and word count; original text untouched."""
    text = matching_text(raw)
    normalized = normalize_text(text)
    sample = (f"{raw.title}\n{raw.body}" if isinstance(raw, RawArticle) else raw.text)[:_LANGUAGE_SAMPLE_CHARS]
    language, confidence = detect_language(sample)
    enrichment = Enrichment(
        language=language,
        language_confidence=round(float(confidence), 4),
        normalized_text=normalized,
        content_hash=content_hash(normalized),
        word_count=word_count(text),
        duplicate_of=None,
        processed_at=processed_at,
        pipeline_version=PIPELINE_VERSION,
    )
    if isinstance(raw, RawArticle):
        return EnrichedArticle(id=raw.id, raw=raw, enrichment=enrichment)
    return EnrichedTickerItem(id=raw.id, raw=raw, enrichment=enrichment)


def mark_duplicate(
    enriched: EnrichedArticle | EnrichedTickerItem, first_id: str | None
) -> EnrichedArticle | EnrichedTickerItem:
    """The same event with ``duplicate_of`` set (None: it is the first of its content)."""
    if first_id is None or first_id == enriched.id:
        return enriched
    return enriched.model_copy(update={"enrichment": enriched.enrichment.model_copy(update={"duplicate_of": first_id})})

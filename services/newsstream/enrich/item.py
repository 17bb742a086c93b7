"""Enrichment as pure functions: raw event in, enriched event out. No Kafka here.

The worker calls :func:`enrich_batch` on every batch of raw events (one
encoder pass for the batch, then :func:`enrich` per item) and then decides
``duplicate_of`` with its dedup state (see :mod:`newsstream.dedup`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from newsstream import __version__
from newsstream.contract.ids import content_hash, matching_text
from newsstream.contract.models import (
    Attribution,
    Embedding,
    EnrichedArticle,
    EnrichedTickerItem,
    Enrichment,
    EntityMention,
    QuoteMention,
    RawArticle,
    RawTickerItem,
    RegionRef,
    TimeMention,
    TopicScore,
)
from newsstream.errors import DataError
from newsstream.text.language import detect_language
from newsstream.text.normalize import normalize_text, word_count

if TYPE_CHECKING:
    import numpy as np

    from newsstream.enrich.ner_context import TextContext

_log = logging.getLogger(__name__)

Enriched = EnrichedArticle | EnrichedTickerItem


def warm_up(structured: bool = True, embeddings: bool = False) -> None:
    """Load every model enrichment uses (~1-2 s of CPU, ~2 s more for the encoder).

    The worker calls this before it joins its consumer group: loading inside
    the first batch would block the event loop past a heartbeat and trigger a
    rebalance.
    """
    detect_language("warm up")
    if structured:
        from newsstream.enrich.pipeline import warm_up as warm_up_structured

        warm_up_structured()
    if embeddings:
        from newsstream.enrich.embedding import get_encoder

        get_encoder()


def enrich_batch(raws: Sequence[RawArticle | RawTickerItem], processed_at: datetime, *, structured: bool = True,
                 embeddings: bool = False, article_tokens: int = 128,
                 ner_context_tokens: int = 0) -> list[Enriched | Exception]:
    """Stage 1 on a batch: with ``embeddings``, one batched encoder pass gives
    every item its vector and the entity tagger its context (the first
    ``ner_context_tokens`` tokens of the embedded text, :func:`embedding.embed_in_context`);
    then each item is enriched alone. An item that cannot be enriched comes
    back as its exception (the caller dead-letters it). If the encoder fails,
    the items go on without vectors or context (logged): a bug in an enricher
    must not turn good items into dead letters."""
    encoded: list = [None] * len(raws)
    if embeddings and raws:
        from newsstream.enrich.embedding import embed_in_context

        try:
            encoded = embed_in_context(raws, article_tokens, ner_context_tokens if structured else 0)
        except Exception:  # noqa: BLE001 - logged; the items keep everything else
            _log.exception("embedding failed for a batch of %d items", len(raws))
    out: list[Enriched | Exception] = []
    for raw, pair in zip(raws, encoded):
        try:
            out.append(enrich(raw, processed_at, structured=structured, context=pair[1] if pair else None,
                              embedding=pair[0] if pair else None))
        except Exception as exc:  # noqa: BLE001 - this item only
            out.append(exc)
    return out


def structured_fields(raw: RawArticle | RawTickerItem, words: int, context: TextContext | None = None,
                      topic_vector: np.ndarray | None = None) -> dict:
    """The optional Enrichment fields from :mod:`newsstream.enrich`; empty
    (fields stay null) when they fail: a bug in an enricher must not turn a
    good item into a dead letter. ``context``: the tagger's context of the
    item's embedded text (:func:`enrich_batch`); ``topic_vector``: the item's
    vector as the topic model reads it."""
    from newsstream.enrich.embedding import text_base
    from newsstream.enrich.pipeline import enrich_fields

    def part(field: str) -> TextContext | None:
        base = text_base(raw, field)
        return context.part(base) if context is not None and base >= 0 else None

    try:
        if isinstance(raw, RawArticle):
            # without a publication time, relative dates count from the fetch
            fields = enrich_fields("article", text=raw.body, title=raw.title,
                                   published_at=raw.published_at or raw.fetched_at, word_count=words,
                                   context=part("body"), title_context=part("title"), topic_vector=topic_vector)
        else:
            fields = enrich_fields("ticker", text=raw.text, attribution=raw.attribution,
                                   published_at=raw.published_at, word_count=words, context=part("text"))
        return _construct(fields)
    except Exception:  # noqa: BLE001 - logged, item still enriched with the basics
        _log.exception("structured enrichment failed for %s", raw.id)
        return {}


def _topic_vector(raw: RawArticle | RawTickerItem, embedding: Embedding | None, language: str) -> np.ndarray | None:
    """An article's vector as the topic model reads it (lines keep the text model: none for them)."""
    if embedding is None or not isinstance(raw, RawArticle):
        return None
    from newsstream.enrich.embedding import centred_unit

    return centred_unit(embedding, language)


def _construct(fields: dict) -> dict:
    """Nested models built without re-validation (``model_construct``): the
    enrichers' output has a fixed shape (checked against the schema by
    tests/enrich), and validating hundreds of mentions per article would
    cost more than finding them."""
    out = dict(fields)
    for key, model in (("entities", EntityMention), ("quotes", QuoteMention), ("times", TimeMention),
                       ("topics", TopicScore), ("regions", RegionRef)):
        out[key] = [model.model_construct(**d) for d in fields[key]]
    if fields.get("attribution") is not None:
        out["attribution"] = Attribution.model_construct(**fields["attribution"])
    return out

PIPELINE_VERSION = f"newsstream/{__version__}"

# Language identification is linear in the text (~0.4 µs a byte); the headline
# and lead decide the language of a news article as well as the whole of it does.
_LANGUAGE_SAMPLE_CHARS = 400


def language_sample(raw: RawArticle | RawTickerItem) -> str:
    """The text the language is told from: the headline and lead decide it as well as the whole does."""
    return (f"{raw.title}\n{raw.body}" if isinstance(raw, RawArticle) else raw.text)[:_LANGUAGE_SAMPLE_CHARS]


def enrich(
    raw: RawArticle | RawTickerItem, processed_at: datetime, *, structured: bool = True,
    context: TextContext | None = None, embedding: Embedding | None = None,
) -> EnrichedArticle | EnrichedTickerItem:
    """Language, normalised text, content hash and word count; original text untouched.

    ``structured`` (``NEWSSTREAM_ENRICH_STRUCTURED``) adds entities, quotes,
    times, topics, regions and urgency; off for a replay that only needs
    hashes, or to shed load. ``context``: the entity tagger's context of the
    item's embedded text (:func:`enrich_batch`; None: the tagger's own features).
    ``embedding``: the item's vector (:func:`enrich_batch`), carried on the
    event and read by the topic model."""
    text = matching_text(raw)
    normalized = normalize_text(text)
    if not normalized:
        # Only invisible characters (zero-width, bidi marks): every such item would
        # share one content hash and be taken for a copy of the first.
        raise DataError("the text is empty once invisible characters are removed", reason="empty_text")
    language, confidence = detect_language(language_sample(raw))
    words = word_count(text)
    enrichment = Enrichment(
        language=language,
        language_confidence=round(float(confidence), 4),
        normalized_text=normalized,
        content_hash=content_hash(normalized),
        word_count=words,
        duplicate_of=None,
        processed_at=processed_at,
        pipeline_version=PIPELINE_VERSION,
        embedding=embedding,
        **(structured_fields(raw, words, context, _topic_vector(raw, embedding, language)) if structured else {}),
    )
    if isinstance(raw, RawArticle):
        return EnrichedArticle(id=raw.id, raw=raw, enrichment=enrichment)
    return EnrichedTickerItem(id=raw.id, raw=raw, enrichment=enrichment)

"""Event models: the public contract of newsstream's topics.

Every event that crosses Kafka is one of these pydantic models, serialised
with orjson (see :mod:`newsstream.core.wire`). Raw events are what producers
emit; enriched events are what the worker emits and downstream consumers read;
dead letters carry anything that could not be processed, with its reason.

Changing a field here changes the JSON Schemas in ``schemas/`` (a test fails
until ``newsstream schemas export`` is run): additive, optional fields are a
minor change; renaming or removing a field needs a new topic version (``.v2``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class _Event(BaseModel):
    # Unknown fields are rejected at the edge so that typos in producers show up
    # as dead letters instead of silently vanishing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawArticle(_Event):
    """An article as a producer found it: title and body text, no enrichment."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: NonEmptyStr = Field(description="Stable item id: same article, same id (see newsstream.core.ids).")
    kind: Literal["article"] = "article"
    source: NonEmptyStr = Field(description="Outlet or feed name, e.g. 'almayadeen'.")
    url: str | None = Field(default=None, description="Canonical URL when known.")
    title: str = Field(default="", description="Headline; may be empty when the page has none.")
    body: NonEmptyStr = Field(description="Article text, paragraphs separated by a blank line.")
    language: str | None = Field(default=None, description="Language declared by the source (ISO 639-1), if any.")
    published_at: datetime | None = Field(default=None, description="Publication time (UTC) when the source gives one.")
    fetched_at: datetime = Field(description="When the producer fetched the item (UTC).")


class RawTickerItem(_Event):
    """One breaking-news ("عاجل") line: clock time, attribution, one sentence."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: NonEmptyStr
    kind: Literal["ticker"] = "ticker"
    source: NonEmptyStr
    time: ClockTime = Field(description="Clock time as shown by the source, HH:MM.")
    published_at: datetime = Field(description="The clock time resolved to a UTC timestamp.")
    text: NonEmptyStr = Field(description="The sentence, without the attribution.")
    attribution: str | None = Field(default=None, description="Who said it, e.g. 'الخارجية التركية'; null when the line has none.")
    continues_previous: bool = Field(default=False, description="The line carries the '-' continuation marker after its attribution.")
    thread_id: NonEmptyStr = Field(description="Id shared by all lines of one multi-part story.")
    fetched_at: datetime


RawEvent = Annotated[RawArticle | RawTickerItem, Field(discriminator="kind")]


class Enrichment(_Event):
    """Fields the worker adds to every item; the original text is never altered."""

    language: str = Field(description="Detected language (ISO 639-1), 'und' when undetermined.")
    language_confidence: float = Field(ge=0.0, le=1.0)
    normalized_text: str = Field(description="Arabic-aware normalised text used for matching and search.")
    content_hash: str = Field(description="Hex digest of the normalised text: equal hashes are exact duplicates.")
    word_count: int = Field(ge=0)
    duplicate_of: str | None = Field(default=None, description="Id of the first item with the same content, null when this is the first.")
    processed_at: datetime
    pipeline_version: str = Field(description="newsstream version that produced this enrichment.")


class EnrichedArticle(_Event):
    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["article"] = "article"
    id: str
    raw: RawArticle
    enrichment: Enrichment


class EnrichedTickerItem(_Event):
    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["ticker"] = "ticker"
    id: str
    raw: RawTickerItem
    enrichment: Enrichment


EnrichedEvent = Annotated[EnrichedArticle | EnrichedTickerItem, Field(discriminator="kind")]


class DeadLetter(_Event):
    """Anything a service could not process, kept whole so it can be replayed."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["dead_letter"] = "dead_letter"
    id: str = Field(description="Stable id of this dead letter (hash of stage and payload).")
    stage: str = Field(description="Where it failed: 'ingest', 'worker', 'sink'.")
    reason: str = Field(description="Short machine-readable reason, e.g. 'invalid_json', 'validation_error'.")
    error: str = Field(description="Human-readable detail.")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    input_ref: str | None = Field(default=None, description="File and line, URL or other locator of the input.")
    payload: str = Field(description="The original input, UTF-8 text or base64 (see payload_encoding).")
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    failed_at: datetime


# Models whose JSON Schema is published in schemas/ (file stem -> model).
PUBLIC_MODELS: dict[str, type[BaseModel]] = {
    "raw_article.v1": RawArticle,
    "raw_ticker_item.v1": RawTickerItem,
    "enriched_article.v1": EnrichedArticle,
    "enriched_ticker_item.v1": EnrichedTickerItem,
    "dead_letter.v1": DeadLetter,
}

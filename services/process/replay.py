"""Replay a time-ordered stream through the worker's functions, offline. Pure apart from reading the file.

:class:`Pipeline` chains, per item, exactly what the worker does (or will do):
:func:`newsstream.process.enrich.enrich`, exact dedup with
:func:`newsstream.process.dedup.check_and_claim`, near-duplicates
(:mod:`~newsstream.process.neardup`), ticker threads
(:mod:`~newsstream.process.threads`) and stories
(:mod:`~newsstream.process.stories`). All windows run on **event time** (the
item's ``published_at``, else ``fetched_at``) so that a replay of last week
behaves as the live stream did.

Input lines are raw events (``kind`` = ``article`` / ``ticker``, as for
``newsstream ingest jsonl``) or article records in the layout of the shared
ANT stream (``id``, ``source``, ``title``, ``text``, ``published_at``,
``url``; extra fields such as ``exact_dup_group`` are kept for evaluation).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from newsstream.core.models import (
    EnrichedArticle,
    EnrichedTickerItem,
    RawArticle,
    RawTickerItem,
)
from newsstream.core.text.normalize import normalize_text
from newsstream.ingest.events import event_from_json_line
from newsstream.process.dedup import check_and_claim, expired_keys
from newsstream.process.enrich import dedup_key, enrich, mark_duplicate
from newsstream.process.envelope import partition_for
from newsstream.process.neardup import NearDupConfig, NearDupIndex, NearVerdict
from newsstream.process.stories import Stories, StoryConfig, StoryUpdate
from newsstream.process.threads import ThreadConfig, Threads, ThreadUpdate

__all__ = ["Pipeline", "PipelineConfig", "Processed", "deep_size", "event_time", "read_stream"]

RawItem = RawArticle | RawTickerItem


@dataclass(frozen=True)
class PipelineConfig:
    near: NearDupConfig = field(default_factory=NearDupConfig)
    threads: ThreadConfig = field(default_factory=ThreadConfig)
    stories: StoryConfig = field(default_factory=StoryConfig)
    exact_window_s: float = 48 * 3600.0  # NEWSSTREAM_DEDUP_WINDOW_HOURS
    partitions: int = 4  # of the by-content topic (only recorded in the exact-dedup state)


class Processed(NamedTuple):
    enriched: EnrichedArticle | EnrichedTickerItem  # duplicate_of set (exact or near)
    exact_of: str | None  # the exact-dedup verdict alone
    near: NearVerdict
    thread: ThreadUpdate | None
    story: StoryUpdate


def event_time(raw: RawItem) -> float:
    return (raw.published_at or raw.fetched_at).timestamp()


class Pipeline:
    """State of one replay (plain dicts: the worker's tables hold the same mappings)."""

    def __init__(self, config: PipelineConfig = PipelineConfig()) -> None:
        self.config = config
        self.exact: dict[str, object] = {}
        self.near = NearDupIndex(config.near)
        self.threads = Threads(config.threads)
        self.stories = Stories(config.stories)

    def process(self, raw: RawItem, processed_at: datetime | None = None, entities: tuple[str, ...] = ()) -> Processed:
        at = event_time(raw)
        enriched = enrich(raw, processed_at or datetime.now(UTC))
        key = dedup_key(enriched)
        verdict, _claimed = check_and_claim(
            self.exact, key, raw.id, partition_for(key, self.config.partitions), at, self.config.exact_window_s
        )
        near, _writes = self.near.check_and_add(
            raw.id, raw.kind, enriched.enrichment.normalized_text, at, exact_of=verdict.first_id, source=raw.source
        )
        enriched = mark_duplicate(enriched, near.duplicate_of)

        thread: ThreadUpdate | None = None
        if isinstance(raw, RawTickerItem):
            thread = self.threads.assign(
                item_id=raw.id,
                source=raw.source,
                attribution=raw.attribution,
                text=raw.text,
                published_at=at,
                continues_previous=raw.continues_previous,
                raw_thread_id=raw.thread_id,
                time=raw.time,
            )
        story = self.stories.assign(
            item_id=raw.id,
            kind=raw.kind,
            source=raw.source,
            at=at,
            title=raw.title if isinstance(raw, RawArticle) else "",
            normalized_text=enriched.enrichment.normalized_text,
            duplicate_of=near.duplicate_of,
            duplicate_similarity=near.similarity,
            thread_id=thread.thread_id if thread else None,
            thread_headline=thread.thread["headline"] if thread else None,
            entities=entities or entity_keys(getattr(enriched.enrichment, "entities", None)),
            topics=topic_codes(getattr(enriched.enrichment, "topics", None)),
        )
        return Processed(enriched, verdict.first_id, near, thread, story)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every state mapping, as the worker's changelog topics would hold them."""
        return {
            "exact": dict(self.exact),
            "near_bands": dict(self.near.bands),
            "near_items": dict(self.near.items),
            "near_common": dict(self.near.common),
            "threads": dict(self.threads.state),
            "stories": dict(self.stories.state),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, dict[str, Any]], config: PipelineConfig = PipelineConfig()) -> Pipeline:
        """A pipeline that goes on from a snapshot (a restarted worker recovering its tables)."""
        pipeline = cls(config)
        pipeline.exact.update(snapshot["exact"])
        pipeline.near.bands.update(snapshot["near_bands"])
        pipeline.near.items.update(snapshot["near_items"])
        pipeline.near.common.update(snapshot["near_common"])
        pipeline.threads.state.update(snapshot["threads"])
        pipeline.stories.state.update(snapshot["stories"])
        return pipeline

    def expire(self, now: float) -> None:
        """What the worker's timers do: forget everything past its window."""
        for key, _partition in list(expired_keys(self.exact, now, self.config.exact_window_s, range(self.config.partitions))):
            del self.exact[key]
        for _ in self.near.expire(now):
            pass
        for _ in self.threads.expire(now):
            pass
        for _ in self.stories.expire(now):
            pass


def entity_keys(mentions: Iterable[Any] | None) -> tuple[str, ...]:
    """Comparable keys of entity mentions: the linked id when known, else the normalised text.

    Accepts plain strings too, so callers and tests can pass names directly.
    """
    keys: list[str] = []
    for mention in mentions or ():
        if isinstance(mention, str):
            keys.append(normalize_text(mention))
        else:
            linked = getattr(mention, "id", None)
            keys.append(str(linked) if linked else normalize_text(str(getattr(mention, "text", ""))))
    return tuple(dict.fromkeys(k for k in keys if k))


def topic_codes(topics: Iterable[Any] | None) -> tuple[str, ...]:
    """Topic codes of the enrichment's topic scores (or plain strings)."""
    return tuple(t if isinstance(t, str) else str(getattr(t, "code", "")) for t in topics or () if t)


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
    from newsstream.core.text.page import _split_item as split_item  # the parser's own attribution rule

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

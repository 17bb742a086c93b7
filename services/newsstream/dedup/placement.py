"""Placing an enriched item: near-duplicate verdict, ticker thread and story. Pure: no Kafka here.

This is stage 3 of the worker (:mod:`newsstream.worker.app`) and the second
half of the offline replay (:mod:`newsstream.evaluation.stream_replay`): both call
:meth:`Placement.place` with the item's exact-dedup verdict, so ``newsstream
eval stream`` measures the code the worker runs.

The state is five mappings with JSON-able values. The worker passes
changelog-backed faust tables (through
:class:`newsstream.worker.changelog.ChangelogWrites`); the replay passes
dicts. Every window runs on **event time** (``published_at``, else
``fetched_at``), so a replay of last week behaves as the live stream did.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from newsstream.contract.models import (
    EnrichedArticle,
    EnrichedTickerItem,
    RawArticle,
    RawTickerItem,
)
from newsstream.dedup.neardup import NearDupConfig, NearDupIndex, NearVerdict
from newsstream.dedup.stories import Stories, StoryConfig, StoryUpdate
from newsstream.dedup.threads import ThreadConfig, Threads, ThreadUpdate
from newsstream.dedup.vectors import int8_vector
from newsstream.enrich.embedding import centred
from newsstream.text.normalize import normalize_text

__all__ = ["CHANGELOGGED_TABLES", "Expired", "Placed", "Placement", "PlacementConfig", "STATE_TABLES", "entity_keys",
           "event_time", "topic_codes"]

Enriched = EnrichedArticle | EnrichedTickerItem

# Names of the state mappings. The worker keeps all but near_bands in faust
# tables ("placement-<name>"); near_bands is rebuilt from near_items
# (NearDupIndex.rebuild_bands) because it is derived from the signatures.
STATE_TABLES = ("near_bands", "near_items", "near_common", "threads", "stories")
CHANGELOGGED_TABLES = STATE_TABLES[1:]


@dataclass(frozen=True)
class PlacementConfig:
    near: NearDupConfig = field(default_factory=NearDupConfig)
    threads: ThreadConfig = field(default_factory=ThreadConfig)
    stories: StoryConfig = field(default_factory=StoryConfig)

    @classmethod
    def from_settings(cls, settings: Any) -> PlacementConfig:
        """The configuration a worker runs with (``NEWSSTREAM_NEAR_*``, ``_THREAD_*``, ``_STORY_*``)."""
        return cls(
            near=NearDupConfig(threshold=settings.near_threshold, window_s=settings.near_window_hours * 3600.0),
            threads=ThreadConfig(
                followup_window_s=settings.thread_followup_minutes * 60.0,
                continuation_window_s=settings.thread_continuation_hours * 3600.0,
            ),
            stories=StoryConfig(threshold=settings.story_threshold, window_s=settings.story_window_hours * 3600.0,
                                vector_threshold=settings.story_vector_threshold),
        )


class Placed(NamedTuple):
    enriched: Enriched  # with duplicate_of / duplicate_kind / duplicate_similarity / thread_id / story_id set
    near: NearVerdict
    thread: ThreadUpdate | None
    story: StoryUpdate


class Expired(NamedTuple):
    keys: int  # state keys forgotten
    stories: tuple[str, ...]  # ids of the stories forgotten: their end is to be announced


# A publication time this far after the fetch is a broken source clock: the
# item counts as published when it was fetched (the ingest edge refuses what
# lies a day beyond its own clock; this holds for any producer).
MAX_PUBLISHED_AFTER_FETCH_S = 24 * 3600.0


def event_time(raw: RawArticle | RawTickerItem) -> float:
    """When the item happened, for every window: publication time, else fetch time."""
    fetched = raw.fetched_at.timestamp()
    if raw.published_at is None:
        return fetched
    return min(raw.published_at.timestamp(), fetched + MAX_PUBLISHED_AFTER_FETCH_S)


class Placement:
    def __init__(
        self,
        config: PlacementConfig = PlacementConfig(),
        state: dict[str, MutableMapping[str, Any]] | None = None,
    ) -> None:
        state = state if state is not None else {name: {} for name in STATE_TABLES}
        self.config = config
        self.near = NearDupIndex(config.near, state["near_bands"], state["near_items"], state["near_common"])
        self.threads = Threads(config.threads, state["threads"])
        self.stories = Stories(config.stories, state["stories"])

    def place(self, enriched: Enriched, exact_of: str | None) -> Placed:
        """Near-duplicate verdict, thread and story of one item (in stream order).

        ``exact_of`` is the exact-dedup verdict (the first item with the same
        content hash). Re-placing an item that is still in the state gives
        the same answer and creates nothing (after a worker restart).
        """
        raw = enriched.raw
        at = event_time(raw)
        near, _writes = self.near.check_and_add(
            raw.id, raw.kind, enriched.enrichment.normalized_text, at, exact_of=exact_of, source=raw.source
        )
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
            entities=entity_keys(enriched.enrichment.entities),
            topics=topic_codes(enriched.enrichment.topics),
            vector=story_vector(enriched.enrichment),
        )
        duplicate_of = near.duplicate_of if near.duplicate_of != raw.id else None
        update = {
            "duplicate_of": duplicate_of,
            "duplicate_kind": None if duplicate_of is None else ("exact" if exact_of is not None else "near"),
            "duplicate_similarity": None if duplicate_of is None else round(near.similarity, 4),
            "thread_id": thread.thread_id if thread else None,
            "story_id": story.story_id,
        }
        placed = enriched.model_copy(update={"enrichment": enriched.enrichment.model_copy(update=update)})
        return Placed(placed, near, thread, story)

    def expire(self, now: float) -> Expired:
        """Forget everything older than its window (``now`` in event time): how many keys went, and which stories."""
        removed = sum(1 for _ in self.near.expire(now))
        removed += sum(1 for _ in self.threads.expire(now))
        stories = []
        for key in self.stories.expire(now):
            removed += 1
            if (story_id := Stories.story_of_key(key)) is not None:
                stories.append(story_id)
        return Expired(removed, tuple(stories))


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


def story_vector(enrichment: Any) -> Any:
    """What stage 3 compares items by: the item's vector centred on its language (None without a vector)."""
    if enrichment.embedding is None:
        return None
    return centred(int8_vector(enrichment.embedding.vector), enrichment.language)

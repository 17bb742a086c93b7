"""Exact-duplicate memory: which item first carried a content hash, for how long.

This is the pure part: a mapping from dedup key to ``FirstSeen`` with a
time-to-live. The worker keeps the mapping in a changelog-backed Faust table
(so a restarted or rebalanced worker recovers it) and writes the changelog
itself, see :mod:`newsstream.worker.app`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import NamedTuple

from newsstream.contract.models import EnrichedArticle, EnrichedTickerItem


class FirstSeen(NamedTuple):
    item_id: str
    seen_at: float  # event time of the first item (epoch seconds): windows run on event time
    partition: int  # partition of the keyed-by-content topic: where its changelog lives

    @classmethod
    def from_stored(cls, value: object) -> "FirstSeen":
        # Changelog values round-trip through JSON as lists.
        item_id, seen_at, partition = value  # type: ignore[misc]
        return cls(str(item_id), float(seen_at), int(partition))


class Verdict(NamedTuple):
    first_id: str | None  # None when this item is the first of its content
    claimed: bool  # True when the caller must persist (key -> FirstSeen) to the changelog


def check_and_claim(
    state: MutableMapping[str, object], key: str, item_id: str, partition: int, now: float, ttl_s: float
) -> tuple[Verdict, FirstSeen | None]:
    """Decide whether ``item_id`` duplicates an earlier item, claiming the key if not.

    ``now`` is the item's event time (:func:`newsstream.dedup.placement.event_time`),
    in the worker as in the offline replay, so both give the same verdicts.

    Re-processing after a crash sees its own claim and is not a duplicate of
    itself. An entry older than the TTL is forgotten: the item becomes the new
    first of its content.
    """
    stored = state.get(key)
    if stored is not None:
        first = FirstSeen.from_stored(stored)
        if now - first.seen_at <= ttl_s:
            return Verdict(None if first.item_id == item_id else first.item_id, False), None
    entry = FirstSeen(item_id, now, partition)
    state[key] = list(entry)
    return Verdict(None, True), entry


def expired_keys(
    state: MutableMapping[str, object], stream_time: Mapping[int, float], ttl_s: float
) -> Iterator[tuple[str, int]]:
    """Keys past their TTL, with their partition.

    ``stream_time`` maps each (actively owned) partition to its "now": the
    newest event time seen there. Keys of other partitions are left alone.
    """
    for key, value in list(state.items()):
        try:
            entry = FirstSeen.from_stored(value)
        except (TypeError, ValueError):
            continue  # not ours to judge; a malformed entry must not stop expiry of the rest
        now = stream_time.get(entry.partition)
        if now is not None and now - entry.seen_at > ttl_s:
            yield key, entry.partition


def dedup_key(enriched: EnrichedArticle | EnrichedTickerItem) -> str:
    """Key of the exact-dedup state: articles and ticker lines never match each other."""
    return f"{enriched.kind}:{enriched.enrichment.content_hash}"


def partition_for(content_key: str, partitions: int) -> int:
    """Partition of a content key (``kind:hexdigest``): its digest is already uniform."""
    digest = content_key.rpartition(":")[2]
    return int(digest[:8], 16) % partitions


def mark_duplicate(
    enriched: EnrichedArticle | EnrichedTickerItem, first_id: str | None
) -> EnrichedArticle | EnrichedTickerItem:
    """The same event marked as an exact copy of ``first_id`` (None: it is the first of its content)."""
    if first_id is None or first_id == enriched.id:
        return enriched
    update = {"duplicate_of": first_id, "duplicate_kind": "exact", "duplicate_similarity": 1.0}
    return enriched.model_copy(update={"enrichment": enriched.enrichment.model_copy(update=update)})

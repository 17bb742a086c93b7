"""The worker's changelogs, outside faust's own table machinery.

Writing: :class:`ChangelogWrites` shows a faust table's data as a plain
mapping whose writes go to the changelog once per batch. The pure state
machines of stage 3 (:mod:`newsstream.dedup.placement`) write to plain
mappings; the wrapper keeps those writes in memory at once (reads see them)
and collects the keys that changed; :meth:`ChangelogWrites.drain` then gives
the last value of each key once, for the worker to send. A story that takes
50 members in one batch costs one changelog record, not 50, and hot keys
(document counts) likewise. The worker sends the records itself (awaited,
like its output: see ``flush_placement_state`` in :mod:`newsstream.worker.app`
for why not faust's ``send_changelog``).

Reading: a table's changelog read directly, to complete a faust recovery
(:class:`ChangelogTail`): the embedded Tansu broker reports a partition's end
as the start of its last batch, and faust's recovery trusts that.
:func:`read_changelog` reads the partitions to the highwater reported in
fetch responses, which is exact. Only Tansu needs it
(``NEWSSTREAM_CHANGELOG_TAIL_CHECK``, :func:`tail_check_wanted`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsstream.platform.kafka import cluster_id, require_bootstrap
from newsstream.platform.settings import Settings

log = logging.getLogger(__name__)


async def read_changelog(
    settings: Settings, topic: str, partitions: list[int], timeout_s: float = 120.0
) -> dict[str, object]:
    """The table state the changelog partitions describe: last write wins, tombstones delete."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=require_bootstrap(settings),
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **settings.kafka_client_kwargs(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        state: dict[str, object] = {}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} {partitions} to its end within {timeout_s:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batches.values():
                for record in records:
                    key = orjson.loads(record.key)
                    if record.value is None:
                        state.pop(key, None)
                    else:
                        state[key] = orjson.loads(record.value)
            done = True
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    done = False
            if done:
                return state
    finally:
        await consumer.stop()


async def add_missing_entries(
    settings: Settings, topic: str, partitions: list[int], table: MutableMapping[str, object]
) -> int:
    """Add to ``table`` the changelog entries it lacks; returns how many were added."""
    added = 0
    for key, value in (await read_changelog(settings, topic, partitions)).items():
        if key not in table:
            table[key] = value
            added += 1
    return added


async def sync_with_changelog(
    settings: Settings, topic: str, partitions: list[int], table: MutableMapping[str, object]
) -> int:
    """Make ``table`` exactly the state the changelog partitions describe; returns how many keys changed.

    For tables whose values change (stage 3's near-dup index, threads and
    stories), a stale value is as wrong as a missing key. ``table`` must hold
    the keys of ``partitions`` only (stage 3's tables have one partition).
    """
    state = await read_changelog(settings, topic, partitions)
    changed = 0
    for key in [k for k in table if k not in state]:
        del table[key]
        changed += 1
    for key, value in state.items():
        if table.get(key) != value:
            table[key] = value
            changed += 1
    return changed


_DELETED = object()


class ChangelogWrites(MutableMapping[str, Any]):
    """``data()`` returns the live mapping (a faust table's ``.data``: created lazily by faust)."""

    def __init__(self, data: Callable[[], MutableMapping[str, Any]]) -> None:
        self._data = data
        self._changed: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value
        self._changed[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]
        self._changed[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __contains__(self, key: object) -> bool:
        return key in self._data()

    def get(self, key: str, default: Any = None) -> Any:
        return self._data().get(key, default)

    @property
    def pending(self) -> int:
        return len(self._changed)

    def drain(self) -> list[tuple[str, Any | None]]:
        """(key, latest value) of each key changed since the last drain; value None: deleted."""
        changed, self._changed = self._changed, {}
        return [(key, None if value is _DELETED else value) for key, value in changed.items()]


# Tansu's cluster id unless started with another (--kafka-cluster-id): what the embedded broker reports.
TANSU_CLUSTER_ID = "tansu_cluster"


def tail_check_wanted(mode: str, cluster_id: str | None) -> bool:
    """Whether :class:`ChangelogTail` re-reads the changelogs (``NEWSSTREAM_CHANGELOG_TAIL_CHECK``).

    ``auto``: on for Tansu, recognised by its cluster id, and when the broker
    does not say who it is (a wasted re-read is slow, a missed one is wrong);
    off for any other cluster (Apache Kafka reports the partition end right).
    """
    if mode != "auto":
        return mode == "on"
    return cluster_id is None or cluster_id == TANSU_CLUSTER_ID


async def tail_check_enabled(settings: Settings) -> bool:
    """Resolve ``NEWSSTREAM_CHANGELOG_TAIL_CHECK`` for this broker, saying so in one line."""
    mode = settings.changelog_tail_check
    cluster = await cluster_id(settings) if mode == "auto" else None
    enabled = tail_check_wanted(mode, cluster)
    log.info("changelog tail check %s (NEWSSTREAM_CHANGELOG_TAIL_CHECK=%s%s)", "on" if enabled else "off", mode,
             f", cluster id {cluster}" if mode == "auto" else "")
    return enabled


class ChangelogTail:
    """Completes faust's recovery of a table from the tail of its changelog, once per assignment.

    Tansu answers ListOffsets with the start of a partition's last batch, so
    faust's recovery stops short of the records after it; on Apache Kafka it
    reads everything. Before a stage handles anything after an assignment,
    the owned changelog partitions are read to the fetch highwater (which is
    right on both) and what recovery missed is put right. Without this a
    restarted worker on the embedded broker could miss a duplicate.

    The re-read costs about as much as faust's recovery itself (~0.9 s per
    100,000 keys here), so with ``enabled=False`` (Apache Kafka, see
    :func:`tail_check_wanted`) newly assigned partitions are only noted.
    """

    def __init__(self, settings: Settings, assignor: Any, *, enabled: bool = True) -> None:
        self.settings = settings
        self.assignor = assignor  # faust's: which changelog partitions this worker owns
        self.enabled = enabled
        self._checked: set[tuple[str, int]] = set()

    def forget(self) -> None:
        """A new assignment: every owned partition is checked again."""
        self._checked.clear()

    async def repair(self, tables: list[Any], sync: bool = False) -> bool:
        """``sync=False``: add missing keys (exact dedup: claims never change);
        ``sync=True``: make the table equal to its changelog (stage 3: values change).
        True when a newly assigned partition was seen (state derived from the
        tables must then be rebuilt), whether or not it was re-read."""
        checked = False
        for table in tables:
            changelog = table.changelog_topic.get_topic_name()
            owned = {tp.partition for tp in self.assignor.assigned_actives() if tp.topic == changelog}
            unchecked = sorted(p for p in owned if (changelog, p) not in self._checked)
            if not unchecked:
                continue
            if self.enabled:
                fix = sync_with_changelog if sync else add_missing_entries
                changed = await fix(self.settings, changelog, unchecked, table.data)
                if changed:
                    log.warning("%s: %d entries were missing or stale after recovery and were fixed from the changelog",
                                table.name, changed)
            self._checked.update((changelog, p) for p in unchecked)  # after the re-read: a failed one is tried again
            checked = True
        return checked

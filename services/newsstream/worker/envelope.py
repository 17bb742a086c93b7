"""Micro-batch envelopes for the worker's internal by-content topic. Pure: no Kafka here.

Stage 1 of the worker enriches items one by one but ships them to stage 2 in
envelopes: one Kafka message per target partition per batch, holding many
items. faust spends ~100 µs of its own on every event it delivers; stage 2
pays that once per envelope instead of once per item.

An envelope is newline-separated lines, one per item:
``orjson([content_key, item_id, kind, event_time, raw_topic, raw_partition, raw_offset])
+ b"\\t" + enriched event JSON``. Neither orjson output contains a raw tab or
newline (JSON escapes them), so splitting on the first tab of each line is
unambiguous. The header carries what the next stages need without decoding
the event: the item's event time (its stream-time windows) and where stage 1
read it (the raw record's coordinates, so that a dead letter of stage 2 or 3
points at a record that can be re-driven). A header without them (written by
an older worker) still reads, as ``None``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

import orjson

# Well under Kafka's default 1 MB message limit, whatever the broker.
MAX_ENVELOPE_BYTES = 512 * 1024


class Origin(NamedTuple):
    """Where stage 1 read an item: its raw record."""

    topic: str
    partition: int
    offset: int


class EnvelopeItem(NamedTuple):
    content_key: str
    item_id: str
    kind: str
    value: bytes  # the enriched event, as stage 1 serialised it
    line: bytes  # the whole line, for a dead letter
    event_time: float | None = None  # epoch seconds (dedup.placement.event_time); None from an older worker
    origin: Origin | None = None  # the raw record; None from an older worker


class EnvelopeBuilder:
    """Collects lines per partition; :meth:`drain` yields (partition, envelope bytes)."""

    def __init__(self, max_bytes: int = MAX_ENVELOPE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lines: dict[int, list[bytes]] = defaultdict(list)
        self._sizes: dict[int, int] = defaultdict(int)
        self._full: list[tuple[int, bytes]] = []

    def add(self, partition: int, content_key: str, item_id: str, kind: str, value: bytes,
            *, event_time: float | None = None, origin: Origin | None = None) -> None:
        header = [content_key, item_id, kind, event_time, *(origin or (None, None, None))]
        line = orjson.dumps(header) + b"\t" + value
        if len(line) > self.max_bytes:
            # The caller turns this into a dead letter for this one item.
            raise ValueError(f"enriched item is {len(line)} bytes, more than an envelope may hold ({self.max_bytes})")
        if self._lines[partition] and self._sizes[partition] + len(line) + 1 > self.max_bytes:
            self._full.append((partition, b"\n".join(self._lines.pop(partition))))
            self._sizes[partition] = 0
        self._lines[partition].append(line)
        self._sizes[partition] += len(line) + 1

    def drain(self) -> Iterator[tuple[int, bytes]]:
        full, self._full = self._full, []
        yield from full
        for partition, lines in sorted(self._lines.items()):
            if lines:
                yield partition, b"\n".join(lines)
        self._lines.clear()
        self._sizes.clear()


def read_envelope(envelope: bytes) -> Iterator[EnvelopeItem | tuple[bytes, Exception]]:
    """Items in order; a line that cannot be read comes back as (line, error)."""
    for line in envelope.split(b"\n"):
        try:
            header, sep, value = line.partition(b"\t")
            if not sep:
                raise ValueError("envelope line without a tab separator")
            content_key, item_id, kind, *optional = orjson.loads(header)
            event_time = optional[0] if optional else None
            origin = Origin(*optional[1:4]) if len(optional) >= 4 and optional[1] is not None else None
            yield EnvelopeItem(content_key, item_id, kind, value, line, event_time, origin)
        except Exception as exc:
            yield line, exc

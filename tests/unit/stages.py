"""The worker's stages in process: fake faust tables, faust-like events and an output that records.

Enough to drive :class:`~newsstream.worker.enrich_stage.EnrichStage`,
:class:`~newsstream.worker.dedup_stage.DedupStage` and
:class:`~newsstream.worker.placement_stage.PlacementStage` without a broker;
dead letters are built by the real :class:`~newsstream.worker.delivery.Output`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

from newsstream.contract import topics, wire
from newsstream.contract.models import DeadLetter
from newsstream.worker.delivery import Output


class Table:
    """What the stages use of a faust table: its data and its changelog topic's name."""

    def __init__(self, name: str) -> None:
        self.name, self.data = name, {}
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"changelog-{name}")


class Sent(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None


class RecordingOutput(Output):
    """An :class:`Output` whose records are kept in ``sent`` instead of produced."""

    def __init__(self) -> None:
        super().__init__(app=None)
        self.sent: list[Sent] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.sent.append(Sent(topic, key, value, partition))

    def to(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def dead_letters(self) -> list[DeadLetter]:
        return [wire.loads_dead_letter(s.value) for s in self.to(topics.DEAD_LETTERS) if s.value is not None]


async def _no_repair(*args: Any, **kwargs: Any) -> bool:
    return False


NO_TAIL: Any = SimpleNamespace(repair=_no_repair)  # a changelog tail with nothing to put right


def event(topic: str, partition: int, offset: int, value: bytes, key: bytes | None = None) -> Any:
    """A faust event as the stages read it (``event.message``)."""
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=offset, value=value, key=key))

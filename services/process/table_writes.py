"""A faust table's data seen as a plain mapping whose writes go to the changelog once per batch.

The pure state machines of stage 3 (:mod:`newsstream.process.placement`)
write to plain mappings. Wrapping a table in :class:`ChangelogWrites` keeps
those writes in memory at once (reads see them) and collects the keys that
changed; :meth:`ChangelogWrites.drain` then gives the last value of each
key once, for the worker to send. A story that takes 50 members in one batch
costs one changelog record, not 50, and hot keys (document counts) likewise.

No faust import: the worker passes the table's data and sends the records
itself (awaited, like its output: see ``flush_placement_state`` in
:mod:`newsstream.process.app` for why not faust's ``send_changelog``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["ChangelogWrites"]

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

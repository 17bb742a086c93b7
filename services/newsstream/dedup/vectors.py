"""The nearest stories by meaning: an index of the live stories' profile vectors. Pure: no Kafka here.

Stage 3 finds candidate stories for an item by shared words (the term
postings of :mod:`newsstream.dedup.stories`) and, here, by the cosine of
sentence vectors, which finds the same event told in other words or another
language. Each story contributes the vectors of its profiles (its founder and
its newest members, int8, 384 bytes each).

The index is derived state, like the near-duplicate bands: rebuilt from the
stories' profiles after a restart, never changelogged. It is usearch's HNSW
over int8 vectors; up to ``exact_below`` vectors a query scans them all
(exact, and the same answer whatever order the vectors were added in, so a
restarted worker places items exactly as before); beyond, the graph answers
in well under a millisecond at 100,000 vectors (``bench/dedup.py``,
``bench/vector_recall.py``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import numpy as np
from usearch.index import Index


def int8_vector(encoded: str) -> np.ndarray:
    """An int8 vector from its base64 text (the enriched event's ``embedding.vector``, an older story profile's)."""
    return np.frombuffer(base64.b64decode(encoded), dtype=np.int8)


# Base85 as Python's base64.b85encode writes it (RFC 1924's alphabet: no quote,
# no backslash, so JSON carries it unescaped): 5 characters per 4 bytes, 480
# for a 384-byte vector instead of base64's 512. Vectorised here because the
# standard library's b85 is pure Python (50 µs to encode and decode a vector).
_B85 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~", np.uint8)
_B85_VALUE = np.full(256, 255, np.uint8)
_B85_VALUE[_B85] = np.arange(85, dtype=np.uint8)
_B85_WEIGHTS = np.array([85**4, 85**3, 85**2, 85, 1], dtype=np.uint64)


def b85_text(data: bytes) -> str:
    """``base64.b85encode(data).decode()``, fast."""
    pad = -len(data) % 4
    words = np.frombuffer(data + b"\0" * pad, dtype=">u4").astype(np.uint64)
    digits = (words[:, None] // _B85_WEIGHTS) % 85
    text = _B85[digits].tobytes()
    return text[: len(text) - pad].decode("ascii")


def b85_bytes(text: str) -> bytes:
    """``base64.b85decode(text)``, fast; ValueError on a character or a group out of range."""
    raw = text.encode("ascii")
    pad = -len(raw) % 5
    values = _B85_VALUE[np.frombuffer(raw + b"~" * pad, np.uint8)]
    if (values == 255).any():
        raise ValueError("not base85 text")
    words = values.reshape(-1, 5).astype(np.uint64) @ _B85_WEIGHTS
    if (words > 0xFFFFFFFF).any():
        raise ValueError("base85 group out of range")
    data = words.astype(">u4").tobytes()
    return data[: len(data) - pad]


def int8_vector_b85(encoded: str) -> np.ndarray:
    """An int8 vector from its base85 text (a story profile's)."""
    return np.frombuffer(b85_bytes(encoded), dtype=np.int8)


def unit(vector: np.ndarray) -> np.ndarray:
    """float32, L2-normalised (again, after int8 quantisation)."""
    v = vector.astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-6)


class VectorIndex:
    def __init__(self, dims: int = 384, exact_below: int = 20_000) -> None:
        self.dims = dims
        self.exact_below = exact_below
        self._index = self._new()
        self._next_key = 0
        self._keys: dict[str, dict[str, int]] = {}  # story id -> item id -> key
        self._story: dict[int, str] = {}  # key -> story id

    def _new(self) -> Index:
        # bench/vector_recall.py, real news vectors grown to a 100k window: the exact
        # nearest is among the answers 98.9% of the time at these expansions (99.2% at
        # 128/128), with an add of 0.30 ms instead of 0.69 (search 0.55 ms, 0.74).
        return Index(ndim=self.dims, metric="cos", dtype="i8", connectivity=16, expansion_add=64,
                     expansion_search=128)

    def __len__(self) -> int:
        return len(self._story)

    def holds(self, story_id: str, item_id: str) -> bool:
        return item_id in self._keys.get(story_id, ())

    def add(self, story_id: str, item_id: str, vector: np.ndarray) -> None:
        items = self._keys.setdefault(story_id, {})
        if item_id in items:
            return
        key = self._next_key
        self._next_key += 1
        self._index.add(key, vector)
        items[item_id] = key
        self._story[key] = story_id

    def keep_only(self, story_id: str, item_ids: Iterable[str]) -> None:
        """The story's profiles changed: drop the vectors of members no longer among them."""
        keep = set(item_ids)
        items = self._keys.get(story_id, {})
        for item_id in [i for i in items if i not in keep]:
            self._drop(items.pop(item_id))

    def remove_story(self, story_id: str) -> None:
        for key in self._keys.pop(story_id, {}).values():
            self._drop(key)

    def _drop(self, key: int) -> None:
        self._index.remove(key)
        del self._story[key]

    def clear(self) -> None:
        self._index = self._new()
        self._keys.clear()
        self._story.clear()

    def nearest(self, vector: np.ndarray, stories: int) -> list[tuple[str, float]]:
        """Up to ``stories`` (story id, best cosine of its profiles), best first."""
        if not self._story:
            return []
        count = min(len(self._story), stories * 4)  # a story has up to a handful of profiles
        found = self._index.search(vector, count, exact=len(self._story) <= self.exact_below)
        best: dict[str, float] = {}
        for key, distance in zip(found.keys.tolist(), found.distances.tolist()):
            story_id = self._story.get(int(key))
            if story_id is not None and story_id not in best:
                best[story_id] = 1.0 - float(distance)
        return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:stories]

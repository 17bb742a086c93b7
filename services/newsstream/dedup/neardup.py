"""Near-duplicate detection: MinHash LSH over word shingles of the normalised text. Pure: no Kafka here.

An item is a near-duplicate of an earlier one when the estimated Jaccard
similarity of their shingle sets (``shingle_words`` consecutive words of
:func:`newsstream.text.normalize.normalize_text` output, punctuation
dropped) reaches ``threshold``, and the earlier one was seen less than
``window_s`` before it.

State, like :mod:`newsstream.dedup.exact`, is plain mappings with
JSON-able values, so that the worker can keep them in changelog-backed faust
tables:

* ``bands``: LSH band key (``kind:b<band>:<hex digest of the band's rows>``) ->
  flat list ``[item_id, seen_at, item_id, seen_at, ...]``, oldest first (flat:
  one list per band instead of one per entry, a third less memory). A band key is a uniform digest;
  :func:`partition_for_band` routes it to a partition (the design of the
  partitioned index is in ``docs/dedup.md``).
* ``items``: item id -> ``[seen_at, kind, signature (base64 of bytes: the
  low 8 bits of each min-hash, see :func:`low8`),
  duplicate_of, similarity, matched id]``: the signature to verify candidates
  with, and the verdict once given, so that re-processing the same item after
  a crash returns the same answer instead of calling it a duplicate of itself.
  Trailing fields that say nothing are left out: an original is ``[seen_at,
  kind, signature]`` and a matched id equal to ``duplicate_of`` is dropped
  (:meth:`NearDupIndex.stored_verdict` reads both forms).
* ``common``: ``<kind code><digest of source and sentence>`` (``a`` or ``t``
  and 11 base64url characters of an 8-byte digest) -> ``[items (exact copies
  not counted) that carried it, last seen]``: per-source boilerplate sentences, left out of
  the shingles once ``boilerplate_min_items`` earlier originals carried them.
  The keys of state written before (``kind:<16 hex digits>``, the same digest)
  are still read, and moved to the short key when the sentence is next counted.

The MinHash signature comes from ``rensa`` (R-MinHash, Rust) by default;
``datasketch`` is supported for comparison (``bench/dedup.py`` measures both).
Both are deterministic across processes for a given ``(num_perm, seed)``: the
band keys two workers compute for one text are the same.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from newsstream.dedup.compact import whole_seconds

__all__ = [
    "NearDupConfig",
    "NearDupIndex",
    "NearVerdict",
    "band_keys",
    "common_key",
    "estimate_jaccard",
    "jaccard",
    "legacy_common_key",
    "low8",
    "lsh_params",
    "partition_for_band",
    "shingles",
    "signature",
    "tokens",
]

# Words of normalised text: letters and digits in any script. Punctuation and
# quote marks are not words, so an edit that only touches them is invisible.
_WORD_RE = re.compile(r"[^\W_]+")
# Sentence ends in normalised text (Arabic "؟" is "?" there; "،" is "," and does not end one).
_SENTENCE_END_RE = re.compile(r"[.!?…]+\s")


def tokens(normalized_text: str) -> list[str]:
    """The words of an already normalised text."""
    return _WORD_RE.findall(normalized_text)


def shingles(normalized_text: str, size: int = 3) -> set[str]:
    """Sets of ``size`` consecutive words; a text shorter than that is one shingle."""
    words = tokens(normalized_text)
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


# --------------------------------------------------------------------------
# LSH parameters
# --------------------------------------------------------------------------


def _integrate(f: Callable[[float], float], a: float, b: float, steps: int = 200) -> float:
    h = (b - a) / steps
    return sum(f(a + (i + 0.5) * h) for i in range(steps)) * h


def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising the weighted
    false-positive and false-negative probability mass around ``threshold``
    (the same criterion as datasketch's ``MinHashLSH``)."""
    best, best_err = (1, num_perm), math.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _integrate(lambda s, r=rows, b=bands: 1 - (1 - s**r) ** b, 0.0, threshold)
            fn = _integrate(lambda s, r=rows, b=bands: (1 - s**r) ** b, threshold, 1.0)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (bands, rows), err
    return best


# --------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------


def _rensa_signer(num_perm: int, seed: int) -> Callable[[Iterable[str]], array]:
    from rensa import RMinHash

    def sign(items: Iterable[str]) -> array:
        m = RMinHash(num_perm, seed)
        m.update(list(items))
        return array("I", m.digest())

    return sign


def _datasketch_signer(num_perm: int, seed: int) -> Callable[[Iterable[str]], array]:
    from datasketch import MinHash

    def sign(items: Iterable[str]) -> array:
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch([s.encode("utf-8") for s in items])
        return array("I", m.hashvalues.astype("uint32").tobytes())

    return sign


SIGNERS: dict[str, Callable[[int, int], Callable[[Iterable[str]], array]]] = {
    "rensa": _rensa_signer,
    "datasketch": _datasketch_signer,
}


def signature(items: Iterable[str], num_perm: int = 128, seed: int = 1, backend: str = "rensa") -> array:
    """MinHash signature (uint32 array of ``num_perm`` values) of a set of strings,
    as the library gives it; the index keeps and compares its :func:`low8`."""
    return SIGNERS[backend](num_perm, seed)(items)


# The index keeps the low 8 bits of each 32-bit min-hash (b-bit minwise
# hashing, Li and König 2010, with b = 8): 128 bytes a signature, a quarter
# of the 32-bit values, half of the 16-bit ones kept before. The low bits of a
# minimum are uniform (its high bits are not: a minimum over many hashes is
# small), so two *different* min-hashes agree in their low 8 bits with
# probability c = 1/256. A pair with Jaccard J then has equal slots with
# probability J + (1 - J) c, and :func:`estimate_jaccard` takes that chance
# out again: (matches/k - c) / (1 - c) is unbiased, with a standard deviation
# 0.4 % above the 32-bit estimator's 0.044 at J = 0.5. Measured over
# all 14.2 million pairs within three corpora of the shared data (docs/dedup.md):
# the 90 pairs at or above 0.5 with 16 bits are the same 90 with 8 bits but 3,
# whose exact Jaccard is 0.44 to 0.47. Values equal in 32 bits are equal in 8: no
# pair loses a shared band or an equal slot; a band whose rows differ shares a
# key by chance with probability at most 2**-8 per row (a spurious candidate,
# verified on the signature anyway).
SIGNATURE_DTYPE = np.dtype("u1")
_CHANCE_EQUAL = 1 / 256  # two different min-hashes equal in their low 8 bits


def low8(sig: Sequence[int] | array | np.ndarray) -> np.ndarray:
    """The signature as the index stores, bands and compares it: the low 8 bits of each value (uint8)."""
    values = sig if isinstance(sig, np.ndarray) else np.asarray(sig)
    # astype wraps integers: uint32 or uint16 -> uint8 keeps the low 8 bits.
    return values if values.dtype == SIGNATURE_DTYPE else values.astype(SIGNATURE_DTYPE)


def estimate_jaccard(a: Sequence[int] | array | np.ndarray, b: Sequence[int] | array | np.ndarray) -> float:
    """The MinHash estimate of the Jaccard similarity from the low 8 bits of each
    value: the fraction of equal positions, less the share expected by chance."""
    if len(a) != len(b) or not len(a):
        raise ValueError("signatures of different or zero length")
    # numpy: ~2 µs for 128 positions where a Python loop takes ~30 µs.
    va, vb = low8(a), low8(b)
    equal = int(np.count_nonzero(va == vb)) / len(va)
    # Four decimals: the estimate's own deviation is about 0.04, and the
    # verdict's similarity is stored and published.
    return round(max(0.0, (equal - _CHANCE_EQUAL) / (1 - _CHANCE_EQUAL)), 4)


def band_keys(sig: Sequence[int] | array | np.ndarray, bands: int, rows: int, namespace: str = "") -> list[str]:
    """One key per band: ``namespace:b<band>:<digest of the band's values>`` (their :func:`low8`)."""
    raw = low8(sig).tobytes()
    width = rows * SIGNATURE_DTYPE.itemsize
    return [
        f"{namespace}:b{band}:{hashlib.blake2b(raw[band * width : (band + 1) * width], digest_size=8).hexdigest()}"
        for band in range(bands)
    ]


def partition_for_band(band_key: str, partitions: int) -> int:
    """Partition of a band key: its digest is uniform, like a content hash."""
    return int(band_key.rpartition(":")[2][:8], 16) % partitions


def _pairs(entries: object) -> Iterator[tuple[str, float]]:
    """(item id, seen at) of a band's flat entry list ``[id, at, id, at, ...]``."""
    if not entries:
        return
    flat = list(entries)  # type: ignore[call-overload]
    for k in range(0, len(flat) - 1, 2):
        yield str(flat[k]), float(flat[k + 1])


def _flat(pairs: Iterable[tuple[str, float]]) -> list[object]:
    return [x for pair in pairs for x in pair]


# Boilerplate sentence keys: one letter for the kind, then the digest. The
# kind's whole name and the digest in hex, as state written before used
# (``article:<16 hex digits>``), took 11 more bytes a sentence (about 90 B an
# article of changelog).
_KIND_CODES = {"article": "a", "ticker": "t"}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


def common_key(kind: str, digest: bytes) -> str:
    """The ``common`` key of a sentence's 8-byte digest: ``a`` or ``t`` and 11 base64url characters."""
    code = _KIND_CODES.get(kind)
    if code is None:  # a kind without a code keeps the long form: never two kinds under one key
        return f"{kind}:{digest.hex()}"
    return code + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def legacy_common_key(key: str) -> str | None:
    """The key state written before the short keys held the same sentence under, None for a long key."""
    kind = _CODE_KINDS.get(key[:1])
    if kind is None or len(key) != 12:
        return None
    return f"{kind}:{base64.urlsafe_b64decode(key[1:] + '=').hex()}"


def _pack(sig: np.ndarray) -> str:
    return base64.b64encode(low8(sig).tobytes()).decode("ascii")


@functools.lru_cache(maxsize=50_000)
def _unpack(packed: str, num_perm: int) -> np.ndarray:
    # Cached: the same candidates are verified again and again while they are in the window.
    raw = base64.b64decode(packed)
    # Stored before signatures were cut to 8 bits (32-bit, then 16-bit
    # values): a running deployment's changelog stays readable until it expires.
    width = len(raw) // num_perm
    if width in (2, 4):
        return low8(np.frombuffer(raw, dtype=f"<u{width}"))
    return np.frombuffer(raw, dtype=SIGNATURE_DTYPE)


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NearDupConfig:
    threshold: float = 0.5  # estimated Jaccard of the shingle sets
    window_s: float = 48 * 3600.0  # how long an item can be matched
    num_perm: int = 128
    shingle_words: int = 3
    seed: int = 1
    backend: str = "rensa"
    # Texts with fewer words are not indexed: a three-word line shares its
    # only shingle with every line that says the same three words.
    min_words: int = 4
    # Short texts (ticker lines) use shorter shingles: one changed word in a
    # 15-word line removes 3 of 13 three-word shingles but only 2 of 14 pairs.
    short_text_words: int = 30
    short_shingle_words: int = 2
    # A sentence (5+ words) that already appeared in this many earlier
    # (not exactly duplicated) items of the same source is boilerplate of that source ("follow us on...")
    # and is left out of the shingles; 0 turns the filter off.
    boilerplate_min_items: int = 3
    boilerplate_min_sentence_words: int = 5
    # Weight of missed pairs against spurious candidates when choosing bands x
    # rows: candidates are verified on the signature anyway, so a spurious one
    # costs a comparison while a missed one is a missed duplicate. At 0.9 and a
    # 0.5 threshold this gives 32 bands of 4 rows: 99.9% of pairs with Jaccard
    # >= 0.55 share a band (25 x 5, the balanced choice: 95%).
    fn_weight: float = 0.9
    # Items kept per band key (the newest): bounds the candidates verified per item.
    max_band_entries: int = 32

    @cached_property
    def bands_rows(self) -> tuple[int, int]:
        return lsh_params(self.threshold, self.num_perm, fp_weight=1 - self.fn_weight, fn_weight=self.fn_weight)


class NearVerdict(NamedTuple):
    duplicate_of: str | None  # the first item this one copies (root of the match), None if original
    similarity: float  # estimated Jaccard with the matched item (0.0 when none)
    matched: str | None  # the item that matched (may itself be a near-duplicate of duplicate_of)


class StateWrite(NamedTuple):
    """A write the worker must also send to a changelog: (table, key, value or None)."""

    table: str  # "bands" or "items"
    key: str
    value: object


class NearDupIndex:
    """MinHash LSH with a time window over two mappings (see the module doc).

    The mappings default to dicts; the worker passes faust table data and
    sends the returned :class:`StateWrite` s to their changelogs.
    """

    def __init__(
        self,
        config: NearDupConfig = NearDupConfig(),
        bands: MutableMapping[str, object] | None = None,
        items: MutableMapping[str, object] | None = None,
        common: MutableMapping[str, object] | None = None,
    ) -> None:
        self.config = config
        self.bands: MutableMapping[str, object] = {} if bands is None else bands
        self.items: MutableMapping[str, object] = {} if items is None else items
        self.common: MutableMapping[str, object] = {} if common is None else common
        self._sign = SIGNERS[config.backend](config.num_perm, config.seed)
        self._bands, self._rows = config.bands_rows

    def signature_of(self, normalized_text: str) -> np.ndarray | None:
        """The text's signature as the index keeps it (:func:`low8`), None when it is too short to index."""
        words = tokens(normalized_text)
        if len(words) < self.config.min_words:
            return None
        size = self.config.short_shingle_words if len(words) < self.config.short_text_words else self.config.shingle_words
        return low8(self._sign(shingles(normalized_text, size)))

    # -- per-source boilerplate --------------------------------------------

    def _sentence_keys(self, kind: str, source: str, normalized_text: str) -> list[tuple[str, str]]:
        """(sentence, state key) for the sentences long enough to count as boilerplate."""
        out = []
        for sentence in _SENTENCE_END_RE.split(normalized_text):
            sentence = sentence.strip()
            if len(tokens(sentence)) >= self.config.boilerplate_min_sentence_words:
                digest = hashlib.blake2b(f"{source}\x1f{sentence}".encode(), digest_size=8).digest()
                out.append((sentence, common_key(kind, digest)))
        return out

    def _common_entry(self, key: str) -> tuple[object, str | None]:
        """The count of a sentence key, and the older key it is still stored under (None: under ``key``)."""
        entry = self.common.get(key)
        if entry is None:
            legacy = legacy_common_key(key)
            if legacy is not None and legacy in self.common:
                return self.common[legacy], legacy
        return entry, None

    def _without_boilerplate(self, sentences: list[tuple[str, str]], normalized_text: str, now: float) -> str:
        cfg = self.config
        common = set()
        for _sentence, key in sentences:
            entry, _ = self._common_entry(key)
            if entry is not None and entry[0] >= cfg.boilerplate_min_items and now - float(entry[1]) <= cfg.window_s:  # type: ignore[index]
                common.add(key)
        if not common:
            return normalized_text
        kept = " ".join(sentence for sentence, key in sentences if key not in common)
        # Nothing much left: the item *is* (mostly) its boilerplate; compare it whole.
        return kept if len(tokens(kept)) >= cfg.min_words else normalized_text

    def check_and_add(
        self,
        item_id: str,
        kind: str,
        normalized_text: str,
        now: float,
        exact_of: str | None = None,
        source: str | None = None,
    ) -> tuple[NearVerdict, list[StateWrite]]:
        """Decide whether the item near-duplicates an earlier one within the window, and index it.

        ``exact_of`` is the exact-dedup verdict: an exact copy is a duplicate of
        that item's root with similarity 1.0 and is not indexed (its signature
        is its first's). With ``source``, sentences that are boilerplate of that
        source are left out of the shingles. Idempotent per item id while the
        item is in the window.
        """
        stored = self.stored_verdict(item_id)
        if stored is not None:
            return stored, []
        if exact_of is not None:
            return NearVerdict(self.root_of(exact_of), 1.0, exact_of), []

        sentences: list[tuple[str, str]] = []
        text = normalized_text
        if source is not None and self.config.boilerplate_min_items:
            sentences = self._sentence_keys(kind, source, normalized_text)
            text = self._without_boilerplate(sentences, normalized_text, now)
        sig = self.signature_of(text)
        if sig is None:
            return NearVerdict(None, 0.0, None), []
        keys = band_keys(sig, self._bands, self._rows, kind)
        window = self.config.window_s
        best: tuple[float, float, str] | None = None  # (-similarity, seen_at, id): best first
        seen: set[str] = set()
        for key in keys:
            for cand_id, seen_at in _pairs(self.bands.get(key)):
                if cand_id in seen or cand_id == item_id or now - float(seen_at) > window:
                    continue
                seen.add(cand_id)
                cand = self.items.get(cand_id)
                if cand is None:
                    continue
                sim = estimate_jaccard(sig, _unpack(cand[2], self.config.num_perm))  # type: ignore[index]
                if sim >= self.config.threshold:
                    rank = (-sim, float(seen_at), cand_id)
                    if best is None or rank < best:
                        best = rank
        if best is None:
            verdict = NearVerdict(None, 0.0, None)
        else:
            verdict = NearVerdict(self.root_of(best[2]), -best[0], best[2])

        writes: list[StateWrite] = []
        for key in keys:
            entries = _flat((i, t) for i, t in _pairs(self.bands.get(key)) if now - t <= window)
            entries += (item_id, now)
            # The newest max_band_entries only: a template repeated all day (one
            # ticker formula) would otherwise put every item in the same bands and
            # make each new item verify against all of them (quadratic).
            entries = entries[-2 * self.config.max_band_entries :]
            self.bands[key] = entries
            writes.append(StateWrite("bands", key, entries))
        stamp = whole_seconds(now)  # one int object shared by the item and its sentence counts, not one per entry
        value: list[object] = [stamp, kind, _pack(sig)]
        if verdict.duplicate_of is not None:
            value += [verdict.duplicate_of, verdict.similarity]
            if verdict.matched != verdict.duplicate_of:
                value.append(verdict.matched)
        self.items[item_id] = value
        writes.append(StateWrite("items", item_id, value))
        # Exact copies never get here, so one text republished does not make its
        # sentences boilerplate; a near copy from the same source counts.
        if sentences:
            for key in dict.fromkeys(key for _, key in sentences):
                entry, legacy = self._common_entry(key)
                count = int(entry[0]) + 1 if entry is not None and now - float(entry[1]) <= self.config.window_s else 1  # type: ignore[index]
                counted = [count, stamp]
                self.common[key] = counted
                writes.append(StateWrite("common", key, counted))
                if legacy is not None:  # moved to the short key
                    del self.common[legacy]
                    writes.append(StateWrite("common", legacy, None))
        return verdict, writes

    def rebuild_bands(self) -> int:
        """Rebuild the band index from ``items``; returns the items indexed.

        The bands are a function of the stored signatures, so the worker keeps
        them in memory only and rebuilds them after it recovers ``items`` from
        its changelog: writing them would cost 32 changelog records per item
        (most of the stage's changelog traffic) for nothing a restart needs.
        """
        self.bands.clear()
        for at, item_id, kind, packed in sorted((float(v[0]), i, v[1], v[2]) for i, v in self.items.items()):  # type: ignore[index]
            sig = _unpack(packed, self.config.num_perm)
            for key in band_keys(sig, self._bands, self._rows, kind):
                entries = self.bands.get(key)
                self.bands[key] = [*(entries or ()), item_id, at][-2 * self.config.max_band_entries :]  # type: ignore[misc]
        return len(self.items)

    def stored_verdict(self, item_id: str) -> NearVerdict | None:
        """The verdict given to an item still in the window, None for an item not indexed.

        Reads the short forms (an original's ``[seen_at, kind, signature]``,
        no matched id when it is ``duplicate_of``) and the six fields that
        earlier versions wrote for every item.
        """
        stored = self.items.get(item_id)
        if stored is None:
            return None
        fields = list(stored)  # type: ignore[call-overload]
        duplicate_of = fields[3] if len(fields) > 3 else None
        similarity = float(fields[4]) if len(fields) > 4 else 0.0
        matched = fields[5] if len(fields) > 5 else duplicate_of
        return NearVerdict(duplicate_of, similarity, matched)

    def root_of(self, item_id: str) -> str:
        """The first item of a duplicate chain (the item itself when it is not a duplicate)."""
        stored = self.stored_verdict(item_id)
        if stored is not None and stored.duplicate_of:
            return str(stored.duplicate_of)
        return item_id

    def expire(self, now: float) -> Iterator[StateWrite]:
        """Drop everything older than the window; yields the deletions (value None) and rewrites."""
        window = self.config.window_s
        for item_id, value in list(self.items.items()):
            if now - float(value[0]) > window:  # type: ignore[index]
                del self.items[item_id]
                yield StateWrite("items", item_id, None)
        for key, entries in list(self.bands.items()):
            kept = _flat((i, t) for i, t in _pairs(entries) if now - t <= window)
            if not kept:
                del self.bands[key]
                yield StateWrite("bands", key, None)
            elif len(kept) != len(entries):  # type: ignore[arg-type]
                self.bands[key] = kept
                yield StateWrite("bands", key, kept)
        for key, value in list(self.common.items()):
            if now - float(value[1]) > window:  # type: ignore[index]
                del self.common[key]
                yield StateWrite("common", key, None)

    def __len__(self) -> int:
        return len(self.items)

"""Stable digests of text parts: the hashing under every id and content hash.

At the bottom of the package so that the page parser (thread ids) and the
contract (item ids, :mod:`newsstream.contract.ids`) share one function
without the text functions depending on the contract.
"""

from __future__ import annotations

import hashlib

_SEP = "\x1f"  # ASCII unit separator: cannot occur in the parts we join


def stable_hash(*parts: str | None, size: int = 16) -> str:
    """Hex blake2b digest of the parts (None and "" are distinct from each other)."""
    joined = _SEP.join("\x00" if p is None else p for p in parts)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=size).hexdigest()

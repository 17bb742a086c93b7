"""Compact JSON values for stage 3's changelogged state. Pure: no Kafka here."""

from __future__ import annotations

__all__ = ["whole_seconds"]


def whole_seconds(t: float) -> float:
    """A time as stored: a whole number of seconds as an int (``1523059591``, not
    ``1523059591.0`` in the JSON). Lossless: every reader takes ``float()`` of it."""
    return int(t) if isinstance(t, float) and t.is_integer() else t

"""Counts in words for the lines a person reads (summaries, status): "1 source", "3 articles"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it needs; ``plural`` for nouns that do not just take an "s"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"

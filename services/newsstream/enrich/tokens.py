"""Tokens with character offsets and cheap per-token normalisation.

Shared by training (``tools/build_models.py``) and run time, so that the features a model
was trained on are exactly the features it sees in the worker.
"""

from __future__ import annotations

import functools
import re

from newsstream.text.normalize import normalize_text

__all__ = ["TOKEN_RE", "tokens", "norm", "strip_clitics", "is_arabic"]

# A token is a run of letters/digits with their combining marks (Arabic
# diacritics, shadda), or a single punctuation character. Tatweel (U+0640) is
# a letter-modifier and stays inside the word.
TOKEN_RE = re.compile(r"[^\W_][\w\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u200c\u200d]*|[^\w\s]")
_ARABIC_RE = re.compile(r"[\u0600-\u06ff]")

# Proclitics stripped before gazetteer look-up, longest first: conjunction
# و/ف, prepositions ب/ل/ك, the article ال and their combinations.
_PREFIXES = ("وبال", "فبال", "وكال", "وال", "بال", "فال", "كال", "ولل", "فلل", "لل", "ال", "وب", "ول", "وك", "فب", "فل",
             "و", "ب", "ل", "ف", "ك")


def tokens(text: str) -> list[tuple[str, int, int]]:
    """``(token, start, end)`` for every token of ``text`` (end exclusive)."""
    return [(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


@functools.lru_cache(maxsize=200_000)
def norm(token: str) -> str:
    """normalize_text of one token (cached: news text repeats its words)."""
    return normalize_text(token)


@functools.lru_cache(maxsize=200_000)
def strip_clitics(word: str) -> tuple[str, ...]:
    """Candidate stems of a *normalised* word: the word itself first, then the
    word without each proclitic sequence that leaves at least 2 letters."""
    out = [word]
    for p in _PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 2:
            out.append(word[len(p):])
    return tuple(out)


def is_arabic(text: str) -> bool:
    return _ARABIC_RE.search(text) is not None


# --------------------------------------------------------------------------
# Skeleton: a normalised view of a text with a map back to its offsets
# --------------------------------------------------------------------------

_DROP = set(map(chr, range(0x064B, 0x0660))) | {"\u0670", "\u0640", "\u200c", "\u200d", "\u200e", "\u200f"}
_ONE = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي", "«": '"', "»": '"',
                      "“": '"', "”": '"', "،": ",", "؛": ";", "؟": "?", "ی": "ي", "ک": "ك", "\n": "\n"})


_DROP_RE = re.compile("[" + "".join(sorted(_DROP)) + "]+")


@functools.lru_cache(maxsize=64)
def skeleton(text: str) -> tuple[str, list[int]]:
    """``(s, pos)``: ``text`` without Arabic diacritics/tatweel, alef, yeh and
    teh-marbuta forms unified and quote marks as ``"``; ``pos[i]`` is the offset
    in ``text`` of ``s[i]`` (``pos[len(s)] == len(text)``). Regexes run on ``s``
    and report offsets into the original through ``pos``. (Cached: quotes and
    times both ask for the same text.)"""
    pos: list[int] = []
    parts: list[str] = []
    last = 0
    for m in _DROP_RE.finditer(text):
        parts.append(text[last:m.start()])
        pos.extend(range(last, m.start()))
        last = m.end()
    parts.append(text[last:])
    pos.extend(range(last, len(text)))
    pos.append(len(text))
    return "".join(parts).translate(_ONE), pos

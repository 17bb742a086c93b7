"""Gazetteer: canonical entities (countries with ISO codes, capitals and major
cities, curated public figures and organisations) and a fast longest-match
finder over tokens, tolerant of Arabic proclitics (و، ب، ل، ال ...).

The index ``data/gazetteer_index.json.gz`` is built by
``python tools/build_models.py gazetteer`` from the shared data
(countries_ar_en, cities15000_ar_names) and the hand-written
``data/curated_entities.json``; see ``data/gazetteer_index.md``.
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
from pathlib import Path

from newsstream.enrich.tokens import norm, strip_clitics, tokens

__all__ = ["Gazetteer", "get_gazetteer", "alias_key"]

DATA = Path(__file__).parent / "data"
INDEX_FILE = DATA / "gazetteer_index.json.gz"


def alias_key(name: str) -> str:
    """Normalised tokens of a name joined by one space (the index key)."""
    return " ".join(norm(t) for t, _, _ in tokens(name))


def _skip_letters(orig: str, k: int) -> int:
    """Offset in ``orig`` after its first ``k`` letters (combining marks and
    tatweel do not count): maps a stripped normalised prefix back to the text."""
    seen = 0
    for i, ch in enumerate(orig):
        if seen == k and not ("\u064b" <= ch <= "\u065f" or ch in "\u0640\u0670"):
            return i
        if not ("\u064b" <= ch <= "\u065f" or ch in "\u0640\u0670"):
            seen += 1
    return len(orig)


# «للأمم» is ل + الأمم with the article's alef elided: it is looked up as
# «الامم». The mention keeps «لل» (there is no clean letter to cut at); only a
# conjunction before it is stripped. Added here, not in text.strip_clitics:
# the tagger's features come from strip_clitics and the model was trained on them.
_LAM_ARTICLE = ("ولل", "فلل", "لل")


@functools.lru_cache(maxsize=200_000)
def _candidates(word: str) -> tuple[tuple[str, int], ...]:
    """``(form, letters stripped)`` look-up forms of a normalised word:
    :func:`strip_clitics`, plus the article restored after a لل prefix."""
    out = [(c, len(word) - len(c)) for c in strip_clitics(word)]
    for p in _LAM_ARTICLE:
        if word.startswith(p) and len(word) - len(p) >= 2:
            out.append(("ال" + word[len(p):], len(p) - 2))
            break
    return tuple(out)


class Gazetteer:
    def __init__(self, index: dict) -> None:
        self.version: str = index["version"]
        self.entities: dict[str, dict] = index["entities"]
        self.aliases: dict[str, list] = index["aliases"]  # key -> [id, kind]
        self.nisba: dict[str, str] = index["nisba"]  # key -> iso2
        self.first: dict[str, int] = {}
        for key in self.aliases:
            parts = key.split(" ")
            if len(parts) > self.first.get(parts[0], 0):
                self.first[parts[0]] = len(parts)

    @classmethod
    def load(cls, path: Path = INDEX_FILE) -> "Gazetteer":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def find(self, toks: list[tuple[str, int, int]], text: str) -> list[dict]:
        """Longest, leftmost alias matches: ``{start, end, text, id, kind}``
        (kind ``name`` or ``role``), char offsets into ``text``."""
        ntoks = [norm(t) for t, _, _ in toks]
        first, aliases = self.first, self.aliases
        out = []
        i, n = 0, len(toks)
        while i < n:
            hit = None
            for cand, stripped in _candidates(ntoks[i]):
                maxlen = first.get(cand)
                if not maxlen:
                    continue
                for L in range(min(maxlen, n - i), 0, -1):
                    key = cand if L == 1 else cand + " " + " ".join(ntoks[i + 1:i + L])
                    ent = aliases.get(key)
                    if ent is not None:
                        if hit is None or L > hit[0]:
                            hit = (L, stripped, ent)
                        break
            if hit is None:
                i += 1
                continue
            L, stripped, (eid, kind) = hit
            tok, s, _ = toks[i]
            if stripped:
                s += _skip_letters(tok, stripped)
            e = toks[i + L - 1][2]
            out.append({"start": s, "end": e, "text": text[s:e], "id": eid, "kind": kind})
            i += L
        return out

    def link(self, surface: str) -> str | None:
        """Canonical id of a name (e.g. a model-found span), or None."""
        key = alias_key(surface)
        parts = key.split(" ")
        for cand, _ in _candidates(parts[0]) if parts and parts[0] else ():
            ent = self.aliases.get(" ".join([cand, *parts[1:]]))
            if ent is not None and ent[1] == "name":
                return ent[0]
        return None

    def nisba_countries(self, ntoks: list[str]) -> list[str]:
        nis = self.nisba
        return [nis[t] for t in ntoks if t in nis]


_gaz: Gazetteer | None = None
_lock = threading.Lock()


def get_gazetteer() -> Gazetteer:
    global _gaz
    if _gaz is None:
        with _lock:
            if _gaz is None:
                _gaz = Gazetteer.load()
    return _gaz

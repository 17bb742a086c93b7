"""Gazetteer: canonical entities (countries with ISO codes, capitals and major
cities, curated public figures and organisations) and a fast longest-match
finder over tokens, tolerant of Arabic proclitics (و، ب، ل، ال ...).

The index ``data/gazetteer_index.json.gz`` is built by
``python -m newsstream.enrich.build gazetteer`` from the shared data
(countries_ar_en, cities15000_ar_names) and the hand-written
``data/curated_entities.json``; see ``data/gazetteer_index.md``.
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
from collections import Counter
from pathlib import Path

from newsstream.enrich.tokens import norm, strip_clitics, tokens

__all__ = ["Gazetteer", "get_gazetteer", "alias_key", "build_index"]

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


# --------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------

def _common_words(shared: Path, min_count: int = 3) -> set[str]:
    """Normalised words that ANERcorp uses often and never inside an entity:
    city 'names' that are really common words (GeoNames noise) are dropped."""
    o: Counter[str] = Counter()
    ent: set[str] = set()
    with open(shared / "anercorp" / "train.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            for t, g in zip(r["tokens"], r["tags"]):
                w = norm(t)
                if g == "O":
                    o[w] += 1
                else:
                    ent.add(w)
    return {w for w, c in o.items() if c >= min_count and w not in ent}


def build_index(shared: Path) -> dict:
    import time

    g = shared / "arabic_gazetteers"
    curated = json.loads((DATA / "curated_entities.json").read_text(encoding="utf-8"))
    common = _common_words(shared)
    entities: dict[str, dict] = {}
    aliases: dict[str, list] = {}

    def add_alias(name: str, eid: str, kind: str = "name", check: bool = False) -> None:
        key = alias_key(name)
        if not key or len(key) < 2:
            return
        if check and (" " not in key and (key in common or len(key) < 3)):
            return
        aliases.setdefault(key, [eid, kind])

    for ent in curated["entities"]:
        e = {k: ent[k] for k in ("type", "name_en", "name_ar") if k in ent}
        if "country" in ent:
            e["country"] = ent["country"]
        if "region" in ent:
            e["region"] = ent["region"]
        entities[ent["id"]] = e
        for a in ent.get("aliases", []):
            add_alias(a, ent["id"])
        for a in ent.get("roles", []):
            add_alias(a, ent["id"], "role")

    countries = [json.loads(l) for l in open(g / "countries_ar_en.jsonl", encoding="utf-8")]
    capitals = []
    for c in countries:
        eid = f"country:{c['iso2']}"
        entities[eid] = {"type": "LOC", "name_en": c["name_en"], "name_ar": c["name_ar"], "iso2": c["iso2"],
                         "iso3": c["iso3"], "country": c["iso2"], "region": c["region"], "subregion": c["subregion"]}
        for n in (c["name_ar"], c["official_ar"], c["name_ar_umpirsky"], c["name_en"], c["official_en"]):
            if n:
                add_alias(n, eid)
        for cap in c["capitals"]:
            capitals.append((c["iso2"], cap))
    # Common Arabic spellings the sources lack.
    for name, iso in (("أميركا", "US"), ("أمريكا", "US"), ("الولايات المتحدة الأميركية", "US"), ("بريطانيا", "GB"),
                      ("إيران", "IR"), ("سورية", "SY"), ("الإمارات", "AE"), ("فلسطين", "PS"), ("الصين", "CN"),
                      ("روسيا", "RU"), ("تركيا", "TR"), ("إسرائيل", "IL"), ("لبنان", "LB"), ("اليمن", "YE")):
        add_alias(name, f"country:{iso}")
    for iso, cap in capitals:
        eid = f"geonames:{cap['geonameid']}"
        entities.setdefault(eid, {"type": "LOC", "name_en": cap["name_en"], "name_ar": (cap["names_ar"] or [""])[0], "country": iso})
        for n in cap["names_ar"][:4]:
            add_alias(n, eid, check=True)
        add_alias(cap["name_en"], eid, check=True)
    for line in open(g / "cities15000_ar_names.jsonl", encoding="utf-8"):
        r = json.loads(line)
        if r["population"] < 500_000:
            break  # sorted by population
        eid = f"geonames:{r['geonameid']}"
        entities.setdefault(eid, {"type": "LOC", "name_en": r["name_en"], "name_ar": r["names_ar"][0], "country": r["country"]})
        for n in r["names_ar"][:3]:
            add_alias(n, eid, check=True)
        if r["population"] >= 2_000_000:
            add_alias(r["name_en"], eid, check=True)
    # Drop entities nothing points to (keeps the file small).
    used = {v[0] for v in aliases.values()}
    entities = {k: v for k, v in entities.items() if k in used}
    nisba = {}
    for iso, words in curated["nisba"].items():
        for w in words:
            nisba.setdefault(alias_key(w), iso)
    index = {"version": f"gazetteer-{time.strftime('%Y%m%d')}-curated-{curated['as_of']}", "entities": entities,
             "aliases": aliases, "nisba": nisba}
    from newsstream.enrich.build import _dump_gz

    _dump_gz(index, INDEX_FILE)
    print("gazetteer index:", len(entities), "entities,", len(aliases), "aliases,", INDEX_FILE.stat().st_size, "bytes")
    return index

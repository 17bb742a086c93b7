"""Build the gazetteer index (``enrich/data/gazetteer_index.json.gz``) from the shared data.

Run through ``python tools/build_models.py gazetteer``; see ``enrich/data/gazetteer_index.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from common import dump_gz
from newsstream.enrich.gazetteer import DATA, INDEX_FILE, alias_key
from newsstream.enrich.tokens import norm


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
    dump_gz(index, INDEX_FILE)
    print("gazetteer index:", len(entities), "entities,", len(aliases), "aliases,", INDEX_FILE.stat().st_size, "bytes")
    return index

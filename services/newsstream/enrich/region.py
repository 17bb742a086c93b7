"""Countries and world regions an item is about.

Counted from linked place mentions (a city counts for its country), from
organisations and people with a known country only when no place of that
country is named, and from relational adjectives ("الإيراني", "Russian"),
which weigh like one mention. Most mentioned first.
"""

from __future__ import annotations

from collections import Counter

from newsstream.enrich.gazetteer import Gazetteer

__all__ = ["regions"]


def regions(entities: list[dict], nisba: list[str], gaz: Gazetteer, limit: int = 8) -> list[dict]:
    counts: Counter[str] = Counter()
    secondary: Counter[str] = Counter()
    for e in entities:
        c = e.get("country")
        if not c:
            continue
        (counts if e["type"] == "LOC" else secondary)[c] += 1
    for c in nisba:
        counts[c] += 1
    for c, n in secondary.items():
        if c not in counts:
            counts[c] = n
    out = []
    for c, n in counts.most_common(limit):
        ent = gaz.entities.get(f"country:{c}", {})
        out.append({"country": c, "name": ent.get("name_en", c), "region": ent.get("region"),
                    "subregion": ent.get("subregion"), "mentions": n})
    return out

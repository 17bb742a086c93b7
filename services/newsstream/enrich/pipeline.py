"""All structured enrichment of one item, as plain dicts (no Kafka, no pydantic).

:func:`enrich_fields` is what :func:`newsstream.enrich.item.enrich` calls;
it returns the optional ``Enrichment`` fields (entities, quotes, times,
topics, regions, urgency, attribution, enrichment_versions).
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime
from typing import TYPE_CHECKING

from newsstream.enrich import ner as _ner
from newsstream.enrich.gazetteer import get_gazetteer
from newsstream.enrich.iptc import classify, get_topic_model
from newsstream.enrich.quotes import find_quotes
from newsstream.enrich.region import regions
from newsstream.enrich.times import find_times
from newsstream.enrich.tokens import is_arabic, norm, tokens
from newsstream.enrich.urgency import URGENCY_VERSION, urgency

if TYPE_CHECKING:
    import numpy as np

    from newsstream.enrich.ner_context import TextContext

__all__ = ["ENRICH_VERSION", "versions", "find_entities", "parse_attribution", "enrich_fields"]

ENRICH_VERSION = "enrich-3"  # 2: tagger spans first, the gazetteer links them and fills gaps; 3: «لل» + name matched
QUOTES_VERSION = "quotes-rule-1"
TIMES_VERSION = "times-rule-1"

# Articles are tagged on their first N characters by the statistical tagger
# (the gazetteer runs on all of it): keeps the cost of long texts bounded.
NER_MAX_CHARS = 6000


def warm_up() -> None:
    """Load every model and lexicon now (~1 s) rather than inside the first batch."""
    versions()
    enrich_fields("ticker", text="قال لافروف في موسكو أمس: \"نعم\"", attribution="الخارجية الروسية")


def versions() -> dict[str, str]:
    return {
        "enrich": ENRICH_VERSION,
        "gazetteer": get_gazetteer().version,
        "ner": _ner.get_tagger().version,
        "ner_context": _ner.get_context_tagger().version,  # sentences read in context (with embeddings on)
        "topics": get_topic_model().version,
        "topics_vectors": _topic_head_version(),  # articles' topics read with their vector (with embeddings on)
        "quotes": QUOTES_VERSION,
        "times": TIMES_VERSION,
        "urgency": URGENCY_VERSION,
    }


def _topic_head_version() -> str:
    head = get_topic_model().head
    return head.version if head is not None else "none"


def _entity(gaz, eid: str | None) -> dict:
    return gaz.entities.get(eid, {}) if eid else {}


def find_entities(text: str, field: str = "body", use_model: bool = True, context_tokens: int = 0,
                  context: TextContext | None = None) -> tuple[list[dict], list[str]]:
    """Entity mentions of ``text`` (the tagger's spans, linked to the gazetteer,
    and the gazetteer's names and roles where the tagger found nothing: see
    :func:`_tagger_first`) and the ISO codes of relational adjectives (for regions).
    The tagger reads the text in ``context`` (the encoder's states of the text,
    made with the item's vector) or, without one, in the context of its first
    ``context_tokens`` encoder tokens (:func:`ner.tag_text`; 0: none)."""
    gaz = get_gazetteer()
    toks = tokens(text)
    out: list[dict] = []
    for m in gaz.find(toks, text):
        if m["kind"] == "name" and text[m["end"] - 1:m["end"]] == "\u064b":
            continue  # "روسياً": an adverbial adjective, not the country
        ent = _entity(gaz, m["id"])
        out.append({"type": ent.get("type", "LOC"), "text": m["text"], "field": field, "start": m["start"], "end": m["end"],
                    "id": m["id"], "name": ent.get("name_en"), "country": ent.get("country"),
                    "source": "role" if m["kind"] == "role" else "gazetteer"})
    if use_model and is_arabic(text):
        head, head_toks = (text, toks) if len(text) <= NER_MAX_CHARS else (text[:NER_MAX_CHARS], tokens(text[:NER_MAX_CHARS]))
        states = context.word_states([(s, e) for _, s, e in head_toks]) if context is not None else None
        model = [(typ, s, e, surface) for typ, s, e, surface
                 in _ner.tag_text(head, head_toks, context_tokens=context_tokens, states=states)
                 if typ in ("PERS", "LOC", "ORG") and not surface.endswith("\u064b")]  # not "روسياً" (an adjective)
        out = _tagger_first(gaz, text, toks, field, out, model)
    out.sort(key=lambda d: d["start"])
    nisba = gaz.nisba_countries([norm(t) for t, _, _ in toks])
    return out, nisba


def _is_named_after_place(typ: str, gaz_type: str | None) -> bool:
    """A tagger ORG on a gazetteer place: a club or paper named after it
    ("برشلونة", "الشرق الأوسط"). The mention stays an ORG and is not linked to
    the place; otherwise the gazetteer's type wins (it fixes "هونج كونج" tagged PERS)."""
    return typ == "ORG" and gaz_type == "LOC"


def _tagger_first(gaz, text: str, toks: list[tuple[str, int, int]], field: str, out: list[dict],
                  model: list[tuple]) -> list[dict]:
    """Merge gazetteer matches ``out`` (names and roles) with tagger spans
    ``model`` (``(type, start, end, surface)``), the tagger's boundaries first:

    * roles are kept; a tagger span inside one is kept too ("الأمم المتحدة" in
      "الأمين العام للأمم المتحدة"), one across its edge is not;
    * a tagger span over several gazetteer names ("لافروف موسكو") gives way to them;
    * a gazetteer name on the same tokens as a tagger span is kept (its id and
      offsets without the proclitic); a tagger span around or inside gazetteer
      names replaces them ("غزة" in "قطاع غزة", "جامعة القاهرة") and is linked by
      its own name, else to the one overlapping name of its type;
    * gazetteer names no tagger span touches fill the gaps, except one-word
      GeoNames names not written plainly (:func:`_plain_city_name`): on
      ANERcorp such fills were 15 right and 153 wrong, mostly common words
      ("المدينة", "كبيرا" = ك + Beira).

    Tagger first because the gazetteer's boundaries and types follow its own
    entries ("قطاع غزة", "حركة حماس", a club named after its city as LOC):
    5-fold CV on ANERcorp, F1 0.751 with the gazetteer first, 0.766 this way.
    """
    names = [d for d in out if d["source"] == "gazetteer"]
    roles = [d for d in out if d["source"] == "role"]
    res = list(roles)
    used = [False] * len(names)
    for typ, s, e, surface in model:
        if any(_overlaps(r, s, e) and not (r["start"] <= s and e <= r["end"]) for r in roles):
            continue
        hit = [k for k, d in enumerate(names) if _overlaps(d, s, e)]
        if len(hit) > 1:
            continue
        name = names[hit[0]] if hit else None
        if name is not None:
            used[hit[0]] = True
            same_tokens = name["end"] == e and s <= name["start"] and " " not in text[s:name["start"]]
            if same_tokens and not _is_named_after_place(typ, name["type"]):
                res.append(name)  # its id, and offsets without the proclitic
                continue
        eid = gaz.link(surface)
        if eid is None and name is not None and name["type"] == typ:
            eid = name["id"]
        ent = _entity(gaz, eid)
        if _is_named_after_place(typ, ent.get("type")):
            eid, ent = None, {}
        res.append({"type": ent.get("type", typ), "text": surface, "field": field, "start": s, "end": e,
                    "id": eid, "name": ent.get("name_en"), "country": ent.get("country"), "source": "model"})
    for k, d in enumerate(names):
        if used[k] or any(_overlaps(r, d["start"], d["end"]) for r in res):
            continue
        if " " not in d["text"] and d["id"].startswith("geonames:") and not _plain_city_name(gaz, text, toks, d):
            continue
        res.append(d)
    return res


def _overlaps(mention: dict, start: int, end: int) -> bool:
    return mention["start"] < end and start < mention["end"]


def _plain_city_name(gaz, text: str, toks: list[tuple[str, int, int]], mention: dict) -> bool:
    """A one-word city the tagger missed is kept when it is written as its
    canonical Arabic name, bare or after و/ف, and that name has no article:
    "موسكو", "وموسكو" yes; "المدينة" (the city), "كبيرا" (ك + Beira),
    "ورقة" (و + رقة) no."""
    canonical = norm(_entity(gaz, mention["id"]).get("name_ar") or "")
    if not canonical or canonical.startswith("ال") or norm(mention["text"]) != canonical:
        return False
    # the proclitic the gazetteer stripped: from the start of the mention's token
    _, token_start, _ = toks[bisect.bisect_right(toks, mention["start"], key=lambda t: t[1]) - 1]
    return norm(text[token_start:mention["start"]]) in ("", "و", "ف")


# Government bodies named by a relational adjective: "الخارجية التركية" is
# Türkiye's foreign ministry. Id: org:<body>-<iso2 lower>.
_BODIES = {
    "الخارجيه": "foreign-ministry", "وزاره الخارجيه": "foreign-ministry",
    "الدفاع": "defence-ministry", "وزاره الدفاع": "defence-ministry",
    "الداخليه": "interior-ministry", "وزاره الداخليه": "interior-ministry",
    "الرئاسه": "presidency", "الحكومه": "government", "الجيش": "army",
}
# Unnamed people: "مسؤول إيراني رفيع" is a person of Iran.
_PERSON_NOUNS = {"مسوول", "مصدر", "دبلوماسي", "متحدث", "المتحدث", "وزير", "نائب", "قائد", "مستشار"}


def _speaker_by_rule(speaker: str) -> tuple[str | None, str | None]:
    """(id, type) of an attribution the gazetteer does not name."""
    from newsstream.enrich.gazetteer import alias_key

    gaz = get_gazetteer()
    words = alias_key(speaker).split(" ")
    iso = next((gaz.nisba[w] for w in words if w in gaz.nisba), None)
    if iso is None:
        return None, None
    head = " ".join(words[:2]) if " ".join(words[:2]) in _BODIES else words[0]
    if head in _BODIES:
        return f"org:{_BODIES[head]}-{iso.lower()}", "ORG"
    if words[0] in _PERSON_NOUNS:
        return None, "PERS"
    return None, None


_RELAY = re.compile(r"^(?P<source>.{2,40}?)\s+(?:عن|نقلا عن|نقلاً عن|citing|quoting)\s+(?P<speaker>.+)$")


def parse_attribution(attribution: str) -> dict:
    """'تلغراف عن مسؤول إيراني رفيع' -> source 'تلغراف', speaker 'مسؤول إيراني رفيع';
    'الخارجية التركية' -> speaker (and source) 'الخارجية التركية'."""
    text = attribution.strip().strip('"«»“” :')
    m = _RELAY.match(text)
    source, speaker = (m.group("source"), m.group("speaker")) if m else (text, text)
    ents, _ = find_entities(speaker, "attribution", use_model=False)
    best = next((e for e in ents if e["type"] in ("PERS", "ORG")), ents[0] if ents else None)
    if best is not None:
        sid, stype = best["id"], best["type"]
    else:
        sid, stype = _speaker_by_rule(speaker)
    return {"text": attribution, "source": source, "speaker": speaker, "speaker_id": sid, "speaker_type": stype}


def enrich_fields(kind: str, *, text: str, title: str = "", attribution: str | None = None,
                  published_at: datetime | None = None, word_count: int = 0,
                  context: TextContext | None = None, title_context: TextContext | None = None,
                  topic_vector: np.ndarray | None = None) -> dict:
    """Optional ``Enrichment`` fields of one item (``kind`` 'article' or 'ticker');
    ``context``/``title_context``: the encoder's states of the text and the title,
    which the entity tagger reads (``item.enrich_batch``); ``topic_vector``: an
    article's vector (``embedding.centred_unit``), which the topic model reads."""
    body_field = "body" if kind == "article" else "text"
    entities, nisba = find_entities(text, body_field, context=context)
    if title:
        t_ents, t_nisba = find_entities(title, "title", context=title_context)
        entities = t_ents + entities
        nisba = t_nisba + nisba
    quotes = [dict(q, field=body_field) for q in find_quotes(text, entities=[e for e in entities if e["field"] == body_field])]
    for q in quotes:
        for k in ("speaker_start", "speaker_end"):
            q.pop(k, None)
    times = [dict(t, field=body_field) for t in find_times(text, published_at)]
    topics = classify(title, text, vector=topic_vector if kind == "article" else None)
    attr = None
    if attribution:
        attr = parse_attribution(attribution)
        a_ents, a_nisba = find_entities(attribution, "attribution", use_model=False)
        entities = a_ents + entities
        nisba = a_nisba + nisba
    gaz = get_gazetteer()
    return {
        "entities": entities,
        "quotes": quotes,
        "times": times,
        "topics": topics,
        "regions": regions(entities, nisba, gaz),
        "urgency": urgency(kind, text, title, topics[0]["code"] if topics else None, word_count),
        "attribution": attr,
        "enrichment_versions": versions(),
    }


"""Quoted statements and their speakers, Arabic and English.

Rules over a diacritic-free skeleton of the text (offsets map back to the
original):

* direct: ``<verb> <speaker>: "<quote>"`` (قال، أكد، أضاف، أعلن، شدد ...);
  ``"<quote>", <verb> <speaker>``; English ``<Speaker> said: "..."`` and
  ``"...," <Speaker> said``;
* continuation: a participle (مضيفاً، مشدداً، مؤكداً ...) followed by ``:`` or
  ``على أن`` gives the quote to the previous speaker;
* indirect: ``<verb> <speaker>, أنّ <statement>`` up to the end of the sentence.

The speaker phrase is resolved to an entity when a person/organisation name or
role (see :mod:`newsstream.enrich.gazetteer`) lies inside it.
"""

from __future__ import annotations

import re

from newsstream.enrich.tokens import skeleton

__all__ = ["find_quotes"]

_VERBS = r"(?:قال|اكد|اضاف|اعلن|صرح|شدد|اوضح|تابع|اعتبر|راي|اشار|لفت|كشف|حذر|دعا|طالب|نفي|ذكر|افاد|اكد|تساءل|ختم)(?:ت|وا|ا)?"
_PARTS = r"(?:مضيفا|مشددا|موكدا|مشيرا|معتبرا|لافتا|موضحا|متابعا|محذرا|داعيا|مطالبا|مبينا|مضيفه|مشدده|موكده|مشيره)"
_Q = r'"(?P<q>[^"\n]{2,1500})"'
# An indirect statement runs to the end of the sentence or to ", <participle>".
_IND = r'(?:"(?P<q>[^"\n]{2,1500})"(?=\s*(?:[,.?!\n]|$))|(?P<q2>(?:(?!,\s*' + _PARTS + r')[^\n.?!]){3,600}))'
_SP = r"(?P<sp>[^:\"\n.?!]{2,160}?)"

_PATTERNS = [
    ("direct", re.compile(r"(?:^|(?<=[\s,.;(]))[وف]?" + _VERBS + r"\s+" + _SP + r"\s*:\s*" + _Q)),
    ("indirect", re.compile(r"(?:^|(?<=[\s,.;(]))[وف]?" + _VERBS + r"\s+" + _SP + r"\s*,?\s+(?:ان|انه|انها)\s+" + _IND)),
    ("continuation", re.compile(r"(?:^|(?<=[\s,.;(]))" + _PARTS + r"\s*:\s*" + _Q)),
    ("continuation", re.compile(r"(?:^|(?<=[\s,.;(]))" + _PARTS + r"\s+(?:علي|الي)\s+(?:ان|انه|انها)\s+" + _IND)),
    ("direct_en", re.compile(r'(?P<sp>(?:[A-Z][\w\'-]+\s){0,3}[A-Z][\w\'-]+)\s+(?:said|says|told [\w ]{1,30}?|added|stressed|warned)\s*[:,]\s*"(?P<q>[^"\n]{2,1500})"')),
    ("direct_en_after", re.compile(r'"(?P<q>[^"\n]{2,1500}?)[,.]?"\s*,?\s*(?P<sp>(?:[A-Z][\w\'-]+\s){0,3}[A-Z][\w\'-]+)\s+(?:said|says|added|stressed|warned)')),
    ("direct_en_after", re.compile(r'"(?P<q>[^"\n]{2,1500}?)[,.]?"\s*,?\s*(?:said|says|added)\s+(?P<sp>(?:[A-Z][\w\'-]+\s){0,3}[A-Z][\w\'-]+)')),
]

_LATIN = re.compile(r"[A-Za-z]{2}")
_QUOTE_HINT = re.compile(r'["«“]|قال|اكد|أكد|أكّد|أن|said|says')


def _speaker_entity(start: int, end: int, entities: list[dict]) -> dict | None:
    for kind in ("PERS", "ORG"):
        for e in entities:
            if e["type"] == kind and e["start"] >= start and e["end"] <= end:
                return e
    return None


def find_quotes(text: str, entities: list[dict] | None = None) -> list[dict]:
    """``[{text, start, end, speaker, speaker_id, speaker_start, speaker_end, kind}]``
    sorted by position; ``kind`` is ``direct`` or ``indirect``."""
    if not _QUOTE_HINT.search(text):
        return []
    entities = entities or []
    s, pos = skeleton(text)
    found: list[tuple[int, int, str, tuple[int, int] | None]] = []
    taken: list[tuple[int, int]] = []
    has_quote = '"' in s
    has_latin = _LATIN.search(s) is not None
    for kind, rx in _PATTERNS:
        if kind.endswith(("_en", "_en_after")) and not (has_latin and has_quote):
            continue
        if kind in ("direct", "continuation") and not has_quote and rx.pattern.endswith(_Q):
            continue
        for m in rx.finditer(s):
            qs, qe = m.span("q") if m.group("q") is not None else m.span("q2")
            if any(a < qe and qs < b for a, b in taken):
                continue
            sp = m.span("sp") if "sp" in rx.groupindex else None
            taken.append((qs, qe))
            found.append((qs, qe, kind, sp))
    found.sort()
    out = []
    last_speaker: dict | None = None
    for qs, qe, kind, sp in found:
        q0, q1 = pos[qs], pos[qe]
        quote = text[q0:q1].strip()
        if kind == "continuation" or sp is None:
            if last_speaker is None:
                continue
            speaker = dict(last_speaker)
        else:
            s0, s1 = pos[sp[0]], pos[sp[1]]
            ent = _speaker_entity(s0, s1, entities)
            if ent is not None:
                speaker = {"speaker": ent["text"], "speaker_id": ent.get("id"), "speaker_start": ent["start"], "speaker_end": ent["end"]}
            else:
                sp_text = text[s0:s1].strip(" ,،")
                speaker = {"speaker": sp_text, "speaker_id": None, "speaker_start": s0, "speaker_end": s1}
            last_speaker = speaker
        out.append({"text": quote, "start": q0, "end": q1, **speaker,
                    "kind": "indirect" if kind in ("indirect",) or (kind == "continuation" and text[q0 - 1:q0] not in '"«“') else "direct"})
    return out

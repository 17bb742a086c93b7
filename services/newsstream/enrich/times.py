"""Dates and relative dates in Arabic and English text, resolved against the
publication time.

Each mention is ``{text, start, end, value, granularity, modifier}``: ``value``
is an ISO date (``2025-03-15``), month (``2025-03``) or year (``2025``) when
it can be resolved, else null; ``granularity`` is ``day``, ``week``, ``month``
or ``year``; ``modifier`` is ``early``, ``mid``, ``late`` or null ("منتصف
آذار/مارس الماضي" -> ``2025-03``, month, mid). Relative expressions
("أمس", "قبل يومين", "الأسبوع الماضي", "last week", "two days ago") count back
from the publication date in UTC; month names with "الماضي"/"last" take the
latest such month before the publication month, with "المقبل"/"next" the
next one, and a bare month the nearest one (same year).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from newsstream.enrich.tokens import skeleton

__all__ = ["find_times"]

# Skeleton spellings (no hamza on alef, ة -> ه, ى -> ي).
_MONTHS_AR = {
    "كانون الثاني": 1, "شباط": 2, "اذار": 3, "نيسان": 4, "ايار": 5, "حزيران": 6, "تموز": 7, "اب": 8, "ايلول": 9,
    "تشرين الاول": 10, "تشرين الثاني": 11, "كانون الاول": 12,
    "يناير": 1, "فبراير": 2, "مارس": 3, "ابريل": 4, "مايو": 5, "يونيو": 6, "يونيه": 6, "يوليو": 7, "يوليه": 7,
    "اغسطس": 8, "سبتمبر": 9, "اكتوبر": 10, "نوفمبر": 11, "ديسمبر": 12,
    "جانفي": 1, "فيفري": 2, "افريل": 4, "ماي": 5, "جوان": 6, "جويليه": 7, "اوت": 8,
}
_MONTHS_EN = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"])}
_WEEKDAYS_AR = {"الاثنين": 0, "الإثنين": 0, "الثلاثاء": 1, "الاربعاء": 2, "الخميس": 3, "الجمعه": 4, "السبت": 5, "الاحد": 6}
_WEEKDAYS_EN = {d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])}
_NUM_AR = {"يوم": 1, "يومين": 2, "يومان": 2, "ثلاثه": 3, "اربعه": 4, "خمسه": 5, "سته": 6, "سبعه": 7, "عشره": 10,
           "اسبوع": 1, "اسبوعين": 2, "شهر": 1, "شهرين": 2, "عام": 1, "عامين": 2, "سنه": 1, "سنتين": 2}
_NUM_EN = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}

_month_alt = "|".join(sorted((re.escape(m) for m in _MONTHS_AR), key=len, reverse=True))
_MOD_AR = {"منتصف": "mid", "اواسط": "mid", "مطلع": "early", "اوائل": "early", "بدايه": "early", "مستهل": "early",
           "اواخر": "late", "نهايه": "late", "اخر": "late"}
_mod_alt = "|".join(_MOD_AR)
_B = r"(?<![\w])"  # word start (the skeleton has no diacritics inside words)
_E = r"(?![\w])"

_RX_AR_MONTH = re.compile(
    _B + r"(?:(?P<mod>" + _mod_alt + r")\s+)?(?:[وفب]?ال?شهر\s+)?(?:(?P<day>\d{1,2})\s+)?[وفبل]?(?P<m1>" + _month_alt + r")"
    r"(?:\s*[/(]\s*(?P<m2>" + _month_alt + r")\s*\)?)?(?:\s+(?P<year>(?:19|20)\d\d))?(?:\s+(?P<rel>الماضي|المنصرم|المقبل|القادم))?" + _E)
_RX_AR_REL = re.compile(
    _B + r"(?:[وف]?(?P<ago>قبل|منذ)\s+(?P<n>\d+|" + "|".join(_NUM_AR) + r")(?:\s+(?P<unit>ايام|يوما|اسابيع|اشهر|شهور|اعوام|سنوات|سنين))?"
    r"|(?P<word>[وف]?(?:امس|اول\s+امس|اليوم|غدا|بعد\s+غد))"
    r"|(?P<period>[وفب]?(?:ال)?(?:اسبوع|شهر|عام|سنه)\s+(?:الماضي|المنصرم|المقبل|القادم|الحالي|الجاري))"
    r"|(?P<wd>(?:[وف]?يوم\s+)?(?:" + "|".join(_WEEKDAYS_AR) + r")(?:\s+(?:الماضي|المقبل))?))" + _E)
_RX_EN = re.compile(
    r"\b(?:(?P<mod>early|mid|late)[- ])?(?P<m>" + "|".join(_MONTHS_EN) + r")(?:\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?)?(?:,?\s+(?P<year>(?:19|20)\d\d))?\b"
    r"|\b(?P<n>\d+|" + "|".join(_NUM_EN) + r")\s+(?P<unit>days?|weeks?|months?|years?)\s+ago\b"
    r"|\b(?P<word>yesterday|today|tomorrow)\b"
    r"|\b(?P<period>(?:last|next|this)\s+(?:week|month|year))\b"
    r"|\b(?:(?P<wdrel>last|next|on)\s+)?(?P<wd>" + "|".join(_WEEKDAYS_EN).title().replace("|", "|") + "|" + "|".join(_WEEKDAYS_EN) + r")\b",
    re.IGNORECASE)
_MONTH_HINT = re.compile(r"(?<![\w])[وفبل]?(?:" + _month_alt + r")(?![\w])")
_LATIN = re.compile(r"[A-Za-z]{3}")
_RX_ISO = re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>\d\d)-(?P<d>\d\d)\b")


def _month_value(pub: date, month: int, rel: str | None, year: int | None) -> tuple[int, int]:
    if year:
        return year, month
    if rel in ("past",):
        return (pub.year, month) if month < pub.month else (pub.year - 1, month)
    if rel in ("future",):
        return (pub.year, month) if month > pub.month else (pub.year + 1, month)
    # Bare month: the nearest occurrence (news speaks of recent or coming months).
    cands = [(pub.year + d, month) for d in (-1, 0, 1)]
    return min(cands, key=lambda ym: abs((ym[0] - pub.year) * 12 + ym[1] - pub.month))


def _n(word: str, table: dict[str, int]) -> int:
    return int(word) if word.isdigit() else table.get(word, 1)


def _unit_days(unit: str) -> tuple[int, str]:
    u = unit or ""
    if u.startswith(("اسبوع", "اسابيع", "week")) or u in ("اسبوع", "اسبوعين"):
        return 7, "week"
    if u.startswith(("شهر", "اشهر", "شهور", "month")):
        return 30, "month"
    if u.startswith(("عام", "اعوام", "سن", "year")):
        return 365, "year"
    return 1, "day"


def _shift(pub: date, n: int, unit_days: int, gran: str) -> str:
    if gran == "month":
        y, m = pub.year, pub.month - n
        while m < 1:
            y, m = y - 1, m + 12
        return f"{y:04d}-{m:02d}"
    if gran == "year":
        return f"{pub.year - n:04d}"
    return (pub - timedelta(days=n * unit_days)).isoformat()


def _period(pub: date, unit: str, rel: str) -> tuple[str, str]:
    step = {"past": -1, "future": 1, "now": 0}[rel]
    if unit == "week":
        monday = pub - timedelta(days=pub.weekday()) + timedelta(weeks=step)
        iso = monday.isocalendar()
        return f"{iso[0]:04d}-W{iso[1]:02d}", "week"
    if unit == "month":
        y, m = pub.year, pub.month + step
        if m < 1:
            y, m = y - 1, 12
        if m > 12:
            y, m = y + 1, 1
        return f"{y:04d}-{m:02d}", "month"
    return f"{pub.year + step:04d}", "year"


def _rel(word: str | None) -> str | None:
    if not word:
        return None
    if word in ("الماضي", "المنصرم", "last"):
        return "past"
    if word in ("المقبل", "القادم", "next"):
        return "future"
    return "now"


def _weekday(pub: date, wd: int, rel: str | None) -> str:
    if rel == "future":
        delta = (wd - pub.weekday()) % 7 or 7
        return (pub + timedelta(days=delta)).isoformat()
    # News mentions a bare weekday for the current day or a recent one.
    return (pub - timedelta(days=(pub.weekday() - wd) % 7)).isoformat()


def find_times(text: str, published_at: datetime | None) -> list[dict]:
    pub = published_at.date() if published_at else None
    s, pos = skeleton(text)
    out: list[dict] = []
    taken: list[tuple[int, int]] = []

    def add(a: int, b: int, value: str | None, gran: str, mod: str | None = None) -> None:
        if any(x < b and a < y for x, y in taken):
            return
        taken.append((a, b))
        a0, b0 = pos[a], pos[b]
        out.append({"text": text[a0:b0], "start": a0, "end": b0, "value": value if pub else None,
                    "granularity": gran, "modifier": mod})

    for m in _RX_ISO.finditer(s):
        add(m.start(), m.end(), m.group(), "day")
    month_hits = []
    end_prev = -1
    for h in _MONTH_HINT.finditer(s):
        # the full pattern only around a month name (modifier and day before it)
        m = _RX_AR_MONTH.search(s, max(0, h.start() - 12, end_prev), min(len(s), h.end() + 40))
        if m is not None and m.start() <= h.start() and m.end() >= h.end():
            month_hits.append(m)
            end_prev = m.end()
    for m in month_hits:
        month = _MONTHS_AR[m.group("m1")]
        if m.group("m1") in ("اب", "ماي") and not (m.group("day") or m.group("mod") or m.group("rel") or m.group("year") or m.group("m2")):
            continue  # "آب"/"ماي" are also ordinary words: need context
        y, mo = _month_value(pub, month, _rel(m.group("rel")), int(m.group("year")) if m.group("year") else None) if pub else (0, month)
        if m.group("day"):
            try:
                value = date(y, mo, int(m.group("day"))).isoformat()
            except ValueError:
                value = f"{y:04d}-{mo:02d}"
            add(m.start(), m.end(), value, "day")
        else:
            add(m.start(), m.end(), f"{y:04d}-{mo:02d}", "month", _MOD_AR.get(m.group("mod") or ""))
    for m in _RX_AR_REL.finditer(s):
        if m.group("ago"):
            n = _n(m.group("n"), _NUM_AR)
            ud, gran = _unit_days(m.group("unit") or m.group("n"))
            add(m.start(), m.end(), _shift(pub, n, ud, gran) if pub else None, gran)
        elif m.group("word"):
            w = m.group("word").lstrip("وف")
            delta = {"امس": -1, "اليوم": 0, "غدا": 1}.get(w, -2 if w.startswith("اول") else 2)
            add(m.start(), m.end(), (pub + timedelta(days=delta)).isoformat() if pub else None, "day")
        elif m.group("period"):
            p = m.group("period")
            unit = "week" if "اسبوع" in p else "month" if "شهر" in p else "year"
            rel = _rel(p.split()[-1]) if p.split()[-1] in ("الماضي", "المنصرم", "المقبل", "القادم") else "now"
            value, gran = _period(pub, unit, rel) if pub else (None, unit)
            add(m.start(), m.end(), value, gran)
        elif m.group("wd"):
            parts = m.group("wd").split()
            name = next(p for p in parts if p.lstrip("وف") in _WEEKDAYS_AR or p in _WEEKDAYS_AR)
            wd = _WEEKDAYS_AR.get(name, _WEEKDAYS_AR.get(name.lstrip("وف"), 0))
            if len(parts) == 1 and name.lstrip("وف") not in _WEEKDAYS_AR:
                continue
            add(m.start(), m.end(), _weekday(pub, wd, _rel(parts[-1])) if pub else None, "day")
    for m in (_RX_EN.finditer(s) if _LATIN.search(s) else ()):
        if m.group("m"):
            month = _MONTHS_EN[m.group("m").lower()]
            if m.group("m").lower() == "may" and not (m.group("day") or m.group("year")):
                continue
            y, mo = _month_value(pub, month, None, int(m.group("year")) if m.group("year") else None) if pub else (0, month)
            if m.group("day"):
                try:
                    add(m.start(), m.end(), date(y, mo, int(m.group("day"))).isoformat(), "day")
                except ValueError:
                    pass
            else:
                add(m.start(), m.end(), f"{y:04d}-{mo:02d}", "month", (m.group("mod") or "").lower() or None)
        elif m.group("unit"):
            n = _n(m.group("n").lower(), _NUM_EN)
            ud, gran = _unit_days(m.group("unit").lower())
            add(m.start(), m.end(), _shift(pub, n, ud, gran) if pub else None, gran)
        elif m.group("word"):
            delta = {"yesterday": -1, "today": 0, "tomorrow": 1}[m.group("word").lower()]
            add(m.start(), m.end(), (pub + timedelta(days=delta)).isoformat() if pub else None, "day")
        elif m.group("period"):
            rel_w, unit = m.group("period").lower().split()
            value, gran = _period(pub, unit, _rel(rel_w) if rel_w != "this" else "now") if pub else (None, unit)
            add(m.start(), m.end(), value, gran)
        elif m.group("wd"):
            wd = _WEEKDAYS_EN[m.group("wd").lower()]
            add(m.start(), m.end(), _weekday(pub, wd, _rel((m.group("wdrel") or "").lower())) if pub else None, "day")
    out.sort(key=lambda t: t["start"])
    return out

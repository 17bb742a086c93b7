"""Parse the text of a news page into an article and a breaking-news ticker.

The input is what a producer gets by taking the visible text of an article
page (see ``shared/seeds/``): the article's paragraphs one per line, page
chrome ("الأكثر قراءة", "عاجل 24/7"...), then a breaking-news ("عاجل") ticker
laid out as::

    -
    22:35
    الخارجية التركية: إسرائيل تلعب دور ...
    -
    22:34
    الخارجية التركية: - التساؤل واجب عن ...

Each ticker item is ``attribution: text``; a "-" right after the colon marks a
line that continues a multi-part story, which we group into threads.

:func:`parse_page` is pure (no I/O, no clock) and total: it returns a
:class:`ParsedPage` for every ``str``, however malformed, so that a bad page
is an empty result rather than a crashed consumer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from newsstream.text.digest import stable_hash
from newsstream.text.normalize import clean_text, normalize_text

__all__ = [
    "CHROME_PHRASES",
    "ParsedArticle",
    "ParsedPage",
    "ParsedTickerLine",
    "parse_page",
]


# --------------------------------------------------------------------------
# Result models
# --------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParsedArticle(_Frozen):
    """The article text of a page. ``title`` is "" when the page has none."""

    title: str
    body: str  # paragraphs joined by a blank line ("\n\n")
    paragraphs: list[str]


class ParsedTickerLine(_Frozen):
    """One ticker item, in page order (newest first)."""

    time: str  # "HH:MM", as shown by the page (no date, no time zone)
    text: str  # the sentence, without attribution or continuation marker
    attribution: str | None  # "الخارجية التركية"; None when the line has none
    continues_previous: bool  # the line had the "-" marker after its colon
    thread_id: str  # shared by all lines of one multi-part story


class ParsedPage(_Frozen):
    articles: list[ParsedArticle]
    ticker: list[ParsedTickerLine]


# --------------------------------------------------------------------------
# Page chrome
# --------------------------------------------------------------------------

# Navigation and widget labels that appear as lines of their own. Matched on
# the normalised line (so "اقرأ أيضاً" / "إقرأ أيضا" / "اقرأ ايضاً" are one
# entry), anywhere on the page and in any order. Only whole lines match: a
# paragraph that merely contains "عاجل" is content.
CHROME_PHRASES: frozenset[str] = frozenset(
    normalize_text(p)
    for p in (
        # seen in the seed
        "يتم قراءة الآن",
        "الأكثر قراءة",
        "عاجل 24/7",
        # common on Arabic news sites
        "عاجل",
        "أخبار عاجلة",
        "اقرأ أيضاً",
        "إقرأ أيضاً",
        "اقرأ المزيد",
        "إقرأ المزيد",
        "المزيد",
        "عرض المزيد",
        "تحميل المزيد",
        "المزيد من الأخبار",
        "شارك",
        "شارك المقال",
        "شارك الخبر",
        "مشاركة",
        "آخر الأخبار",
        "أحدث الأخبار",
        "كل الأخبار",
        "الأكثر مشاهدة",
        "الأكثر تداولاً",
        "الأكثر مشاركة",
        "الأكثر تعليقاً",
        "يتم قراءته الآن",
        "تابعونا",
        "تابعنا",
        "تابعونا على",
        "تابعونا على مواقع التواصل الاجتماعي",
        "مواضيع ذات صلة",
        "أخبار ذات صلة",
        "مقالات ذات صلة",
        "شاهد أيضاً",
        "اخترنا لك",
        "قد يعجبك أيضاً",
        "الرئيسية",
        "إعلان",
        "النشرة الإخبارية",
        "اشترك في النشرة الإخبارية",
        "التعليقات",
        "أضف تعليقاً",
        "جميع الحقوق محفوظة",
        "حمّل التطبيق",
        "بث مباشر",
        "مباشر",
    )
)

# Characters trimmed from both ends of a line before the chrome lookup, so that
# "اقرأ أيضاً:" or "| الأكثر قراءة |" still match.
_CHROME_TRIM = " :|•·»«\"'-–—>›<‹*#"

# Copyright footers carry a year or a site name, so they cannot be listed:
# they are recognised by how they start (matched on the normalised line).
_COPYRIGHT_RE = re.compile(
    "^(?:"
    + "|".join(
        re.escape(normalize_text(p))
        for p in ("©", "(c)", "copyright", "جميع الحقوق محفوظة", "حقوق النشر", "حقوق الطبع", "الحقوق محفوظة")
    )
    + ")"
)

# --------------------------------------------------------------------------
# Line classification
# --------------------------------------------------------------------------

# Digits can be Arabic-Indic or Eastern Arabic-Indic on some sites; times are
# matched after mapping them (and the fullwidth colon) to ASCII.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹：﹕", "01234567890123456789::")

# "22:35" or "9:05" alone on a line.
_TIME_RE = re.compile(r"([0-9]{1,2})\s*:\s*([0-9]{2})")
# "22:35 الخارجية التركية: ..." (time and item on one line), optionally with a
# dash or bar between them: "22:35 - ...", "22:35 | ...".
_TIME_TEXT_RE = re.compile(r"([0-9]{1,2})\s*:\s*([0-9]{2})(?:\s*[-–—|]\s*|\s+)(?=\S)")

# Enough for "22 : 35 - " plus the first character of the item.
_TIME_HEAD_CHARS = 24

_DASHES = "-–—"
# A line with no letter or digit at all ("-", "—", "***", "•") separates items.
_HAS_ALNUM_RE = re.compile(r"[^\W_]")

_Kind = Literal["text", "time", "timetext", "sep", "chrome"]


@dataclass(frozen=True, slots=True)
class _Line:
    kind: _Kind
    line: str  # the whole (clean, stripped) line
    text: str = ""  # the line (text), or the item part of a timetext line
    time: str = ""  # "HH:MM" for time/timetext


def _parse_time(hours: str, minutes: str) -> str | None:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        return None
    return f"{h:02d}:{m:02d}"


# Chrome is short. A line much longer than the longest phrase can only be a
# copyright footer, for which its start is enough: do not normalise whole
# paragraphs just to look them up.
_CHROME_SCAN_CHARS = 4 * max(map(len, CHROME_PHRASES))


def _is_chrome(line: str) -> bool:
    if len(line) > _CHROME_SCAN_CHARS:
        return bool(_COPYRIGHT_RE.match(normalize_text(line[:40]).lstrip(_CHROME_TRIM)))
    key = normalize_text(line).strip(_CHROME_TRIM)
    return key in CHROME_PHRASES or bool(_COPYRIGHT_RE.match(key))


def _classify(line: str) -> _Line:
    """Classify one stripped, non-empty line."""
    if not _HAS_ALNUM_RE.search(line):
        return _Line("sep", line)
    # A time is at the start of the line: map the digits of the head only
    # (translate costs per character, and paragraphs are long). The map is
    # 1:1, so offsets in `head` are offsets in `line`.
    head = line[:_TIME_HEAD_CHARS].translate(_DIGITS)
    if len(line) <= _TIME_HEAD_CHARS and (m := _TIME_RE.fullmatch(head)):
        if t := _parse_time(m[1], m[2]):
            return _Line("time", line, time=t)
    if m := _TIME_TEXT_RE.match(head):
        if t := _parse_time(m[1], m[2]):
            return _Line("timetext", line, text=line[m.end() :].strip(), time=t)
    if _is_chrome(line):
        return _Line("chrome", line)
    return _Line("text", line, text=line)


# --------------------------------------------------------------------------
# Ticker items
# --------------------------------------------------------------------------

# Colons that end an attribution: ASCII, fullwidth, small.
_COLONS = ":：﹕"
_COLON_RE = re.compile(f"[{_COLONS}]")
# Quote pairs an attribution may be wrapped in: "حماس", «حماس», “حماس”...
_QUOTES = {'"': '"', "«": "»", "»": "«", "“": "”", "”": "“", "„": "“", "'": "'", "‘": "’", "’": "‘"}

MAX_ATTRIBUTION_WORDS = 8
MAX_ATTRIBUTION_CHARS = 60


def _unquote(s: str) -> str:
    if len(s) >= 2 and _QUOTES.get(s[0]) == s[-1]:
        return s[1:-1].strip()
    return s


class _Item(NamedTuple):
    time: str
    attribution: str | None
    text: str
    continues: bool


def _split_item(line: str) -> tuple[str | None, str, bool]:
    """Split an item line into (attribution, text, continues_previous)."""
    for m in _COLON_RE.finditer(line):
        i = m.start()
        # "2:1" (a score) or "22:35" inside the sentence is not an attribution colon.
        if 0 < i < len(line) - 1 and line[i - 1].isdigit() and line[i + 1].isdigit():
            continue
        attribution = _unquote(line[:i].strip())
        rest = line[i + 1 :].strip()
        if (
            not attribution
            or len(attribution) > MAX_ATTRIBUTION_CHARS
            or len(attribution.split()) > MAX_ATTRIBUTION_WORDS
        ):
            break  # only the first colon can end an attribution
        continues = False
        # "-طهران ..." or "- التساؤل ...": continuation marker. A dash directly
        # followed by a digit is a minus sign ("-5 درجات"), not a marker.
        if rest[:1] and rest[0] in _DASHES and not rest[1:2].isdigit():
            continues = True
            rest = rest[1:].lstrip()
        if not rest:
            break  # "foo:" or "foo: -" has no sentence; keep the line whole
        return attribution, rest, continues
    return None, line, False


def _thread_ids(items: list[_Item]) -> list[str]:
    """Thread ids for the items (in page order), one per item.

    A continuation joins the thread of the nearest item *above* it (newer, in
    page order) with the same normalised attribution. The id is derived from
    the thread's oldest member (the lowest one on the page), so it does not
    change when newer lines are added on top of a live ticker.
    """
    keys = [normalize_text(item.attribution or "") for item in items]
    thread_of: list[int] = []  # item index -> thread number
    members: list[list[int]] = []  # thread number -> item indices
    for i, item in enumerate(items):
        parent = None
        if item.continues:
            parent = next((j for j in range(i - 1, -1, -1) if keys[j] == keys[i]), None)
        if parent is None:
            thread_of.append(len(members))
            members.append([i])
        else:
            thread_of.append(thread_of[parent])
            members[thread_of[parent]].append(i)

    ids: list[str] = []
    for thread in members:
        oldest = thread[-1]
        ids.append("th_" + stable_hash(keys[oldest], items[oldest].time, normalize_text(items[oldest].text))[:16])
    return [ids[t] for t in thread_of]


# --------------------------------------------------------------------------
# Article
# --------------------------------------------------------------------------

MAX_TITLE_WORDS = 20
# A line ending with one of these is a sentence, not a headline. Closing
# quotes/brackets are skipped first: `... "محكوم عليها بالفشل".` ends in ".".
_SENTENCE_END = ".!?؟…:،,;؛"
_CLOSERS = "\"'»«”“’)]}"


def _looks_like_title(line: str) -> bool:
    """Short, not a sentence, and with at least one letter (not "25:99")."""
    return (
        len(line.split()) <= MAX_TITLE_WORDS
        and not line.rstrip(_CLOSERS).endswith(tuple(_SENTENCE_END))
        and any(ch.isalpha() for ch in line)
    )


def _article(paragraphs: list[str]) -> list[ParsedArticle]:
    if not paragraphs:
        return []
    title = ""
    if len(paragraphs) > 1 and _looks_like_title(paragraphs[0]):
        title, paragraphs = paragraphs[0], paragraphs[1:]
    return [ParsedArticle(title=title, body="\n\n".join(paragraphs), paragraphs=paragraphs)]


# --------------------------------------------------------------------------
# parse_page
# --------------------------------------------------------------------------


def _timetext_is_prose(prev: str | None, nxt: _Kind | None) -> bool:
    """Is a "HH:MM words..." line a paragraph that happens to start with a time?

    Yes when it has prose (or the edge of the page) on both sides: a ticker
    line sits next to separators, times, chrome or other ticker lines. A page
    that is nothing but that one line is taken as a ticker line.
    """
    if prev is None and nxt is None:
        return False
    return prev in (None, "prose") and nxt in (None, "text")


def parse_page(text: str) -> ParsedPage:
    """Parse the text of a news page into its article and ticker.

    Never raises on ``str`` input: whatever is not recognised as a ticker item
    or chrome becomes article text, and an empty or chrome-only page gives a
    page with no articles and no ticker.
    """
    records = [_classify(ln) for ln in (ln.strip() for ln in clean_text(text).split("\n")) if ln]

    paragraphs: list[str] = []
    raw_items: list[tuple[str, str]] = []  # (time, item line) in page order
    pending_time: str | None = None  # a time line waiting for its item line
    # What the previous record turned out to be: "prose", "ticker" or
    # "boundary" (separator/chrome); None at the top of the page.
    prev: str | None = None

    for i, rec in enumerate(records):
        if rec.kind in ("sep", "chrome"):
            # Neither ends a pending item: "22:35", "-", "text" is one item.
            prev = "boundary"
        elif rec.kind == "time":
            # A time whose item line never comes (next is another time) is dropped.
            pending_time = rec.time
            prev = "ticker"
        elif rec.kind == "timetext":
            nxt = records[i + 1].kind if i + 1 < len(records) else None
            if pending_time is None and _timetext_is_prose(prev, nxt):
                paragraphs.append(rec.line)
                prev = "prose"
            else:
                raw_items.append((rec.time, rec.text))
                pending_time = None
                prev = "ticker"
        elif pending_time is not None:  # text: the item line of a time
            raw_items.append((pending_time, rec.text))
            pending_time = None
            prev = "ticker"
        else:  # text: prose, before, between or after the ticker
            paragraphs.append(rec.text)
            prev = "prose"

    items = [_Item(time, *_split_item(line)) for time, line in raw_items]
    ticker = [
        ParsedTickerLine(
            time=item.time,
            text=item.text,
            attribution=item.attribution,
            continues_previous=item.continues,
            thread_id=thread_id,
        )
        for item, thread_id in zip(items, _thread_ids(items), strict=True)
    ]
    return ParsedPage(articles=_article(paragraphs), ticker=ticker)

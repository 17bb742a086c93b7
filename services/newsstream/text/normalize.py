"""Text cleaning and Arabic-aware normalisation.

Two levels, for two different jobs:

* :func:`clean_text` is for **display and storage**. It removes what is
  invisible and harmful (bidi controls, zero-width characters, control
  characters, lone surrogates), tidies whitespace and line endings, and applies
  Unicode NFC. It never changes a visible letter: an editor reading the stored
  text sees what the source published.

* :func:`normalize_text` is for **matching, search and hashing**. It erases
  the spelling variation that Arabic news text is full of (diacritics,
  tatweel, alef/yeh/teh-marbuta variants, Persian letter forms, Arabic-Indic
  digits, typographic quotes, Latin case) so that two copies of one story
  written with different keyboards or house styles normalise to the same
  string. Its output is not meant to be shown to anyone.

``normalize_text`` runs on every event in the worker and feeds ids and content
hashes (see :mod:`newsstream.contract.ids`), so it must be fast and idempotent, and
its output must never change for a given input without a deliberate version
bump: changing a rule here changes every content hash.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["clean_text", "normalize_text", "word_count"]

# --------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------

# Bidirectional formatting controls: LRM, RLM, LRE/RLE/PDF/LRO/RLO,
# LRI/RLI/FSI/PDI, and the Arabic letter mark. Sites sprinkle these around
# numbers and Latin words in RTL text; they are invisible and break matching.
_BIDI_CONTROLS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"

# Zero-width characters removed everywhere: ZWSP, ZWJ, BOM/ZWNBSP, word joiner.
# ZWNJ (U+200C) is *not* here: in Persian (and Kurdish, Urdu) it is part of the
# spelling ("می‌خواهم"), so clean_text keeps it; normalize_text drops it.
_ZERO_WIDTH = "\u200b\u200d\ufeff\u2060"
_ZWNJ = "\u200c"

# Line boundaries as str.splitlines() understands them, mapped to "\n" so that
# every later step (and the page parser) can split on "\n" alone.
# "\r\n" is handled before the table because it is two characters.
_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# Control characters that have no business in stored text: PostgreSQL rejects
# NUL, and \x1f is the separator newsstream.contract.ids joins hash parts with.
# Tab (\x09) and line feed (\x0a) are whitespace, handled separately.
_CONTROLS = "".join(
    chr(c) for c in [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x1F, *range(0x7F, 0x85), *range(0x86, 0xA0)]
)

# Lone surrogates can appear in str built from badly decoded input; they cannot
# be encoded as UTF-8 (orjson, hashing and PostgreSQL would all fail later).
_SURROGATES = range(0xD800, 0xE000)

_REPLACEMENT = "\ufffd"


def _clean_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for ch in _BIDI_CONTROLS + _ZERO_WIDTH + _CONTROLS:
        table[ord(ch)] = None
    for ch in _LINE_BREAKS:
        table[ord(ch)] = "\n"
    for cp in _SURROGATES:
        table[cp] = _REPLACEMENT
    return table


def _char_class(codepoints: Iterable[int], run: bool = False) -> re.Pattern[str]:
    """A compiled ``[...]`` class (of runs if ``run``) matching the code points."""
    cps = sorted(set(codepoints))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return re.compile(f"[{''.join(parts)}]{'+' if run else ''}")


class _Translator:
    """``str.translate(table)``, but several times faster on Arabic text.

    ``str.translate`` with a dict costs ~70 ns per *character* outside ASCII
    (it boxes every code point and looks it up), i.e. ~10 µs for a ticker
    line. Here the table is split three ways, with identical results:

    * deletions: one regex substitution with a constant "" (C speed, no
      Python callback);
    * the few characters that are frequent in Arabic text (``ة ى أ إ``...):
      plain ``str.replace``, skipped when absent;
    * everything else (rare: digits, quotes, punctuation, line separators,
      surrogates): one regex substitution with a dict-lookup callback.

    This is equivalent to one translate because no replacement produces a
    character that is itself deleted or mapped (checked at construction).
    """

    __slots__ = ("_delete_re", "_frequent", "_rare", "_rare_re")

    def __init__(self, table: dict[int, str | None], frequent: str = "") -> None:
        mapped = {chr(cp): out for cp, out in table.items() if out is not None}
        for out in mapped.values():
            if any(ord(c) in table for c in out):
                raise ValueError(f"table output {out!r} is itself translated: one pass would not be enough")
        self._delete_re = _char_class((cp for cp, out in table.items() if out is None), run=True)
        self._frequent = [(ch, mapped[ch]) for ch in frequent]
        self._rare = {ch: out for ch, out in mapped.items() if ch not in frequent}
        self._rare_re = _char_class(map(ord, self._rare))

    def __call__(self, text: str) -> str:
        # re.search scans ~3x faster than re.sub, and most news lines have
        # nothing to delete: substitute only from the first hit onwards.
        if m := self._delete_re.search(text):
            start = m.start()
            text = text[:start] + self._delete_re.sub("", text[start:])
        for src, dst in self._frequent:
            if src in text:
                text = text.replace(src, dst)
        rare = self._rare
        return self._rare_re.sub(lambda m: rare[m.group()], text)


_CLEAN_TABLE = _clean_table()
_clean_translate = _Translator(_CLEAN_TABLE)

# Horizontal whitespace, i.e. Python's whitespace minus the line breaks (which
# are all "\n" by then): tab, space, NBSP, ogham space, U+2000-U+200A, narrow
# NBSP, medium mathematical space, ideographic space.
_HS = "\t \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
# Only runs that are not already a single " " are rewritten: a pattern matching
# every single space costs a substitution per word for nothing.
_HSPACE_RE = re.compile(f"[{_HS.replace(' ', '')}][{_HS}]*| [{_HS}]+")
# Pre-check: whitespace other than " " (a plain search scans much faster than
# a substitution, and most text has only single spaces).
_ODD_SPACE_RE = re.compile(f"[{_HS.replace(' ', '')}]")


def clean_text(text: str) -> str:
    """Clean text for display and storage without changing what a reader sees.

    * removes bidi controls, zero-width characters (ZWNJ is kept: it is part of
      Persian spelling), C0/C1 control characters; lone surrogates become U+FFFD;
    * normalises line endings (CRLF, CR, U+2028, NEL, ...) to ``"\\n"``;
    * applies Unicode NFC (composes e.g. alef + combining hamza into ``أ``);
    * collapses runs of horizontal whitespace (spaces, tabs, NBSP...) to one
      space, strips spaces at the end (and start) of each line and blank
      lines at both ends of the text (blank lines inside are kept).

    Letters, diacritics and punctuation are left exactly as they were.
    Idempotent: ``clean_text(clean_text(x)) == clean_text(x)``.
    """
    if not text:
        return ""
    # Invisible characters go *before* NFC: "a" + ZWJ + U+0301 only composes
    # once the ZWJ is gone, and doing it in the other order would leave a
    # decomposed sequence that a second pass would compose (not idempotent).
    text = _clean_translate(text.replace("\r\n", "\n"))
    text = unicodedata.normalize("NFC", text)
    if "  " in text or _ODD_SPACE_RE.search(text):
        text = _HSPACE_RE.sub(" ", text)
    # After collapsing there is at most one space on either side of a "\n".
    # Leading spaces go as well as trailing ones: indentation is never
    # meaningful in a news item, and it would make two copies of one
    # paragraph differ for storage-level comparisons.
    if "\n" in text:
        text = text.replace(" \n", "\n").replace("\n ", "\n")
    return text.strip(" \n")


# --------------------------------------------------------------------------
# normalize_text
# --------------------------------------------------------------------------


def _match_table() -> dict[int, str | None]:
    """The single translation table behind normalize_text (the one place
    where the rules live).

    It contains the clean_text deletions too, so normalize_text needs one
    pass rather than two.
    """
    table = dict(_CLEAN_TABLE)
    delete = [
        _ZWNJ,
        "\u00ad",  # soft hyphen: invisible, splits words for matching
        # Harakat and tanween (fathatan..sukun), then maddah/hamza above/below
        # and the other combining marks of the Arabic block (U+0653-U+065F).
        # Deleting all of U+064B-U+065F (not only up to sukun U+0652) keeps the
        # function idempotent: a stray combining hamza left after e.g. "ى"
        # would otherwise compose with the "ي" we produce on a second pass.
        *map(chr, range(0x064B, 0x0660)),
        "\u0670",  # superscript (dagger) alef
        "\u0640",  # tatweel: typographic stretching, "الطاقـة" == "الطاقة"
        *map(chr, range(0x06D6, 0x06EE)),  # Quranic annotation marks
        "\u0610\u0611\u0612\u0613\u0614\u0615\u0616\u0617\u0618\u0619\u061a",  # honorific/Quranic small marks
    ]
    for chars in delete:
        for ch in chars:
            table[ord(ch)] = None

    mapping = {
        # Alef with hamza above/below, with madda, wasla; wavy-hamza alefs.
        "أإآٱٲٳ": "ا",
        "ى": "ي",  # alef maqsura -> yeh ("على" / "علي" are spelt both ways)
        "ة": "ه",  # teh marbuta -> heh (commonly written without dots)
        # Persian ezafe heh. NFC composes ە + hamza into ۀ, and the hamza is
        # deleted above, so ە must map where ۀ does or normalize_text(x) and
        # normalize_text(clean_text(x)) would differ. (This merges Kurdish
        # ە with ه: acceptable for matching.) Same for the Urdu ۂ and ۓ.
        "ۀە": "ه",
        "ۂ": "ہ",
        "ۓ": "ے",
        "ؤ": "و",  # hamza on waw
        "ئ": "ي",  # hamza on yeh
        "ی": "ي",  # Persian/Farsi yeh (U+06CC)
        "ک": "ك",  # Persian keheh (U+06A9)
        # Arabic punctuation -> ASCII
        "،": ",",
        "؛": ";",
        "؟": "?",
        "٫": ".",  # Arabic decimal separator: "٣٫٥" -> "3.5"
        "٬": ",",  # Arabic thousands separator
        "٪": "%",
        "۔": ".",  # Urdu full stop
        "：": ":",  # fullwidth colon, seen in ticker attributions
        # Quote marks -> ASCII double quote. ASCII ' is included on purpose:
        # ’ is both a quote and an apostrophe, and mapping only the curly one
        # would make "don't" and "don’t" normalise differently.
        "«»“”„‟‘’‚‛‹›'＂＇": '"',
    }
    for sources, target in mapping.items():
        for ch in sources:
            table[ord(ch)] = target

    # Arabic-Indic (U+0660-0669) and Eastern Arabic-Indic (U+06F0-06F9) digits.
    for i in range(10):
        table[0x0660 + i] = str(i)
        table[0x06F0 + i] = str(i)
    return table


_MATCH_TABLE = _match_table()
# The most frequent table characters in Arabic/Persian news text.
_match_translate = _Translator(_MATCH_TABLE, frequent="ةىأإآؤئ،یک")


def normalize_text(text: str) -> str:
    """Normalise text for matching, search and hashing (not for display).

    Equivalent to :func:`clean_text` followed by: removal of Arabic diacritics,
    tatweel and Quranic marks; alef variants -> ``ا``; ``ى`` -> ``ي``; ``ة`` ->
    ``ه``; ``ؤ`` -> ``و``; ``ئ`` -> ``ي``; Persian ``ی``/``ک`` -> ``ي``/``ك``;
    Arabic-Indic digits -> ASCII; ``، ؛ ؟`` -> ``, ; ?``; quote marks -> ``"``;
    casefolding; ZWNJ removal; all whitespace (newlines included) collapsed to
    single spaces; stripped.

    Idempotent: ``normalize_text(normalize_text(x)) == normalize_text(x)``.
    """
    if not text:
        return ""
    # The table is applied *before* NFC (same reason as in clean_text:
    # invisible characters must be gone before composition). Deleting every
    # Arabic combining mark here means NFC can never produce a letter the table
    # would have mapped, so one pass of the table is enough. clean_text's
    # whitespace steps are subsumed by the final split/join.
    text = unicodedata.normalize("NFC", _match_translate(text))
    # casefold() can leave a decomposed sequence ("ſ" + U+0301 -> "s" + U+0301)
    # that NFC would compose on a second pass; a final NFC keeps the function
    # idempotent. NFC has an ASCII/quick-check fast path, so this is cheap.
    text = unicodedata.normalize("NFC", text.casefold())
    # str.split() with no argument splits on runs of Unicode whitespace and
    # drops empty ends: the same as re.sub(r"\s+", " ", text).strip(), but
    # measurably faster on every event.
    return " ".join(text.split())


# --------------------------------------------------------------------------
# word_count
# --------------------------------------------------------------------------


@functools.cache
def _word_re() -> re.Pattern[str]:
    """Compiled lazily: building the combining-mark class scans the BMP (~10 ms)."""
    # Python's \w does not match combining marks, so "أكّد" (with shadda) would
    # count as two words. Collect every combining mark (categories Mn, Mc, Me)
    # of the Basic Multilingual Plane into ranges for a character class.
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    marks = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    # A word starts with a letter or digit (\w without "_") and continues with
    # word characters, combining marks, and zero-width (non-)joiners, which
    # sit *inside* Persian words. (One character class rather than an
    # alternation: it is markedly faster. The price: "a_b" is one word.)
    rest = rf"[\w{marks}\u200c\u200d]*"
    # It may continue across an internal apostrophe ("don't") or, between
    # digits, a decimal/thousands/clock separator ("3.5", "1,000", "٣٫٥",
    # "22:35") so that a number counts once.
    joiner = r"(?:['’]|(?<=\d)[.,:٫٬](?=\d))"
    return re.compile(rf"[^\W_]{rest}(?:{joiner}[^\W_]{rest})*")


def word_count(text: str) -> int:
    """Number of words: runs of letters/digits in any script (with their
    combining marks); numbers count as words, punctuation does not.

    ``لـ"الروابط`` is two words (the quote separates them); ``أكّد`` is one;
    ``3.5`` and ``22:35`` are one each.
    """
    if not text:
        return 0
    return len(_word_re().findall(text))

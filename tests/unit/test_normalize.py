"""Tests for newsstream.text.normalize."""

from __future__ import annotations

import random
import unicodedata

import pytest

from newsstream.text import normalize as norm_module
from newsstream.text.normalize import clean_text, normalize_text, word_count

SEED_SENTENCE = (
    "أكّد وزير الخارجية الروسي، سيرغي لافروف، أنّ زعيمي روسيا والصين عازمان "
    'على التعزيز المستمر لـ"الروابط الروسية الصينية".'
)


# --------------------------------------------------------------------------
# clean_text
# --------------------------------------------------------------------------


class TestCleanText:
    def test_keeps_arabic_text_exactly(self) -> None:
        # Diacritics, hamzas, teh marbuta, Arabic comma, quotes: all untouched.
        assert clean_text(SEED_SENTENCE) == SEED_SENTENCE

    def test_keeps_persian_zwnj_and_letters(self) -> None:
        persian = "می\u200cخواهم کتاب یک"
        assert clean_text(persian) == persian

    @pytest.mark.parametrize(
        "char",
        list("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"),
    )
    def test_removes_bidi_controls(self, char: str) -> None:
        assert clean_text(f"الساعة{char} 22:35{char}") == "الساعة 22:35"

    @pytest.mark.parametrize("char", ["\u200b", "\u200d", "\ufeff", "\u2060"])
    def test_removes_zero_width(self, char: str) -> None:
        assert clean_text(f"{char}حماس{char}") == "حماس"

    def test_nfc(self) -> None:
        # alef + combining hamza above composes to أ; e + combining acute to é
        assert clean_text("\u0627\u0654") == "\u0623"
        assert clean_text("e\u0301") == "\u00e9"

    def test_invisibles_removed_before_composition(self) -> None:
        # The ZWJ blocks composition; removing it first lets NFC compose.
        assert clean_text("e\u200d\u0301") == "\u00e9"

    def test_line_endings(self) -> None:
        assert clean_text("a\r\nb\rc\u2028d\x85e") == "a\nb\nc\nd\ne"

    def test_whitespace_within_and_around_lines(self) -> None:
        assert clean_text("  أ \t\t ب  \u00a0 ج  \n  د   \n\n\nه  ") == "أ ب ج\nد\n\n\nه"

    def test_strips_blank_lines_at_ends(self) -> None:
        assert clean_text("\n\n  \nنص\n \n") == "نص"

    def test_controls_removed_and_surrogates_replaced(self) -> None:
        assert clean_text("a\x00b\x1fc\x7fd\ud800e") == "abcd\ufffde"

    def test_empty(self) -> None:
        assert clean_text("") == ""
        assert clean_text(" \n\t \r\n") == ""


# --------------------------------------------------------------------------
# normalize_text
# --------------------------------------------------------------------------


class TestNormalizeText:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            # tashkeel (fatha, damma, kasra, sukun, shadda, tanween)
            ("كَتَبَ الوَلَدُ", "كتب الولد"),
            ("أكّد مُحمّدٌ مجدداً", "اكد محمد مجددا"),
            ("بِسْمِ", "بسم"),
            ("الرَّحْمَٰنِ", "الرحمن"),  # U+0670 superscript alef
            ("الطاقـــة", "الطاقه"),  # tatweel
            ("قُلْ\u06d6 هُوَ\u06e2", "قل هو"),  # Quranic marks
        ],
    )
    def test_removes_diacritics_and_tatweel(self, raw: str, expected: str) -> None:
        assert normalize_text(raw) == expected

    @pytest.mark.parametrize("alef", ["أ", "إ", "آ", "ٱ"])
    def test_unifies_alef(self, alef: str) -> None:
        assert normalize_text(f"{alef}حمد") == "احمد"

    def test_alef_maqsura_ta_marbuta_hamza_seats(self) -> None:
        assert normalize_text("على") == "علي"
        assert normalize_text("مدرسة") == "مدرسه"
        assert normalize_text("مؤتمر") == "موتمر"
        assert normalize_text("رئيس") == "رييس"

    def test_persian_letters(self) -> None:
        assert normalize_text("یک") == "يك"
        assert normalize_text("ایران") == normalize_text("إيران") == "ايران"

    def test_persian_zwnj_removed(self) -> None:
        assert normalize_text("می\u200cخواهم") == "ميخواهم"

    def test_digits(self) -> None:
        assert normalize_text("٠١٢٣٤٥٦٧٨٩") == "0123456789"
        assert normalize_text("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
        assert normalize_text("٢٢:٣٥") == "22:35"
        assert normalize_text("٣٫٥٪") == "3.5%"

    def test_arabic_punctuation(self) -> None:
        assert normalize_text("نعم، لا؛ لماذا؟") == "نعم, لا; لماذا?"

    @pytest.mark.parametrize("quote", ["«", "»", "“", "”", "„", "‘", "’", "'"])
    def test_quotes(self, quote: str) -> None:
        assert normalize_text(f"{quote}حماس{quote}") == '"حماس"'

    def test_guillemets_and_ascii_quotes_equal(self) -> None:
        assert normalize_text("«حماس»: بيان") == normalize_text('"حماس": بيان')

    def test_casefold(self) -> None:
        assert normalize_text("Reuters SAID Straße") == "reuters said strasse"

    def test_whitespace(self) -> None:
        assert normalize_text("  سطر\nثان\r\n\tثالث\u00a0\u3000رابع  ") == "سطر ثان ثالث رابع"

    def test_bidi_and_zero_width(self) -> None:
        assert normalize_text("\u200fحماس\u200b\u202a:\u202c") == "حماس:"

    def test_variants_of_one_headline_normalise_equal(self) -> None:
        a = "أكّد الرئيسُ «الإيراني» على ضرورة الحوار؟ ٢٠٢٥"
        b = 'اكد الرييس "الايراني" علي ضروره الحوار? 2025'
        assert normalize_text(a) == normalize_text(b) == b

    def test_does_not_merge_distinct_letters(self) -> None:
        # Normalisation must not be so aggressive that different words collide.
        assert normalize_text("قال") != normalize_text("قيل")
        assert normalize_text("ك") != normalize_text("ل")

    def test_empty(self) -> None:
        assert normalize_text("") == ""
        assert normalize_text("\u064b\u0640 \u200f") == ""

    def test_idempotent_on_examples(self) -> None:
        for text in [SEED_SENTENCE, "ſ\u0301", "ǰ", "İstanbul", "ى\u0654", "ە\u0654", "ہ\u0651\u0654", "e\u200d\u0301"]:
            once = normalize_text(text)
            assert normalize_text(once) == once, text

    def test_same_as_normalising_clean_text(self) -> None:
        # Letters NFC composes from base + deleted hamza must map like the base.
        for text in ["ە\u0654", "ہ\u0654", "ے\u0654", "ى\u0654", "و\u0654", "ا\u0653", SEED_SENTENCE]:
            assert normalize_text(clean_text(text)) == normalize_text(text), text

    def test_matches_single_table_reference(self) -> None:
        """The fast path gives exactly what one str.translate of the table gives."""

        def reference(text: str) -> str:
            text = unicodedata.normalize("NFC", text.translate(norm_module._MATCH_TABLE))
            return " ".join(unicodedata.normalize("NFC", text.casefold()).split())

        rng = random.Random(7)
        pool = _fuzz_pool()
        for _ in range(3000):
            text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))
            assert normalize_text(text) == reference(text), repr(text)


def _fuzz_pool() -> list[str]:
    """Characters that stress the rules: Latin with marks, all of the Arabic
    block, bidi/zero-width/controls, whitespace, surrogates, quotes."""
    cps = [*range(0x00, 0x250), *range(0x300, 0x370), *range(0x600, 0x700), *range(0x2000, 0x2070)]
    cps += [0xD800, 0xDFFF, 0xFEFF, 0x3000, 0xFF1A, 0x01F0, 0x017F, 0x0130]
    return [chr(c) for c in cps] + [" ", "\n", "\r\n", "ا", "ي", "ه"] * 20


def test_idempotent_and_total_fuzz() -> None:
    rng = random.Random(20260526)
    pool = _fuzz_pool()
    for _ in range(5000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        cleaned = clean_text(text)
        normalized = normalize_text(text)
        assert clean_text(cleaned) == cleaned, repr(text)
        assert normalize_text(normalized) == normalized, repr(text)
        assert normalize_text(cleaned) == normalized, repr(text)
        # Output must be storable and hashable as UTF-8, and never contain the
        # \x1f separator that newsstream.contract.ids joins hash parts with.
        normalized.encode("utf-8")
        cleaned.encode("utf-8")
        assert "\x1f" not in normalized and "\x1f" not in cleaned


# --------------------------------------------------------------------------
# word_count
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("  ، . - «» : ", 0),
        ("أكّد وزير الخارجية", 3),  # shadda does not split a word
        ('لـ"الروابط الروسية"', 3),
        ("الساعة 22:35 يوم 3.5 و ١٬٠٠٠", 6),  # numbers count once each
        ("می\u200cخواهم", 1),  # ZWNJ is inside a Persian word
        ("The minister didn't say.", 4),
        ("e\u0301te\u0301 COVID-19", 3),
    ],
)
def test_word_count(text: str, expected: int) -> None:
    assert word_count(text) == expected


def test_word_count_seed_sentence() -> None:
    # Punctuation (، . ") separates words but does not count: 18 words.
    assert word_count(SEED_SENTENCE) == 18

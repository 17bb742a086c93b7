"""Tests for newsstream.text.language."""

from __future__ import annotations

import pytest

from newsstream.text import language
from newsstream.text.language import detect_language

ARABIC = "الخارجية التركية: إسرائيل تلعب دور المزعزع الاستراتيجي في المنطقة مما يؤدي إلى الفوضى"
ENGLISH = "The foreign ministry said on Tuesday that the talks would resume in Geneva next week."
PERSIAN = "وزیر امور خارجه ایران روز سه‌شنبه گفت که مذاکرات هفته آینده در ژنو ادامه خواهد یافت"
FRENCH = "Le ministre des affaires étrangères a déclaré mardi que les négociations reprendraient."


@pytest.mark.parametrize(
    ("text", "code"),
    [(ARABIC, "ar"), (ENGLISH, "en"), (PERSIAN, "fa"), (FRENCH, "fr")],
)
def test_detects_language_with_high_probability(text: str, code: str) -> None:
    detected, probability = detect_language(text)
    assert detected == code
    assert 0.9 <= probability <= 1.0


def test_persian_is_not_confused_with_arabic() -> None:
    # Same script; Persian letters (ی ک ژ) and the ZWNJ must tip it to fa.
    assert detect_language(PERSIAN)[0] == "fa"
    assert detect_language(ARABIC)[0] == "ar"


def test_arabic_dialect_labels_fold_into_ar() -> None:
    # py3langid has arz/ary labels; the contract is ISO 639-1, so Egyptian
    # Arabic is reported as "ar" with the dialect's probability mass included.
    code, probability = detect_language("إزيك يا باشا عامل ايه النهارده، انا كويس الحمد لله")
    assert code == "ar"
    assert probability > 0.9


@pytest.mark.parametrize("text", ["", "   \n\t", "22:35", "١٢٣ ٤٥٦", "!!! ؟؟؟ ...", "ok", "\u200f\u200b"])
def test_undetermined(text: str) -> None:
    assert detect_language(text) == ("und", 0.0)


def test_returns_plain_float_in_range() -> None:
    code, probability = detect_language("سلام")
    assert isinstance(code, str) and len(code) == 2
    assert type(probability) is float
    assert 0.0 <= probability <= 1.0


def test_model_loaded_once() -> None:
    detect_language(ARABIC)
    first = language._get_identifier()
    detect_language(ENGLISH)
    assert language._get_identifier() is first

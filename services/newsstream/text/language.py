"""Language identification with py3langid.

py3langid is a small naive-Bayes model over byte n-grams (97 languages plus a
few dialect/script variants): fast (tens of µs per line), no network, model
shipped in the wheel. Its weak spot is very short text, which is why lines with
too few letters are reported as undetermined rather than guessed.

A later issue compares lingua; keep this module's interface
(``detect_language(text) -> (code, probability)``) when swapping engines.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from newsstream.text.normalize import clean_text

if TYPE_CHECKING:  # pragma: no cover - typing only
    from py3langid.langid import LanguageIdentifier

__all__ = ["UNDETERMINED", "MIN_LETTERS", "detect_language"]

UNDETERMINED = "und"  # ISO 639-2 code for "undetermined"

# Below this many letters a guess is noise: py3langid gives e.g. "ok" -> sr.
MIN_LETTERS = 3

# The model has labels that are not ISO 639-1. Fold the ones with a 639-1
# parent into it (summing their probability: Egyptian + Modern Standard
# Arabic evidence is all Arabic evidence), and map "zxx" (no linguistic
# content) to undetermined. Other 639-3-only labels (e.g. "ace", "kab") have
# no 639-1 code and are returned as they are.
_LABEL_TO_ISO639_1: dict[str, str] = {
    "arz": "ar",  # Egyptian Arabic
    "ary": "ar",  # Moroccan Arabic
    "uzs": "uz",  # Southern Uzbek (Arabic script)
    "sdh": "ku",  # Southern Kurdish
    "wuu": "zh",  # Wu Chinese
    "yue": "zh",  # Cantonese
    "gug": "gn",  # Paraguayan Guarani
    "zxx": UNDETERMINED,
}

_identifier: LanguageIdentifier | None = None
_fold: tuple[object, object, list[str]] | None = None  # (kept class indexes, fold matrix, codes)
_lock = threading.Lock()


def _get_identifier() -> LanguageIdentifier:
    """Load the model once per process, on first use (~0.6 s, ~40 MB).

    Lazy so that importing newsstream (CLI, tests, other services) does not pay
    for it; locked because faust may call from more than one thread.
    """
    global _identifier, _fold
    if _identifier is None:
        with _lock:
            if _identifier is None:
                import numpy as np
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                # norm_probs=True: scores are softmax probabilities in [0, 1]
                # instead of the default unnormalised log-probabilities.
                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                # Folding labels into ISO 639-1 codes as one matrix product: a Python
                # loop over the ~140 model classes cost more than the model itself.
                # The model lists alias labels twice; the first column is the merged one.
                first: dict[str, int] = {}
                for index, label in enumerate(identifier.nb_classes):
                    first.setdefault(label, index)
                codes = sorted({_LABEL_TO_ISO639_1.get(label, label) for label in first})
                fold = np.zeros((len(first), len(codes)), dtype=np.float64)
                for row, label in enumerate(first):
                    fold[row, codes.index(_LABEL_TO_ISO639_1.get(label, label))] = 1.0
                _fold = (np.fromiter(first.values(), dtype=np.intp), fold, codes)
                _identifier = identifier
    return _identifier


def _letter_count(text: str, limit: int) -> int:
    """Number of alphabetic characters, counting stops at ``limit``."""
    n = 0
    for ch in text:
        if ch.isalpha():
            n += 1
            if n >= limit:
                break
    return n


def detect_language(text: str) -> tuple[str, float]:
    """Detect the language of ``text``.

    Returns ``(code, probability)``: an ISO 639-1 code (``"ar"``, ``"en"``,
    ``"fa"``...) and the model's normalised probability in [0, 1]. Text with
    fewer than :data:`MIN_LETTERS` letters (empty, digits, punctuation, a
    single short word) gives ``("und", 0.0)``.
    """
    # clean_text drops bidi/zero-width noise but keeps ZWNJ, which is itself a
    # strong Persian signal ("می‌خواهم").
    text = clean_text(text)
    if _letter_count(text, MIN_LETTERS) < MIN_LETTERS:
        return UNDETERMINED, 0.0

    identifier = _get_identifier()
    assert _fold is not None
    kept, fold, codes = _fold
    # _decide gives the per-class probabilities that rank() sorts (py3langid 0.4).
    scores = identifier._decide(text)[kept] @ fold  # type: ignore[index, operator]
    best = int(scores.argmax())
    code, prob = codes[best], float(scores[best])
    if code == UNDETERMINED:
        return UNDETERMINED, 0.0
    # Float sums can land a hair outside [0, 1]; Enrichment validates the range.
    return code, min(max(prob, 0.0), 1.0)

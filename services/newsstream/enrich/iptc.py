"""IPTC Media Topics (top level), multi-label with calibrated scores.

Run time is numpy only: stemmed word unigrams and bigrams of the normalised
text are looked up in a fixed vocabulary, weighted TF-IDF (sublinear tf, L2
norm) and multiplied by a linear one-vs-rest weight matrix (trained with
scikit-learn's LinearSVC by ``tools/train_topics.py``); a per-class Platt sigmoid
(fitted on cross-validated decision values) turns margins into scores.
Model: ``data/topics_iptc.npz`` + ``data/topics_iptc.md``.

With the article's vector (embeddings on), a stacked head reads the margins
together with the vector: one logistic regression per class over both
(``data/topics_iptc_vectors.npz`` + ``.md``; 5-fold CV macro-F1 0.955 against
0.949 for the text model alone). Ticker lines keep the text model: the head
learnt from articles' title-and-lead vectors, and no labelled lines exist to
check it on.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

import numpy as np

from newsstream.text.normalize import normalize_text

__all__ = ["IPTC_LABELS", "TopicModel", "VectorHead", "get_topic_model", "classify", "features"]

DATA = Path(__file__).parent / "data"
MODEL_FILE = DATA / "topics_iptc.npz"
VECTORS_MODEL_FILE = DATA / "topics_iptc_vectors.npz"

IPTC_LABELS = {
    "medtop:01000000": "arts, culture, entertainment and media",
    "medtop:02000000": "crime, law and justice",
    "medtop:03000000": "disaster, accident and emergency incident",
    "medtop:04000000": "economy, business and finance",
    "medtop:05000000": "education",
    "medtop:06000000": "environment",
    "medtop:07000000": "health",
    "medtop:08000000": "human interest",
    "medtop:09000000": "labour",
    "medtop:10000000": "lifestyle and leisure",
    "medtop:11000000": "politics",
    "medtop:12000000": "religion",
    "medtop:13000000": "science and technology",
    "medtop:14000000": "society",
    "medtop:15000000": "sport",
    "medtop:16000000": "conflict, war and peace",
    "medtop:17000000": "weather",
}

_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")
# Characters of normalize_text output that are not part of words.
_PUNCT = str.maketrans({c: " " for c in '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\u2013\u2014\u2026'})


@functools.lru_cache(maxsize=100_000)
def _stem(w: str) -> str:
    for p in _PREFIXES:
        if w.startswith(p) and len(w) - len(p) >= 3:
            return w[len(p):]
    return w


def features(title: str, text: str, max_chars: int = 4000) -> list[str]:
    """Unigrams and bigrams of stemmed, normalised words (title first)."""
    words = [_stem(w) for w in normalize_text(f"{title} \n {text[:max_chars]}").translate(_PUNCT).split()]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class VectorHead:
    """The stacked head: calibrated one-vs-rest probabilities from the text
    model's margins and the item's vector (``embedding.centred_unit``)."""

    def __init__(self, path: Path = VECTORS_MODEL_FILE) -> None:
        z = np.load(path, allow_pickle=False)
        self.W = z["W"].astype(np.float32)  # (classes + dims, classes)
        self.b = z["b"].astype(np.float32)
        self.classes = [str(c) for c in z["classes"]]
        self.text_model = str(z["text_model"])
        self.version = str(z["version"])

    def probabilities(self, margins: np.ndarray, vector: np.ndarray) -> np.ndarray:
        z = np.concatenate([margins.astype(np.float32), vector.astype(np.float32)]) @ self.W + self.b
        return 1.0 / (1.0 + np.exp(-z))


class TopicModel:
    def __init__(self, path: Path = MODEL_FILE, vectors_path: Path | None = VECTORS_MODEL_FILE) -> None:
        z = np.load(path, allow_pickle=False)
        self.vocab = {w: i for i, w in enumerate(json.loads(bytes(z["vocab"]).decode("utf-8")))}
        self.idf = z["idf"].astype(np.float32)
        self.W = z["W"].astype(np.float32)  # (n_features, n_classes)
        self.b = z["b"].astype(np.float32)
        self.platt = z["platt"].astype(np.float32)  # (n_classes, 2): a, c
        self.classes = [str(c) for c in z["classes"]]
        self.version = str(z["version"])
        self.head: VectorHead | None = None
        if vectors_path is not None and vectors_path.exists():
            head = VectorHead(vectors_path)
            # the head learnt this text model's margins: another model's would mislead it
            if head.text_model != self.version or head.classes != self.classes:
                raise ValueError(f"{vectors_path.name} was stacked on {head.text_model}, not {self.version}: "
                                 "rebuild it (tools/build_models.py topics-vectors)")
            self.head = head

    def margins(self, title: str, text: str) -> np.ndarray:
        vocab = self.vocab
        counts: dict[int, int] = {}
        for f in features(title, text):
            i = vocab.get(f)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return self.b.copy()
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        x = (1.0 + np.log(tf)) * self.idf[idx]
        x /= np.sqrt(float(x @ x))
        return x @ self.W[idx] + self.b

    def probabilities(self, title: str, text: str, vector: np.ndarray | None = None) -> np.ndarray:
        """Calibrated one-vs-rest score of each class (``self.classes``): the
        stacked head's with a ``vector``, else the Platt sigmoids'."""
        m = self.margins(title, text)
        if vector is not None and self.head is not None:
            return self.head.probabilities(m, vector)
        return 1.0 / (1.0 + np.exp(-(self.platt[:, 0] * m + self.platt[:, 1])))

    def scores(self, title: str, text: str, vector: np.ndarray | None = None) -> dict[str, float]:
        return {c: float(s) for c, s in zip(self.classes, self.probabilities(title, text, vector))}

    def predict(self, title: str, text: str, vector: np.ndarray | None = None) -> str:
        """The best class: by the head's probabilities with a vector, else by the margins."""
        with_head = vector is not None and self.head is not None
        best = self.probabilities(title, text, vector) if with_head else self.margins(title, text)
        return self.classes[int(np.argmax(best))]


_model: TopicModel | None = None
_lock = threading.Lock()


def get_topic_model() -> TopicModel:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = TopicModel()
    return _model


def classify(title: str, text: str, threshold: float = 0.5, max_topics: int = 3,
             vector: np.ndarray | None = None) -> list[dict]:
    """Topics whose calibrated score is at least ``threshold`` (the best one
    always), best first: ``[{"code", "label", "score"}]``. ``vector``: the
    article's vector (``embedding.centred_unit``), read by the stacked head."""
    sc = get_topic_model().scores(title, text, vector)
    ranked = sorted(sc.items(), key=lambda kv: -kv[1])
    out = [ranked[0]] + [kv for kv in ranked[1:max_topics] if kv[1] >= threshold]
    return [{"code": c, "label": IPTC_LABELS.get(c, c), "score": round(s, 4)} for c, s in out]

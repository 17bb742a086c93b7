"""Fit stage 3's same-story probability (the weights of ``dedup/stories.py``) on the shared pairs.

    .venv/bin/python tools/fit_story_similarity.py [--cache /tmp/pairs-vectors.npy]

Reads the human-scored same-story pairs (SemEval-2022 Task 8, shared data),
embeds every text exactly as the worker does (title and lead, int8 round
trip, centred on the detected language), fits a logistic regression of "same
story" (gold <= 2) on the cosine, and prints the weights to paste into
``COS_WEIGHT, LEX_WEIGHT, BIAS`` with 5-fold cross-validated figures (Pearson
of the probability with the gold scale, F1 at the stories' threshold) overall
and per language. Needs scikit-learn (the ``train`` extra).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from common import SHARED
from newsstream.dedup.stories import StoryConfig, content_terms, hash_terms, idf_weight, pair_similarity
from newsstream.enrich.embedding import ARTICLE_TOKENS
from newsstream.evaluation.stories import pair_vectors
from newsstream.text.normalize import normalize_text

PAIRS = SHARED / "semeval2022_task8_news_similarity" / "pairs.jsonl"
THRESHOLD = StoryConfig.vector_threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="keep the pairs' vectors in this .npy file")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    rows = [json.loads(line) for line in PAIRS.open(encoding="utf-8") if line.strip()]
    texts = sorted({t for r in rows for t in (r["text"], r["text_pair"])})
    if args.cache is not None and args.cache.exists():
        vectors = dict(zip(texts, np.load(args.cache)))
    else:  # exactly as `newsstream eval pairs` and stage 3: centred on the detected language
        vectors = pair_vectors([(r["text"], r["text_pair"]) for r in rows], ARTICLE_TOKENS)
        if args.cache is not None:
            np.save(args.cache, np.stack([vectors[t] for t in texts]))
    terms = {t: hash_terms(content_terms(normalize_text(t))) for t in texts}
    df = Counter(term for ids in terms.values() for term in ids)
    weight = idf_weight(lambda term: df[term], len(terms))
    cos = np.array([vectors[r["text"]] @ vectors[r["text_pair"]] for r in rows])
    lex = np.array([pair_similarity(terms[r["text"]], terms[r["text_pair"]], weight=weight) for r in rows])
    gold = np.array([float(r["label"]) for r in rows])
    same = gold <= 2.0
    lang = np.array([r["lang"] for r in rows])
    # The word similarity is measured and reported, but the probability uses the cosine alone: on
    # these pairs (many machine-translated round trips) adding it lowered the Pearson (docs/enrichment.md).
    features = cos[:, None]

    predicted = np.zeros(len(rows))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(features, same):
        model = LogisticRegression(C=1.0).fit(features[train], same[train])
        predicted[test] = model.predict_proba(features[test])[:, 1]
    report = {}
    for name, mask in (("all", np.ones(len(rows), bool)), *((lg, lang == lg) for lg in sorted(set(lang)))):
        p, g, s = predicted[mask], gold[mask], same[mask]
        flagged = p >= THRESHOLD
        tp = int((flagged & s).sum())
        report[name] = {"n": int(mask.sum()), "pearson": round(float(np.corrcoef(p, -g)[0, 1]), 4),
                        "f1": round(2 * tp / max(1, flagged.sum() + s.sum()), 4)}
    model = LogisticRegression(C=1.0).fit(features, same)
    (w_cos,), bias = model.coef_[0], model.intercept_[0]
    print(json.dumps({"cv": report, "pearson_word_similarity": round(float(np.corrcoef(lex, -gold)[0, 1]), 4),
                      "weights": {"COS_WEIGHT": round(float(w_cos), 3), "LEX_WEIGHT": 0.0, "BIAS": round(float(bias), 3)}},
                     indent=2))


if __name__ == "__main__":
    main()

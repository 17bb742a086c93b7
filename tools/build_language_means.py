"""Mean sentence vector per language, for stage 3's language-centred cosine.

Run through ``python tools/build_models.py language-means``; see
``enrich/data/e5_language_means.md``.

multilingual-e5 vectors of two unrelated texts in one language are closer
than those of two texts about one event in two languages would suggest: every
vector leans towards its language's mean. Subtracting that mean before the
cosine (per language, the worker's detected language) separates same-story
pairs better (the model card has the figures). The means come from texts of
the shared data, embedded as the worker embeds an article: Arabic news from
the ANT corpus, and every language of the same-story pairs (their texts only:
no labels are read).
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from common import DATA, SHARED, jsonl
from newsstream.contract.models import RawArticle
from newsstream.dedup.vectors import int8_vector, unit
from newsstream.enrich.embedding import ARTICLE_TOKENS, MODEL_ID, embed

OUT = DATA / "e5_language_means.npz"
ARABIC_NEWS = 600  # ANT articles (sampled with a fixed seed): a mean of 600 vectors is stable to ~1e-3


def _texts() -> dict[str, list[str]]:
    by_language: dict[str, set[str]] = defaultdict(set)
    for record in jsonl(SHARED / "semeval2022_task8_news_similarity" / "pairs.jsonl"):
        by_language[record["lang1"]].add(record["text"])
        by_language[record["lang2"]].add(record["text_pair"])
    news = [f"{r.get('title') or ''}\n{r['text']}".strip() for r in jsonl(SHARED / "ant_multisource_topics" / "train.jsonl")]
    random.Random(0).shuffle(news)
    by_language["ar"].update(news[:ARABIC_NEWS])
    return {language: sorted(texts) for language, texts in sorted(by_language.items())}


def build(cached: dict[str, np.ndarray] | None = None) -> dict[str, int]:
    """``cached``: text -> vector already computed the same way (to skip the encoder for them)."""
    now = datetime.now(UTC)
    means, counts = {}, {}
    for language, texts in _texts().items():
        known = [cached[text] for text in texts if cached and text in cached]
        todo = [text for text in texts if not cached or text not in cached]
        raws = [RawArticle(id=f"m{n}", source="means", body=text, fetched_at=now) for n, text in enumerate(todo)]
        vectors = list(known)
        for start in range(0, len(raws), 64):
            vectors += [unit(int8_vector(e.vector)) for e in embed(raws[start:start + 64], ARTICLE_TOKENS)]
            print(f"\r{language}: {len(vectors)}/{len(texts)}", end="", file=sys.stderr)
        print(file=sys.stderr)
        means[language] = np.mean(vectors, axis=0)
        counts[language] = len(vectors)
    languages = sorted(means)
    total = sum(counts.values())
    overall = sum(means[lg] * counts[lg] for lg in languages) / total
    np.savez_compressed(
        OUT,
        languages=np.array(languages + ["*"]),
        means=np.stack([means[lg] for lg in languages] + [overall]).astype(np.float32),
        model=np.array(MODEL_ID),
        tokens=np.array(ARTICLE_TOKENS),
    )
    print(json.dumps({"file": str(OUT), "bytes": OUT.stat().st_size, "texts": counts}), file=sys.stderr)
    return counts


def main(argv: list[str]) -> None:
    """``--cache TEXTS.json VECTORS.npy``: vectors of texts computed before (same encoder, same budget)."""
    cached = None
    if argv[:1] == ["--cache"]:
        texts = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        cached = dict(zip(texts, np.load(argv[2])))
    build(cached)


if __name__ == "__main__":
    main(sys.argv[1:])

"""How often two breaking-news lines reach stage 3's short-text bar, on real lines.

    .venv/bin/python tools/measure_line_pairs.py

The shared ``aja_breaking_ticker`` lines carry no story labels, so this uses
two proxies: *related* = adjacent lines with the same attribution ("أردوغان:"
twice in a row, usually one statement in parts), *unrelated* = lines at least
300 posts apart (weeks apart in that account). The attribution is cut off, as
the page parser does, so that it cannot be the shared word. It prints, for
several bars on the same-story probability of the language-centred cosine,
the share of each that reaches it on the vector alone and with a shared
content word (what ``dedup.stories.vector_similarity`` asks of two short texts).
"""

from __future__ import annotations

import json
import random
import re

import numpy as np

from common import SHARED
from newsstream.dedup.stories import StoryConfig, content_terms, same_story_probability
from newsstream.enrich.embedding import LINE_TOKENS
from newsstream.evaluation.stories import worker_vectors
from newsstream.text.normalize import normalize_text

TICKER = SHARED / "aja_breaking_ticker" / "ticker.jsonl"
_ATTRIBUTION = re.compile(r"^([^:]{2,40}):")
_PREFIX = re.compile(r"^عاجل\s*\|\s*")


def main() -> None:
    rows = [json.loads(line) for line in TICKER.open(encoding="utf-8")]
    lines = [_PREFIX.sub("", r["text"]).split("#")[0].strip() for r in rows]
    speakers = [m.group(1).strip() if (m := _ATTRIBUTION.match(t)) else None for t in lines]
    texts = [t.split(":", 1)[1].strip() if who else t for t, who in zip(lines, speakers)]
    vectors = worker_vectors(texts, LINE_TOKENS)
    terms = [content_terms(normalize_text(t)) for t in texts]
    weights = StoryConfig().vector_weights

    related = [(i, i + 1) for i in range(len(texts) - 1) if speakers[i] and speakers[i] == speakers[i + 1]]
    rng = random.Random(1)
    unrelated: list[tuple[int, int]] = []
    while len(unrelated) < 20_000:
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        if abs(i - j) >= 300:
            unrelated.append((i, j))

    def share(pairs: list[tuple[int, int]], bar: float, shared_word: bool) -> float:
        hits = [same_story_probability(float(vectors[i] @ vectors[j]), 0.0, weights) >= bar
                and (not shared_word or bool(terms[i] & terms[j])) for i, j in pairs]
        return float(np.mean(hits))

    print(f"{len(texts)} lines; related pairs {len(related)}, unrelated pairs {len(unrelated)}")
    print("bar   related  unrelated  | with a shared word: related  unrelated")
    for bar in (0.5, 0.6, 0.7, 0.8):
        print(f"{bar:.1f}   {share(related, bar, False):7.3f}  {share(unrelated, bar, False):9.4f}  |"
              f"                     {share(related, bar, True):7.3f}  {share(unrelated, bar, True):9.4f}")


if __name__ == "__main__":
    main()

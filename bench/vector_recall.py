"""Recall and cost of stage 3's vector index (usearch HNSW) on real news vectors.

    python bench/vector_recall.py [--cache /tmp/news-vectors.npy]

Embeds the texts of the shared topic, stream and pair sets as the worker does
(title and text, 128 tokens, centred on the detected language, int8; ~10 min
on one core, cached with ``--cache``), holds 1,000 out as queries and reports,
per HNSW setting, how often the exact nearest vector is among the 40 answers
stage 3 asks for, with the search and add times: on the real vectors alone,
and on a 100,000-vector window of the real ones plus perturbed copies (other
wordings of the same items). One machine, one run: compare figures from the
same run only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import orjson
from usearch.index import Index

from newsstream.enrich.embedding import ARTICLE_TOKENS
from newsstream.evaluation.stories import worker_vectors

SHARED = Path(os.environ.get("NEWSSTREAM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETTINGS = ((128, 128), (64, 64), (64, 128))  # (expansion_add, expansion_search); the worker ships 64/128
ANSWERS = 40  # what VectorIndex.nearest asks for: 10 stories x 4


def texts() -> list[str]:
    out: list[str] = []
    for name in ("ant_multisource_topics/train.jsonl", "iptc_topics/train.jsonl", "ant_jawharafm_topics/train.jsonl",
                 "ant_multisource_stream/stream.jsonl"):
        for line in (SHARED / name).read_bytes().splitlines():
            record = orjson.loads(line)
            text = f"{record.get('title') or ''}\n{record.get('text') or record.get('body') or ''}".strip()
            if text:
                out.append(text)
    for line in (SHARED / "semeval2022_task8_news_similarity" / "pairs.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        out += [record["text"], record["text_pair"]]
    return out


def vectors(cache: Path | None) -> np.ndarray:
    if cache is not None and cache.exists():
        return np.load(cache)
    result = worker_vectors(texts(), ARTICLE_TOKENS)
    if cache is not None:
        np.save(cache, result)
    return result


def measure(window: np.ndarray, queries: np.ndarray, label: str) -> None:
    exact = Index(ndim=window.shape[1], metric="cos", dtype="i8")
    exact.add(np.arange(len(window)), window)
    truth = [int(exact.search(q, 1, exact=True).keys[0]) for q in queries]
    tail = min(2000, len(window) // 10)  # the last vectors are added one by one and timed
    for add, search in SETTINGS:
        index = Index(ndim=window.shape[1], metric="cos", dtype="i8", connectivity=16,
                      expansion_add=add, expansion_search=search)
        index.add(np.arange(len(window) - tail), window[:-tail])
        started = time.perf_counter()
        for key in range(len(window) - tail, len(window)):
            index.add(key, window[key])
        add_ms = (time.perf_counter() - started) / tail * 1e3
        started = time.perf_counter()
        answers = [set(index.search(q, ANSWERS).keys.tolist()) for q in queries]
        search_ms = (time.perf_counter() - started) / len(queries) * 1e3
        hit = float(np.mean([t in a for t, a in zip(truth, answers)]))
        print(f"{label:<34} expansions {add:>3}/{search:<3} add {add_ms:.3f} ms  search {search_ms:.3f} ms  "
              f"exact nearest among the {ANSWERS} answers {hit:.4f}")


def int8(rows: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rows / np.abs(rows).max(axis=1, keepdims=True) * 127), -127, 127).astype(np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="where to keep the embedded vectors between runs")
    parser.add_argument("--window", type=int, default=100_000)
    args = parser.parse_args()
    real = vectors(args.cache).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    queries, held = int8(real[order[:1000]]), real[order[1000:]]
    measure(int8(held), queries, f"{len(held):,} real vectors")
    copies = held[rng.integers(0, len(held), max(0, args.window - len(held)))]
    noisy = copies + rng.normal(0, 1, copies.shape) * np.abs(held).mean() * 1.2
    measure(int8(np.concatenate([held, noisy])), queries, f"{args.window:,} (real + perturbed copies)")


if __name__ == "__main__":
    main()

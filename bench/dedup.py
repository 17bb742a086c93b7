"""Near-duplicates, threads and stories: speed and memory per item, and the MinHash library choice.

    python bench/dedup.py [--pairs FILE] [--stream FILE] [--repeat 3]

Defaults read the shared data by path (../shared/data/... next to the repo);
nothing is copied. It prints, for each MinHash backend (rensa, datasketch):

* signature time per text (shingling excluded and included), on the texts of the pairs file;
* estimation quality: mean absolute error of the estimated against the exact
  Jaccard of the 3-word shingle sets, and agreement of "estimated >= threshold"
  with "exact >= threshold" over the pairs, plus the near-duplicates each finds
  on the stream;
* the near-duplicate index: µs per item (signature + LSH query + insert) and
  bytes per item held in the window;

then the whole replay pipeline (enrich, exact dedup, near-dup, threads,
stories) in µs per item, warm, without the encoder; stage 3 alone (near-dup,
threads, stories: the worker's one-partition ceiling) with and without
vectors; the bytes per item of each state; and stage 3 per article with
``--window`` story vectors held (100,000 by default).
One run, one machine: compare figures from the same run only.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from newsstream.dedup.neardup import (
    NearDupConfig,
    NearDupIndex,
    estimate_jaccard,
    jaccard,
    shingles,
)
from newsstream.dedup.placement import Placement
from newsstream.evaluation.stream_replay import (
    Pipeline,
    PipelineConfig,
    deep_size,
    read_stream,
)
from newsstream.text.normalize import normalize_text

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = SHARED / "semeval2022_task8_news_similarity" / "pairs.jsonl"
STREAM = SHARED / "ant_multisource_stream" / "stream.jsonl"


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_backend(backend: str, pairs: list[tuple[str, str]], stream_texts: list[tuple[str, str, float]], repeat: int) -> dict[str, object]:
    config = NearDupConfig(backend=backend)
    index = NearDupIndex(config)
    texts = [t for pair in pairs for t in pair]
    shingle_sets = [shingles(t, config.shingle_words) for t in texts]
    sign = index._sign  # the backend's signer, timed alone

    sig_only = _best(lambda: [sign(s) for s in shingle_sets], repeat) / len(texts)
    with_shingles = _best(lambda: [index.signature_of(t) for t in texts], repeat) / len(texts)

    errors, agree, flagged_est, flagged_exact = [], 0, 0, 0
    for (a, b), i in zip(pairs, range(0, len(shingle_sets), 2)):
        sa, sb = shingle_sets[i], shingle_sets[i + 1]
        exact = jaccard(sa, sb)
        est = estimate_jaccard(sign(sa), sign(sb))
        errors.append(abs(exact - est))
        agree += (exact >= config.threshold) == (est >= config.threshold)
        flagged_est += est >= config.threshold
        flagged_exact += exact >= config.threshold

    # The index on the stream: signature + query + insert, per item; memory held.
    def run_index() -> NearDupIndex:
        idx = NearDupIndex(config)
        for item_id, text, at in stream_texts:
            idx.check_and_add(item_id, "article", text, at)
        return idx

    per_item = _best(run_index, repeat) / len(stream_texts)
    idx = run_index()
    near = sum(1 for item_id in idx.items if idx.stored_verdict(item_id).duplicate_of)  # type: ignore[union-attr]
    held = len(idx)
    bytes_per_item = (deep_size(idx.items) + deep_size(idx.bands)) / held
    return {
        "backend": backend,
        "signature_us": round(sig_only * 1e6, 1),
        "shingles_and_signature_us": round(with_shingles * 1e6, 1),
        "index_us_per_item": round(per_item * 1e6, 1),
        "jaccard_mae": round(statistics.fmean(errors), 4),
        "decision_agreement": round(agree / len(pairs), 4),
        "pairs_flagged_estimated": flagged_est,
        "pairs_flagged_exact": flagged_exact,
        "stream_near_duplicates": near,
        "bytes_per_item_held": round(bytes_per_item),
        "bands_rows": list(config.bands_rows),
    }


def bench_pipeline(path: Path, repeat: int) -> dict[str, object]:
    items = [raw for _, raw, _ in read_stream(str(path))]
    words_only = PipelineConfig(embeddings=False)  # the encoder's cost is measured apart (bench/enrichment.py)
    Pipeline(words_only).process(items[0])  # load the language model outside the timing

    def run() -> Pipeline:
        pipeline = Pipeline(words_only)
        for raw in items:
            pipeline.process(raw)
        return pipeline

    per_item = _best(run, repeat) / len(items)
    pipeline = run()
    n = len(items)

    # Stage 3 alone (what the worker's one placement partition pays per item):
    # the items enriched and exact-deduplicated beforehand, outside the timing.
    # With vectors (as the worker runs by default): embedded once here, outside the timing.
    prepared = [(p.enriched, p.exact_of) for p in (Pipeline().process(raw) for raw in items)]
    plain = [(e.model_copy(update={"enrichment": e.enrichment.model_copy(update={"embedding": None})}), x)
             for e, x in prepared]

    def place_all(batch: list[tuple[Any, Any]]) -> Placement:
        placement = Placement(PipelineConfig().placement)
        for enriched, exact_of in batch:
            placement.place(enriched, exact_of)
        return placement

    stage3 = _best(lambda: place_all(prepared), repeat) / n
    stage3_words = _best(lambda: place_all(plain), repeat) / n
    placed = place_all(prepared)
    state = placed.near.items, placed.near.bands, placed.near.common, placed.threads.state, placed.stories.state
    return {
        "items": n,
        "pipeline_us_per_item_without_encoder": round(per_item * 1e6),
        "stage3_us_per_item": round(stage3 * 1e6),
        "stage3_us_per_item_without_vectors": round(stage3_words * 1e6),
        "stage3_items_per_s_one_core": round(1 / stage3),
        "bytes_per_item": {
            "exact": round(deep_size(pipeline.exact) / n),
            "near_dup": round((deep_size(placed.near.items) + deep_size(placed.near.bands) + deep_size(placed.near.common)) / max(1, len(placed.near))),
            "threads": round(deep_size(placed.threads.state) / n),
            "stories": round(deep_size(placed.stories.state) / n),
            "stage3_total": round(sum(deep_size(s) for s in state) / n),
        },
    }


def bench_window(path: Path, window: int) -> dict[str, object]:
    """Stage 3's cost per article with ``window`` stories' vectors held (the index's scale)."""
    import numpy as np

    from newsstream.dedup.vectors import VectorIndex, int8_vector

    items = [raw for _, raw, _ in read_stream(str(path))][:200]
    prepared = [(p.enriched, p.exact_of) for p in (Pipeline().process(raw) for raw in items)]
    real = np.stack([int8_vector(e.enrichment.embedding.vector).astype(np.float32) for e, _ in prepared])
    rng = np.random.default_rng(0)
    # Filler vectors shaped like real ones: mixtures of real vectors plus noise, int8.
    mix = rng.dirichlet(np.ones(8), size=window) @ real[rng.integers(0, len(real), size=(8,))] + rng.normal(0, 20, (window, real.shape[1]))
    filler = np.clip(np.rint(mix / np.abs(mix).max(axis=1, keepdims=True) * 127), -127, 127).astype(np.int8)
    placement = Placement(PipelineConfig().placement)
    index: VectorIndex = placement.stories.vectors
    started = time.perf_counter()
    for n, vector in enumerate(filler):
        index.add(f"st_filler_{n}", f"f{n}", vector)
    fill_s = time.perf_counter() - started
    times = []
    for enriched, exact_of in prepared:
        t0 = time.perf_counter()
        placement.place(enriched, exact_of)
        times.append(time.perf_counter() - t0)
    nearest = []
    for vector in filler[:200]:
        t0 = time.perf_counter()
        index.nearest(vector, 10)
        nearest.append(time.perf_counter() - t0)
    return {
        "window_vectors": len(index),
        "index_add_us_per_vector": round(fill_s / window * 1e6),
        "stage3_ms_per_article_median": round(statistics.median(times) * 1e3, 3),
        "stage3_ms_per_article_p90": round(sorted(times)[int(len(times) * 0.9)] * 1e3, 3),
        "nearest_ms_median": round(statistics.median(nearest) * 1e3, 3),
        "exact_search": len(index) <= index.exact_below,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--stream", type=Path, default=STREAM)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=100_000, help="story vectors held for the stage-3 scale test")
    args = parser.parse_args()

    pairs = []
    for line in args.pairs.read_bytes().splitlines():
        if line.strip():
            record = orjson.loads(line)
            pairs.append((normalize_text(record["text"]), normalize_text(record["text_pair"])))
    stream_texts = [
        (raw.id, normalize_text(raw.body if raw.kind == "article" else raw.text), (raw.published_at or raw.fetched_at).timestamp())
        for _, raw, _ in read_stream(str(args.stream))
    ]
    results = []
    for backend in ("rensa", "datasketch"):
        try:
            results.append(bench_backend(backend, pairs, stream_texts, args.repeat))
        except ImportError as exc:
            print(f"{backend}: not installed ({exc})", file=sys.stderr)
    for r in results:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    pipeline = bench_pipeline(args.stream, args.repeat)
    print(" ".join(f"{k}={v}" for k, v in pipeline.items()))
    window = bench_window(args.stream, args.window)
    print(" ".join(f"{k}={v}" for k, v in window.items()))
    print(orjson.dumps({"backends": results, "pipeline": pipeline, "window": window}).decode())


if __name__ == "__main__":
    main()

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
stories) in µs per item, warm; stage 3 alone (near-dup, threads, stories:
the worker's one-partition ceiling); and the bytes per item of each state.
One run, one machine: compare figures from the same run only.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

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
    near = sum(1 for v in idx.items.values() if v[3])
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
    Pipeline().process(items[0])  # load the language model outside the timing

    def run() -> Pipeline:
        pipeline = Pipeline(PipelineConfig())
        for raw in items:
            pipeline.process(raw)
        return pipeline

    per_item = _best(run, repeat) / len(items)
    pipeline = run()
    n = len(items)

    # Stage 3 alone (what the worker's one placement partition pays per item):
    # the items enriched and exact-deduplicated beforehand, outside the timing.
    prepared = [(p.enriched, p.exact_of) for p in (Pipeline().process(raw) for raw in items)]

    def place_all() -> Placement:
        placement = Placement(PipelineConfig().placement)
        for enriched, exact_of in prepared:
            placement.place(enriched, exact_of)
        return placement

    stage3 = _best(place_all, repeat) / n
    return {
        "items": n,
        "pipeline_us_per_item": round(per_item * 1e6),
        "stage3_us_per_item": round(stage3 * 1e6),
        "stage3_items_per_s_one_core": round(1 / stage3),
        "bytes_per_item": {
            "exact": round(deep_size(pipeline.exact) / n),
            "near_dup": round((deep_size(pipeline.near.items) + deep_size(pipeline.near.bands) + deep_size(pipeline.near.common)) / max(1, len(pipeline.near))),
            "threads": round(deep_size(pipeline.threads.state) / n),
            "stories": round(deep_size(pipeline.stories.state) / n),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--stream", type=Path, default=STREAM)
    parser.add_argument("--repeat", type=int, default=3)
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
    print(orjson.dumps({"backends": results, "pipeline": pipeline}).decode())


if __name__ == "__main__":
    main()

"""Same-story and dedup quality on labelled data (``newsstream eval pairs`` and ``eval stream``).

Pure: the pair similarity and the stream replay are the functions the worker
runs (:mod:`newsstream.evaluation.stream_replay`), so the figures measure the
product. The commands live in :mod:`newsstream.cli.eval`.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from newsstream.contract.models import RawArticle
from newsstream.dedup.neardup import NearDupConfig, NearDupIndex, estimate_jaccard
from newsstream.dedup.stories import (
    StoryConfig,
    content_terms,
    hash_terms,
    idf_weight,
    pair_similarity,
    vector_similarity,
)
from newsstream.enrich.embedding import ARTICLE_TOKENS, centred_unit, embed
from newsstream.enrich.item import language_sample
from newsstream.evaluation.stream_replay import (
    Pipeline,
    PipelineConfig,
    deep_size,
    read_stream,
)
from newsstream.text.language import detect_language
from newsstream.text.normalize import normalize_text

__all__ = ["eval_pairs", "eval_stream", "pearson"]

SAME_STORY_MAX_LABEL = 2.0  # gold 1 (same story) .. 4 (unrelated): <= 2 is "same story"


def pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if not sx or not sy:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sx * sy)


def _prf(pred: list[bool], gold: list[bool]) -> dict[str, float | int]:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _pair_lang(record: dict[str, Any]) -> str:
    l1, l2 = record.get("lang1"), record.get("lang2")
    if l1 and l2:
        return str(l1) if l1 == l2 else f"{l1}-{l2}"
    return str(record.get("lang") or "und")


def _scores(rows: list[tuple[float, float, float]], story_threshold: float, near_threshold: float) -> dict[str, Any]:
    """rows: (gold label, story similarity, near-dup similarity)."""
    gold = [r[0] for r in rows]
    same = [g <= SAME_STORY_MAX_LABEL for g in gold]
    story = [r[1] for r in rows]
    near = [r[2] for r in rows]
    # Pearson against the gold *scale* (1 = same story): the similarity mapped
    # onto 4..1, which is minus the correlation of the raw similarity.
    prf = _prf([s >= story_threshold for s in story], same)
    near_flags = [s >= near_threshold for s in near]
    return {
        "n": len(rows),
        "pearson": _r(pearson([4 - 3 * s for s in story], gold)),
        "f1": prf["f1"],
        "precision": prf["precision"],
        "recall": prf["recall"],
        "same_story_pairs": sum(same),
        "near_dup": {
            "pearson": _r(pearson([4 - 3 * s for s in near], gold)),
            "flagged": sum(near_flags),
            "flagged_same_story": sum(f and s for f, s in zip(near_flags, same)),
        },
    }


def eval_pairs(
    path: str,
    story_config: StoryConfig = StoryConfig(),
    near_config: NearDupConfig = NearDupConfig(),
    embeddings: bool = True,
    article_tokens: int = ARTICLE_TOKENS,
) -> dict[str, Any]:
    """Similarity of each pair, as stage 3 computes it, against gold; and the near-dup MinHash estimate.

    With ``embeddings`` (the worker's default) the similarity is
    :func:`vector_similarity` of the cosine of the two texts' vectors
    (embedded as the worker embeds an article, centred on their language) and
    their word similarity, and the threshold is ``vector_threshold``; without, the word similarity
    :func:`pair_similarity` and ``threshold``, as before the encoder."""
    index = NearDupIndex(near_config)
    records: list[tuple[dict[str, Any], str, str, float]] = []
    skipped = 0
    started = time.perf_counter()
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                a, b, label = normalize_text(record["text"]), normalize_text(record["text_pair"]), float(record["label"])
            except Exception as exc:
                skipped += 1
                print(f"{path}:{number}: skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            records.append((record, a, b, label))
    # Document frequencies over the distinct texts of the file, as the stream
    # builds them over the items it has seen (no labels involved).
    terms: dict[str, list[int]] = {}
    for _, a, b, _ in records:
        for text in (a, b):
            if text not in terms:
                terms[text] = hash_terms(content_terms(text))
    df = Counter(t for ids in terms.values() for t in ids)
    weight = idf_weight(lambda t: df[t], len(terms)) if story_config.idf else None

    vectors = pair_vectors([(r["text"], r["text_pair"]) for r, _, _, _ in records], article_tokens) if embeddings else None
    rows_by_lang: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    all_rows: list[tuple[float, float, float]] = []
    for n, (record, a, b, label) in enumerate(records):
        story_sim = pair_similarity(terms[a], terms[b], entity_weight=story_config.entity_weight, weight=weight)
        if vectors is not None:
            cos = float(vectors[record["text"]] @ vectors[record["text_pair"]])
            story_sim = vector_similarity(cos, story_sim, (len(terms[a]), len(terms[b])), story_config)
        sig_a, sig_b = index.signature_of(a), index.signature_of(b)
        near_sim = estimate_jaccard(sig_a, sig_b) if sig_a is not None and sig_b is not None else 0.0
        row = (label, story_sim, near_sim)
        rows_by_lang[_pair_lang(record)].append(row)
        all_rows.append(row)
    threshold = story_config.vector_threshold if embeddings else story_config.threshold
    result = _scores(all_rows, threshold, near_config.threshold)
    result["languages"] = {
        lang: _scores(rows, threshold, near_config.threshold) for lang, rows in sorted(rows_by_lang.items())
    }
    result["arabic"] = result["languages"].get("ar")
    result["thresholds"] = {"story": threshold, "near_dup_jaccard": near_config.threshold}
    words = ("content terms, idf-weighted mean of Jaccard and overlap (df over the file's texts)")
    result["similarity"] = (
        (f"stories.vector_similarity(cosine of language-centred e5 vectors ({article_tokens} tokens, int8), "
         f"word similarity: {words})"
         if embeddings else f"stories.pair_similarity: {words}")
        + "; near_dup: MinHash estimate of the Jaccard of word 3-shingles"
    )
    result["skipped"] = skipped
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _json_bytes(table: Any) -> int:
    return sum(len(orjson.dumps(key)) + len(orjson.dumps(value)) for key, value in table.items())


def eval_stream(
    path: str, config: PipelineConfig = PipelineConfig(), sample: int = 10, ticker_interval_s: float | None = None
) -> dict[str, Any]:
    """Replay a time-ordered JSONL through the pipeline's functions and score exact dedup against ``exact_dup_group``."""
    pipeline = Pipeline(config)
    n = exact = near = tickers = 0
    seen_groups: dict[str, str] = {}  # exact_dup_group -> first item id
    gold: list[bool] = []  # item's group seen before (an exact duplicate)
    pred_exact: list[bool] = []
    pred_any: list[bool] = []
    wrong_target = 0
    group_of: dict[str, str] = {}
    titles: dict[str, str] = {}
    near_pairs: list[dict[str, Any]] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _number, raw, record in read_stream(path, ticker_interval_s):
        done = pipeline.process(raw)
        n += 1
        tickers += raw.kind == "ticker"
        exact += done.exact_of is not None
        if done.exact_of is None and done.near.duplicate_of is not None:
            near += 1
            near_pairs.append({
                "id": raw.id, "matched": done.near.matched, "similarity": round(done.near.similarity, 3),
                "text": (getattr(raw, "title", "") or getattr(raw, "text", ""))[:100],
                "matched_text": titles.get(done.near.matched or "", "")[:100],
            })
        titles[raw.id] = getattr(raw, "title", "") or getattr(raw, "text", "")
        group = record.get("exact_dup_group")
        if group:
            group = str(group)
            group_of[raw.id] = group
            gold.append(group in seen_groups)
            seen_groups.setdefault(group, raw.id)
            pred_exact.append(done.exact_of is not None)
            pred_any.append(done.near.duplicate_of is not None)
            if done.exact_of is not None and group_of.get(done.exact_of) != group:
                wrong_target += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    stories = list(pipeline.stories.stories())
    threads = [v for k, v in pipeline.threads.state.items() if k.startswith("t:")]
    sizes = Counter(s["member_count"] for s in stories)
    multi = [s for s in stories if s["member_count"] > 1]
    multi_source = [s for s in stories if len(s["sources"]) > 1]
    held = len(pipeline.near)
    near_bytes = deep_size(pipeline.near.items) + deep_size(pipeline.near.bands) + deep_size(pipeline.near.common)
    result: dict[str, Any] = {
        "items": n,
        "ticker_lines": tickers,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "stories": len(stories),
        "stories_with_2plus_members": len(multi),
        "stories_with_2plus_sources": len(multi_source),
        "largest_stories": sorted((s["member_count"] for s in stories), reverse=True)[:10],
        "story_size_histogram": {str(k): v for k, v in sorted(sizes.items())},
        "threads": len(threads),
        "threads_with_2plus_lines": sum(1 for t in threads if t["line_count"] > 1),
        "largest_threads": sorted((t["line_count"] for t in threads), reverse=True)[:10],
        "memory": {
            "near_dup_items_held": held,
            "near_dup_bytes_per_item": round(near_bytes / held) if held else None,
            "story_state_bytes_per_item": round(deep_size(pipeline.stories.state) / n) if n else None,
            # What the changelog topics hold (JSON keys and values), per item replayed.
            "story_changelog_bytes_per_item": round(_json_bytes(pipeline.stories.state) / n) if n else None,
            "near_dup_changelog_bytes_per_item": round(
                # The band index is rebuilt from the signatures after a restart, not changelogged.
                sum(_json_bytes(t) for t in (pipeline.near.items, pipeline.near.common)) / n
            ) if n else None,
            "exact_state_bytes_per_item": round(deep_size(pipeline.exact) / n) if n else None,
        },
        "us_per_item_wall": round(elapsed / n * 1e6) if n else None,
        "us_per_item_cpu": round(cpu / n * 1e6) if n else None,
        "config": {
            "near_threshold": config.near.threshold,
            "near_window_h": config.near.window_s / 3600,
            "near_bands_rows": list(config.near.bands_rows),
            "story_threshold": config.stories.threshold,
            "story_window_h": config.stories.window_s / 3600,
            "backend": config.near.backend,
        },
    }
    if gold:
        ex = _prf(pred_exact, gold)
        result["exact_vs_gold"] = {**ex, "gold_duplicates": sum(gold), "wrong_target": wrong_target}
        anyd = _prf(pred_any, gold)
        result["any_dup_vs_gold"] = {"recall": anyd["recall"], "flagged": sum(pred_any),
                                     "note": "near-duplicates are not in the gold: precision is not defined here"}
        result["precision"] = ex["precision"]
        result["recall"] = ex["recall"]
    result["sample"] = [
        {
            "story_id": s["story_id"],
            "headline": s["headline"],
            "sources": s["sources"],
            "members": [
                {"id": m["id"], "source": m["source"], "joined_by": m["joined_by"], "similarity": m["similarity"],
                 "title": titles.get(m["id"], "")[:100]}
                for m in s["members"][:12]
            ],
        }
        for s in sorted(multi_source or multi, key=lambda s: (-s["member_count"], s["story_id"]))[:sample]
    ]
    result["near_sample"] = near_pairs[:sample]
    result["thread_sample"] = [
        {"thread_id": t["thread_id"], "headline": t["headline"], "lines": [line["text"][:100] for line in t["lines"][:8]]}
        for t in sorted(threads, key=lambda t: (-t["line_count"], t["thread_id"]))[:sample]
        if t["line_count"] > 1
    ]
    return result


def worker_vectors(texts: Sequence[str], article_tokens: int) -> np.ndarray:
    """Each text's vector as stage 3 compares it: embedded as the worker embeds an article
    (int8 round trip included), centred on the detected language, unit length; one row per text."""
    return article_vectors([("", text) for text in texts], article_tokens)


def article_vectors(articles: Sequence[tuple[str, str]], article_tokens: int = ARTICLE_TOKENS) -> np.ndarray:
    """:func:`worker_vectors` of ``(title, text)`` articles, embedded as the worker
    embeds them (the title, then the text, up to ``article_tokens`` tokens)."""
    now = datetime.now(UTC)
    rows: list[np.ndarray] = []
    for start in range(0, len(articles), 64):
        chunk = articles[start:start + 64]
        raws = [RawArticle(id=f"text-{start + n}", source="eval", title=title, body=text, fetched_at=now)
                for n, (title, text) in enumerate(chunk)]
        for raw, embedding in zip(raws, embed(raws, article_tokens)):
            rows.append(centred_unit(embedding, detect_language(language_sample(raw))[0]))
        print(f"\rembedded {len(rows)}/{len(articles)} texts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def pair_vectors(pairs: list[tuple[str, str]], article_tokens: int) -> dict[str, np.ndarray]:
    """Each distinct text's vector (:func:`worker_vectors`)."""
    texts = sorted({text for pair in pairs for text in pair})
    return dict(zip(texts, worker_vectors(texts, article_tokens)))

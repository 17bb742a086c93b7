"""Cost of enrichment per item, in-process (no Kafka): µs per ticker line and per 3 KB article.

    python bench/enrichment.py [--rounds 2000]

Inputs are the bundled samples (services/newsstream/samples/): the ticker lines of the
sample pages and of wire.jsonl, and the sample articles cut or repeated to
3,000 characters. For each kind it prints the median over rounds of:

* ``basic``: language, normalisation, hash, word count (NEWSSTREAM_ENRICH_STRUCTURED=off);
* ``structured``: ``newsstream.enrich.pipeline.enrich_fields`` alone
  (entities, tagger, quotes, times, topics, regions, urgency), and its parts;
* ``full``: ``newsstream.enrich.item.enrich`` as the worker calls it;

then the sentence encoder (NEWSSTREAM_EMBEDDINGS=on) in CPU ms per item, in
the worker's batches, at 64, 128 (the worker's) and 256 article tokens, beside
the rest of the enrichment, against the budget (150 ms an article, 25 a line);
and the whole of stage 1 with embeddings on (``item.enrich_batch``) for several
budgets of the entity tagger's context (NEWSSTREAM_NER_CONTEXT_TOKENS).

Models are loaded before timing. One machine, one run: compare figures from
the same run only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson

import newsstream.enrich.item as worker_enrich
from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.enrich import ner
from newsstream.enrich.iptc import classify
from newsstream.enrich.pipeline import enrich_fields, find_entities, versions
from newsstream.enrich.quotes import find_quotes
from newsstream.enrich.times import find_times
from newsstream.ingest.events import events_from_page_text

SAMPLES = Path(__file__).resolve().parents[1] / "services" / "newsstream" / "samples"
T0 = datetime(2026, 11, 25, 20, 0, tzinfo=timezone.utc)
UNIT_VECTOR = np.full(384, 384 ** -0.5, dtype=np.float32)  # the head's cost does not depend on the values


def _inputs() -> tuple[list[RawTickerItem], list[RawArticle]]:
    events = []
    for page in sorted(SAMPLES.glob("*.txt")):
        events += events_from_page_text(page.read_text(encoding="utf-8"), source=page.stem, fetched_at=T0)
    tickers = [e for e in events if isinstance(e, RawTickerItem)]
    bodies = [e.body for e in events if isinstance(e, RawArticle)]
    for line in (SAMPLES / "wire.jsonl").read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the samples include bad records on purpose
        if not isinstance(rec, dict) or not rec.get("text") and not rec.get("body"):
            continue
        if rec.get("kind") == "ticker":
            tickers.append(RawTickerItem(id="t", source="wire", time=rec["time"], published_at=rec["published_at"],
                                         text=rec["text"], attribution=rec.get("attribution"), thread_id="th", fetched_at=T0))
        elif rec.get("kind") == "article":
            bodies.append(rec["body"])
    articles = []
    for i, body in enumerate(bodies):
        text = body
        while len(text) < 3000:
            text += "\n\n" + body
        articles.append(RawArticle(id=f"a{i}", source="s", title="عنوان", body=text[:3000], fetched_at=T0, published_at=T0))
    return tickers, articles


def _per_item_us(fn, items, rounds: int) -> float:
    samples = []
    n = len(items)
    for r in range(rounds):
        item = items[r % n]
        t = time.perf_counter_ns()
        fn(item)
        samples.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()
    tickers, articles = _inputs()
    versions()  # load every model
    for it in tickers + articles:
        worker_enrich.enrich(it, T0)

    def fields(it):
        if isinstance(it, RawArticle):
            return enrich_fields("article", text=it.body, title=it.title, published_at=it.published_at)
        return enrich_fields("ticker", text=it.text, attribution=it.attribution, published_at=it.published_at)

    def text_of(it):
        return it.body if isinstance(it, RawArticle) else it.text

    parts = {
        "gazetteer+nisba": lambda it: find_entities(text_of(it), use_model=False),
        "tagger (CRF)": lambda it: ner.tag_text(text_of(it)[:6000]),
        "quotes": lambda it: find_quotes(text_of(it), []),
        "times": lambda it: find_times(text_of(it), T0),
        "topics": lambda it: classify(getattr(it, "title", ""), text_of(it)),
        # with embeddings on, an article's topics also read its vector (the stacked head)
        "topics + vector": lambda it: classify(getattr(it, "title", ""), text_of(it), vector=UNIT_VECTOR),
    }
    print(f"{'kind':8} {'stage':18} {'µs/item':>10}")
    for kind, items, rounds in (("ticker", tickers, args.rounds), ("article", articles, max(50, args.rounds // 10))):
        basic = _per_item_us(lambda it: worker_enrich.enrich(it, T0, structured=False), items, rounds)
        full = _per_item_us(lambda it: worker_enrich.enrich(it, T0), items, rounds)
        structured = _per_item_us(fields, items, rounds)
        print(f"{kind:8} {'basic':18} {basic:10.0f}")
        for name, fn in parts.items():
            print(f"{kind:8} {name:18} {_per_item_us(fn, items, rounds):10.0f}")
        print(f"{kind:8} {'structured':18} {structured:10.0f}")
        print(f"{kind:8} {'full (worker)':18} {full:10.0f}   -> {1e6 / full:,.0f} items/s on one core")
    print(f"({len(tickers)} ticker lines, {len(articles)} articles of 3,000 characters)")
    bench_embedding(tickers, articles, max(2, args.rounds // 200))


def _cpu_ms_per_item(fn, items, rounds: int) -> float:  # type: ignore[no-untyped-def]
    """Median over rounds of the process CPU time per item of one batched call (every thread counted)."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        fn(items)
        samples.append((time.process_time() - started) / len(items) * 1000)
    return statistics.median(samples)


def bench_embedding(tickers: list[RawTickerItem], articles: list[RawArticle], rounds: int) -> None:
    """The encoder (NEWSSTREAM_EMBEDDINGS=on): CPU ms per item in the worker's batches of 16, at the
    article budget (title and lead, 128 tokens) and a few others, beside the rest of the enrichment."""
    from newsstream.enrich.embedding import BATCH, embed, get_encoder

    get_encoder()
    batch_t = (tickers * (BATCH // max(1, len(tickers)) + 1))[:BATCH]
    batch_a = (articles * (BATCH // max(1, len(articles)) + 1))[:BATCH]
    embed(batch_t[:2])  # warm
    from newsstream.platform.settings import Settings

    context = Settings.model_fields["ner_context_tokens"].default  # the worker's, with embeddings on
    rest_t = _cpu_ms_per_item(lambda b: [worker_enrich.enrich(it, T0) for it in b], batch_t, rounds)
    rest_a = _cpu_ms_per_item(lambda b: [worker_enrich.enrich(it, T0) for it in b], batch_a, rounds)
    line = _cpu_ms_per_item(embed, batch_t, rounds)
    print(f"\n{'kind':8} {'encoder tokens':>14} {'CPU ms/item':>12}   (batches of {BATCH}; process CPU, all threads)")
    print(f"{'ticker':8} {'whole line':>14} {line:12.1f}   + rest of enrichment {rest_t:.1f} = {line + rest_t:.1f} (budget 25)")
    for tokens in (64, 128, 256):
        cost = _cpu_ms_per_item(lambda b, n=tokens: embed(b, n), batch_a, rounds)
        mark = "  <- the worker's" if tokens == 128 else ""
        print(f"{'article':8} {tokens:>14} {cost:12.1f}   + rest of enrichment {rest_a:.1f} = {cost + rest_a:.1f} (budget 150){mark}")
    # Stage 1 as the worker runs it with embeddings on (item.enrich_batch): the vector, and the
    # tagger reading each text's first N tokens in context (NEWSSTREAM_NER_CONTEXT_TOKENS): the
    # vector's window comes with it, every further token costs six of the encoder's layers.
    print(f"\n{'kind':8} {'context tokens':>14} {'CPU ms/item':>12}   (stage 1 with embeddings: item.enrich_batch, batches of {BATCH})")
    for tokens in sorted({0, 128, 256, 512, context}):
        mark = "  <- the worker's" if tokens == context else ""
        for kind, batch, budget in (("ticker", batch_t, 25), ("article", batch_a, 150)):
            cost = _cpu_ms_per_item(lambda b, n=tokens: worker_enrich.enrich_batch(b, T0, embeddings=True, article_tokens=128,
                                                                                 ner_context_tokens=n), batch, rounds)
            print(f"{kind:8} {tokens:>14} {cost:12.1f}   (budget {budget}){mark}")


if __name__ == "__main__":
    main()

"""Enrichment quality on labelled data (``newsstream eval topics`` and ``eval entities``).

The commands live in :mod:`newsstream.cli.eval`; these functions score exactly
what the worker runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

__all__ = ["eval_topics", "eval_entities"]


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc})") from exc
    return rows


def eval_topics(path: Path, embeddings: bool = False) -> dict:
    """Top-1 predictions of the topic model against ``iptc`` gold codes; with
    ``embeddings`` (the worker's NEWSSTREAM_EMBEDDINGS), each article embedded
    as the worker embeds it and read by the stacked head, as the worker does."""
    from newsstream.enrich.iptc import get_topic_model
    from newsstream.evaluation.scoring import macro_f1

    t0 = time.perf_counter()
    model = get_topic_model()
    rows = _read_jsonl(path)
    gold = [r["iptc"] for r in rows]
    docs = [(r.get("title") or "", r.get("text") or r.get("body") or "") for r in rows]
    vectors: list = [None] * len(docs)
    with_vectors = embeddings and model.head is not None
    if with_vectors:
        from newsstream.evaluation.stories import article_vectors

        vectors = list(article_vectors([(title, text or title or "-") for title, text in docs]))
    pred = [model.predict(title, text, vector) for (title, text), vector in zip(docs, vectors)]
    res = macro_f1(gold, pred)
    res["model"] = model.version + (f" + {model.head.version} with vectors" if with_vectors else "")
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def eval_entities(path: Path, gazetteer: bool = True, document_sentences: int | None = None,
                  context_tokens: int = 0) -> dict:
    """Exact-match PERS/LOC/ORG spans against BIO gold tags, of exactly what
    the product does with the sentences of a document
    (:func:`evaluate.document_tags`: gazetteer names and roles, then the
    tagger with document-level name propagation; ``gazetteer=False``: the
    tagger alone). Documents (name propagation works within one): runs of rows
    with the same ``doc`` field when rows have one; else blocks of
    ``document_sentences`` consecutive rows (1: every row on its own, as a
    ticker line); else consecutive rows up to the text length the pipeline
    tags in one item (6,000 characters), as if the file were cut into articles.
    ``context_tokens``: encoder tokens of each document read in context (the worker's
    NEWSSTREAM_NER_CONTEXT_TOKENS with embeddings on)."""
    from newsstream.enrich.ner import get_context_tagger, get_tagger
    from newsstream.evaluation.scoring import document_tags, documents, span_prf

    t0 = time.perf_counter()
    tagger = get_tagger()
    rows = _read_jsonl(path)
    gold = [list(r["tags"]) for r in rows]
    doc_ids = [r["doc"] for r in rows] if rows and all("doc" in r for r in rows) else None
    pred: list[list[str]] = []
    sents = [list(r["tokens"]) for r in rows]
    for a, b in documents(sents, document_sentences, doc_ids):
        pred += document_tags(sents[a:b], gazetteer=gazetteer, context_tokens=context_tokens)
    res = span_prf(gold, pred)
    res["n"] = len(rows)
    res["model"] = tagger.version + (f" + {get_context_tagger().version} in context" if context_tokens else "")
    res["gazetteer"] = gazetteer
    res["context_tokens"] = context_tokens
    res["documents"] = ("doc field" if doc_ids is not None else f"{document_sentences} sentence(s)" if document_sentences
                        else "up to 6000 characters")
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res

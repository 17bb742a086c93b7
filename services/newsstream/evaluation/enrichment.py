"""``newsstream eval topics`` and ``newsstream eval entities``: enrichment quality on labelled data.

Wire into the CLI with ``register(eval_app)``. Both commands print a readable
table on stderr and, as the last line of stdout, one JSON object.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

__all__ = ["register", "eval_topics", "eval_entities"]


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise typer.BadParameter(f"{path}:{n}: not JSON ({exc})") from exc
    return rows


def eval_topics(path: Path) -> dict:
    """Top-1 predictions of the topic model against ``iptc`` gold codes."""
    from newsstream.evaluation.scoring import macro_f1
    from newsstream.enrich.iptc import get_topic_model

    t0 = time.perf_counter()
    model = get_topic_model()
    rows = _read_jsonl(path)
    gold = [r["iptc"] for r in rows]
    pred = [model.predict(r.get("title") or "", r.get("text") or r.get("body") or "") for r in rows]
    res = macro_f1(gold, pred)
    res["model"] = model.version
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def eval_entities(path: Path, gazetteer: bool = True, document_sentences: int | None = None) -> dict:
    """Exact-match PERS/LOC/ORG spans against BIO gold tags, of exactly what
    the product does with the sentences of a document
    (:func:`evaluate.document_tags`: gazetteer names and roles, then the
    tagger with document-level name propagation; ``gazetteer=False``: the
    tagger alone). Documents (name propagation works within one): runs of rows
    with the same ``doc`` field when rows have one; else blocks of
    ``document_sentences`` consecutive rows (1: every row on its own, as a
    ticker line); else consecutive rows up to the text length the pipeline
    tags in one item (6,000 characters), as if the file were cut into articles."""
    from newsstream.evaluation.scoring import document_tags, documents, span_prf
    from newsstream.enrich.ner import get_tagger

    t0 = time.perf_counter()
    tagger = get_tagger()
    rows = _read_jsonl(path)
    gold = [list(r["tags"]) for r in rows]
    doc_ids = [r["doc"] for r in rows] if rows and all("doc" in r for r in rows) else None
    pred: list[list[str]] = []
    sents = [list(r["tokens"]) for r in rows]
    for a, b in documents(sents, document_sentences, doc_ids):
        pred += document_tags(sents[a:b], gazetteer=gazetteer)
    res = span_prf(gold, pred)
    res["n"] = len(rows)
    res["model"] = tagger.version
    res["gazetteer"] = gazetteer
    res["documents"] = ("doc field" if doc_ids is not None else f"{document_sentences} sentence(s)" if document_sentences
                        else "up to 6000 characters")
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def _table(res: dict, key: str) -> None:
    for name, m in res[key].items():
        print(f"{name:>18}  P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  n {m['support']}", file=sys.stderr)


def register(eval_app: typer.Typer) -> None:
    @eval_app.command("topics")
    def topics_cmd(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL with title, text, iptc.")],
    ) -> None:
        """IPTC topic classifier: macro-F1 and accuracy (last line: JSON)."""
        res = eval_topics(file)
        _table(res, "per_class")
        print(f"macro-F1 {res['macro_f1']:.4f}  accuracy {res['accuracy']:.4f}  n {res['n']}", file=sys.stderr)
        sys.stdout.write(orjson.dumps(res).decode() + "\n")

    @eval_app.command("entities")
    def entities_cmd(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL with tokens and BIO tags.")],
        model_only: Annotated[bool, typer.Option("--model-only", help="Tagger alone, without gazetteer names and roles.")] = False,
        document_sentences: Annotated[Optional[int], typer.Option(
            "--document-sentences", min=1,
            help="Consecutive lines per document (name propagation works within a document; 1: every line "
                 "on its own). Default: lines up to 6,000 characters, as the pipeline tags one article; "
                 "ignored when rows have a 'doc' field.")] = None,
    ) -> None:
        """Entity tagger: exact-match span P/R/F1 over PERS, LOC, ORG (last line: JSON)."""
        res = eval_entities(file, gazetteer=not model_only, document_sentences=document_sentences)
        _table(res, "per_type")
        print(f"P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}  n {res['n']}", file=sys.stderr)
        sys.stdout.write(orjson.dumps(res).decode() + "\n")

"""``newsstream eval topics`` and ``newsstream eval entities``: enrichment quality on labelled data.

Wire into the CLI with ``register(eval_app)``. Both commands print a readable
table on stderr and, as the last line of stdout, one JSON object.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

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
    from newsstream.core.enrich.evaluate import macro_f1
    from newsstream.core.enrich.topics import get_topic_model

    t0 = time.perf_counter()
    model = get_topic_model()
    rows = _read_jsonl(path)
    gold = [r["iptc"] for r in rows]
    pred = [model.predict(r.get("title") or "", r.get("text") or r.get("body") or "") for r in rows]
    res = macro_f1(gold, pred)
    res["model"] = model.version
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def eval_entities(path: Path, gazetteer: bool = True, document_sentences: int = 1) -> dict:
    """Exact-match PERS/LOC/ORG spans of the tagger (plus gazetteer names, as
    in the pipeline, unless ``gazetteer`` is False) against BIO gold tags.
    ``document_sentences`` > 1 groups that many consecutive lines into one
    document for the pipeline's document-level name propagation (ANERcorp
    has no document breaks; 1 = none)."""
    from newsstream.core.enrich.evaluate import span_prf
    from newsstream.core.enrich.ner import get_tagger, propagate
    from newsstream.core.enrich.pipeline import merge_gazetteer_tags

    t0 = time.perf_counter()
    tagger = get_tagger()
    rows = _read_jsonl(path)
    gold, pred = [], []
    for r in rows:
        toks = list(r["tokens"])
        gold.append(list(r["tags"]))
        pred.append(tagger.tag(toks))
    if document_sentences > 1:
        out = []
        for a in range(0, len(rows), document_sentences):
            out += propagate([list(r["tokens"]) for r in rows[a:a + document_sentences]], pred[a:a + document_sentences])
        pred = out
    if gazetteer:
        pred = [merge_gazetteer_tags(list(r["tokens"]), p) for r, p in zip(rows, pred)]
    res = span_prf(gold, pred)
    res["n"] = len(rows)
    res["model"] = tagger.version
    res["gazetteer"] = gazetteer
    res["document_sentences"] = document_sentences
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
        model_only: Annotated[bool, typer.Option("--model-only", help="Tagger alone, without gazetteer names.")] = False,
        document_sentences: Annotated[int, typer.Option(
            "--document-sentences", min=1, help="Consecutive lines per document for name propagation (1: none).")] = 1,
    ) -> None:
        """Entity tagger: exact-match span P/R/F1 over PERS, LOC, ORG (last line: JSON)."""
        res = eval_entities(file, gazetteer=not model_only, document_sentences=document_sentences)
        _table(res, "per_type")
        print(f"P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}  n {res['n']}", file=sys.stderr)
        sys.stdout.write(orjson.dumps(res).decode() + "\n")

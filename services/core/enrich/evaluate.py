"""Scoring helpers shared by ``newsstream eval`` and the build's cross-validation."""

from __future__ import annotations

from newsstream.core.enrich.ner import bio_spans

TYPES = ("PERS", "LOC", "ORG")


def span_prf(gold: list[list[str]], pred: list[list[str]], types=TYPES) -> dict:
    """Exact-match span precision/recall/F1 over ``types`` (micro), with a per-type breakdown."""
    tp = {t: 0 for t in types}
    fp = dict(tp)
    fn = dict(tp)
    for g, p in zip(gold, pred):
        gs = {s for s in bio_spans(list(g)) if s[0] in types}
        ps = {s for s in bio_spans(list(p)) if s[0] in types}
        for s in gs & ps:
            tp[s[0]] += 1
        for s in ps - gs:
            fp[s[0]] += 1
        for s in gs - ps:
            fn[s[0]] += 1

    def prf(a: int, b: int, c: int) -> dict:
        p = a / (a + b) if a + b else 0.0
        r = a / (a + c) if a + c else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": a + c}

    out = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    out["per_type"] = {t: prf(tp[t], fp[t], fn[t]) for t in types}
    out["n_sentences"] = len(gold)
    return out


def macro_f1(gold: list[str], pred: list[str]) -> dict:
    labels = sorted(set(gold) | set(pred))
    per = {}
    for l in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == l and p == l)
        fp = sum(1 for g, p in zip(gold, pred) if g != l and p == l)
        fn = sum(1 for g, p in zip(gold, pred) if g == l and p != l)
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        per[l] = {"precision": round(pr, 4), "recall": round(rc, 4),
                  "f1": round(2 * pr * rc / (pr + rc) if pr + rc else 0.0, 4), "support": tp + fn}
    gold_labels = sorted(set(gold))
    mf = sum(per[l]["f1"] for l in gold_labels) / len(gold_labels) if gold_labels else 0.0
    acc = sum(1 for g, p in zip(gold, pred) if g == p) / len(gold) if gold else 0.0
    return {"macro_f1": round(mf, 4), "accuracy": round(acc, 4), "n": len(gold), "per_class": per}

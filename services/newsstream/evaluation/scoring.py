"""Scoring helpers shared by ``newsstream eval`` and the build's cross-validation."""

from __future__ import annotations

from newsstream.enrich.ner import bio_spans

TYPES = ("PERS", "LOC", "ORG")


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words joined by single spaces, as a tokenised corpus is given to the
    pipeline, and each word's char span in that text."""
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def document_tags(sents: list[list[str]], gazetteer: bool = True, context_tokens: int = 0) -> list[list[str]]:
    """BIO tags that the product gives the sentences (token lists) of one
    document: the text is the tokens joined by spaces and goes through the
    pipeline's entity step (:func:`pipeline.find_entities`: the tagger's spans
    with document-level name propagation over the whole text, linked to the
    gazetteer, then gazetteer names and roles where the tagger found nothing);
    its role mentions (source ``role``) are not names
    and are left out. ``gazetteer=False``: the tagger as the pipeline runs
    it (:func:`ner.tag_text`), without the gazetteer. A span that starts or
    ends inside a token (a stripped proclitic) covers the whole token.
    ``context_tokens``: the encoder tokens of the text that get contextual
    word states, as the worker gives an item's body with embeddings on (0: none)."""
    from newsstream.enrich import ner
    from newsstream.enrich.pipeline import NER_MAX_CHARS, find_entities

    text, spans = join_words([t for toks in sents for t in toks])
    starts, ends = [s for s, _ in spans], [e for _, e in spans]
    if len(text) > NER_MAX_CHARS and len(sents) > 1:
        # the pipeline tags the first NER_MAX_CHARS of a body: score longer
        # documents as two consecutive ones rather than untagged
        h = len(sents) // 2
        return document_tags(sents[:h], gazetteer, context_tokens) + document_tags(sents[h:], gazetteer, context_tokens)
    if gazetteer:
        # role mentions ("الرئيس الأمريكي" -> a person id) are descriptions, not names: not scored
        found = [(e["type"], e["start"], e["end"]) for e in find_entities(text, context_tokens=context_tokens)[0]
                 if e["source"] != "role"]
    else:
        found = [(typ, s, e) for typ, s, e, _ in ner.tag_text(text, context_tokens=context_tokens)]
    tags = ["O"] * len(starts)
    import bisect

    for typ, s, e in sorted(found, key=lambda x: (x[1], -x[2])):
        i = bisect.bisect_right(starts, s) - 1
        j = bisect.bisect_left(ends, e)
        if i < 0 or j >= len(ends) or any(t != "O" for t in tags[i:j + 1]):
            continue  # overlaps a span already placed
        tags[i] = "B-" + typ
        for k in range(i + 1, j + 1):
            tags[k] = "I-" + typ
    out, k = [], 0
    for toks in sents:
        out.append(tags[k:k + len(toks)])
        k += len(toks)
    return out


def documents(sents: list[list[str]], document_sentences: int | None = None, doc_ids: list | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of the documents of a list of sentences: runs of
    equal ``doc_ids`` when given; else blocks of ``document_sentences``
    sentences; else (the default) consecutive sentences up to the length of
    text that the pipeline tags in one item (``NER_MAX_CHARS``), as if the
    list were cut into articles."""
    from newsstream.enrich.pipeline import NER_MAX_CHARS

    n = len(sents)
    if doc_ids is not None:
        out, a = [], 0
        for i in range(1, n + 1):
            if i == n or doc_ids[i] != doc_ids[a]:
                out.append((a, i))
                a = i
        return out
    if document_sentences:
        return [(a, min(a + document_sentences, n)) for a in range(0, n, document_sentences)]
    out, a, size = [], 0, 0
    for i, toks in enumerate(sents):
        m = sum(len(t) + 1 for t in toks)
        if i > a and size + m > NER_MAX_CHARS:
            out.append((a, i))
            a, size = i, 0
        size += m
    if a < n:
        out.append((a, n))
    return out


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

"""Rebuild the compact models in ``data/`` from the shared data sets.

One command rebuilds everything (training-only dependencies: scikit-learn,
python-crfsuite)::

    .venv/bin/python -m newsstream.core.enrich.build all

or one part: ``gazetteer``, ``ner``, ``topics``; ``--cv`` also prints
cross-validated figures (``ner-cv``, ``topics-cv``). The data are read by path
from ``<repo>/../shared/data`` (override with ``NEWSSTREAM_SHARED_DATA``) and
never copied into the repository.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NEWSSTREAM_SHARED_DATA", REPO.parent / "shared" / "data"))


def _jsonl(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _dump_gz(obj, path: Path) -> None:
    # mtime=0: byte-identical output for identical input.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as fh:
        fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8"))


# --------------------------------------------------------------------------
# gazetteer word flags (NER features)
# --------------------------------------------------------------------------

def build_gazetteer_words() -> dict[str, str]:
    from newsstream.core.enrich.text import norm, tokens

    flags: dict[str, set[str]] = defaultdict(set)

    def add(name: str, flag: str, whole: bool = True) -> None:
        toks = [norm(t) for t, _, _ in tokens(name)]
        toks = [t for t in toks if len(t) >= 2 and t.isalpha()]
        for t in toks:
            flags[t].add(flag)
        if whole and len(toks) == 1:
            flags[toks[0]].add(flag + "1")

    g = SHARED / "arabic_gazetteers"
    for r in _jsonl(g / "anergazet_entries.jsonl"):
        add(r["name"], {"LOC": "L", "PERS": "P", "ORG": "O"}[r["type"]])
    for r in _jsonl(g / "countries_ar_en.jsonl"):
        for n in (r["name_ar"], r["official_ar"], r["name_ar_umpirsky"]):
            if n:
                add(n, "C")
        for cap in r["capitals"]:
            for n in cap["names_ar"]:
                if len(n) >= 3:
                    add(n, "K")
    for r in _jsonl(g / "cities15000_ar_names.jsonl"):
        if r["population"] >= 100_000:
            for n in r["names_ar"]:
                add(n, "K")
    for r in _jsonl(SHARED / "anetac_en_ar_entities" / "train.jsonl"):
        add(r["text"], {"LOCATION": "l", "PERSON": "p", "ORGANIZATION": "o"}[r["label"]].upper() + "t")
    return {w: ",".join(sorted(f)) for w, f in flags.items()}


# --------------------------------------------------------------------------
# word clusters (unsupervised NER features)
# --------------------------------------------------------------------------

CLUSTER_SOURCES = [
    ("iptc_topics", "train.jsonl"), ("ant_multisource_topics", "train.jsonl"), ("ant_jawharafm_topics", "train.jsonl"),
    ("ant_multisource_stream", "stream.jsonl"), ("aja_breaking_ticker", "ticker.jsonl"),
]


def build_clusters(vocab_size: int = 60_000, ctx_size: int = 3000, dims: int = 100, ks=(128, 1024)) -> dict:
    """Distributional word clusters from the unlabelled Arabic news text of the
    shared data (ANERcorp itself is not used): left/right neighbour counts ->
    log -> truncated SVD -> k-means at two granularities."""
    import numpy as np
    import scipy.sparse as sp
    from collections import Counter
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    from newsstream.core.enrich.text import TOKEN_RE, norm

    seen: set[str] = set()
    docs: list[list[str]] = []
    for folder, name in CLUSTER_SOURCES:
        for r in _jsonl(SHARED / folder / name):
            text = (r.get("title") or "") + "\n" + (r.get("text") or "")
            if text in seen:
                continue
            seen.add(text)
            docs.append([norm(t) for t in TOKEN_RE.findall(text)])
    freq = Counter(w for d in docs for w in d)
    vocab = [w for w, c in freq.most_common(vocab_size) if c >= 3]
    vi = {w: i for i, w in enumerate(vocab)}
    ctx = {w: i for i, w in enumerate(vocab[:ctx_size])}
    rows, cols = [], []
    for d in docs:
        ids = [vi.get(w, -1) for w in d]
        cid = [ctx.get(w, -1) for w in d]
        for k in range(len(d)):
            i = ids[k]
            if i < 0:
                continue
            if k > 0 and cid[k - 1] >= 0:
                rows.append(i); cols.append(cid[k - 1])
            if k + 1 < len(d) and cid[k + 1] >= 0:
                rows.append(i); cols.append(ctx_size + cid[k + 1])
    M = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(vocab), 2 * ctx_size))
    M.sum_duplicates()
    M.data = np.log1p(M.data)
    M = normalize(M)
    Z = normalize(TruncatedSVD(dims, random_state=0).fit_transform(M))
    out = {}
    labels = [MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=4096).fit_predict(Z) for k in ks]
    for w, i in vi.items():
        out[w] = ",".join(str(int(l[i])) for l in labels)
    print(f"clusters: {len(docs)} docs, {sum(freq.values())} tokens, {len(out)} words")
    return out


# --------------------------------------------------------------------------
# NER
# --------------------------------------------------------------------------

def _ner_setup():
    from newsstream.core.enrich import ner

    path = DATA / "gazetteer_words.json.gz"
    words = json.loads(gzip.open(path, "rt", encoding="utf-8").read())
    ner._GAZ[0] = {w: tuple(f.split(",")) for w, f in words.items()}
    if (DATA / "word_clusters.json.gz").exists():
        ner._CLU[0] = ner.load_clusters()
    ner._word_feats.cache_clear()
    return ner


def _train_crf(sents, ner, c1=None, c2=None, max_iter=None):
    c1 = float(os.environ.get("NER_C1", 0.0)) if c1 is None else c1
    c2 = float(os.environ.get("NER_C2", 0.1)) if c2 is None else c2
    max_iter = int(os.environ.get("NER_ITER", 150)) if max_iter is None else max_iter
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for toks, tags in sents:
        trainer.append(ner.token_features(toks), tags)
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iter, "feature.possible_transitions": True})
    tmp = DATA / f".ner.{os.getpid()}.crfsuite.tmp"
    trainer.train(str(tmp))
    tagger = pycrfsuite.Tagger()
    tagger.open(str(tmp))
    info = tagger.info()
    labels = sorted(set(l for (_, l) in info.transitions) | set(l for (_, l) in info.state_features))
    idx = {l: i for i, l in enumerate(labels)}
    trans = [[0.0] * len(labels) for _ in labels]
    for (a, b), w in info.transitions.items():
        trans[idx[a]][idx[b]] = round(w, 4)
    state: dict[str, list] = defaultdict(list)
    for (attr, lab), w in info.state_features.items():
        if abs(w) >= 1e-3:
            state[attr].append([idx[lab], round(w, 4)])
    tagger.close()
    tmp.unlink()
    return {"labels": labels, "transitions": trans, "state": dict(state)}


def _anercorp():
    return [(r["tokens"], r["tags"]) for r in _jsonl(SHARED / "anercorp" / "train.jsonl")]


# Bias added to the O emission when decoding, chosen with ner_cv (see ner_crf.md).
O_BIAS = float(os.environ.get("NER_O_BIAS", -0.5))


def build_ner() -> None:
    ner = _ner_setup()
    model = _train_crf(_anercorp(), ner)
    model["version"] = ner.NER_VERSION
    model["o_bias"] = O_BIAS
    _dump_gz(model, DATA / "ner_crf.json.gz")
    print("ner: %d labels, %d attributes" % (len(model["labels"]), len(model["state"])))


def ner_cv(folds: int = 5) -> dict:
    """Contiguous k-fold CV on the ANERcorp developer portion (blocks of
    consecutive sentences, like the official tail split)."""
    from newsstream.core.enrich.evaluate import span_prf

    ner = _ner_setup()
    sents = _anercorp()
    n = len(sents)
    from newsstream.core.enrich.pipeline import merge_gazetteer_tags

    biases = (0.0, -0.5, -1.0, -1.5, -2.0)
    by_bias: dict[float, list] = {b: [] for b in biases}
    gold_all, pred_all, merged_all = [], [], []
    for k in range(folds):
        a, b = n * k // folds, n * (k + 1) // folds
        t = time.time()
        tagger = ner.Tagger(_train_crf(sents[:a] + sents[b:], ner))
        for bias in biases:
            tagger.o_bias = bias
            by_bias[bias].extend(tagger.tag(toks) for toks, _ in sents[a:b])
        tagger.o_bias = O_BIAS
        for toks, tags in sents[a:b]:
            gold_all.append(tags)
            pred_all.append(tagger.tag(toks))
            merged_all.append(merge_gazetteer_tags(list(toks), pred_all[-1]))
        print(f"fold {k}: {time.time() - t:.0f}s", span_prf(gold_all[-(b - a):], pred_all[-(b - a):])["f1"], flush=True)
    for bias in biases:
        r = span_prf(gold_all, by_bias[bias])
        print(f"o_bias {bias}: P {r['precision']} R {r['recall']} F1 {r['f1']}")
    res = span_prf(gold_all, pred_all)
    print(f"model only (o_bias {O_BIAS}):", json.dumps(res))
    merged = span_prf(gold_all, merged_all)
    print("with gazetteer:", json.dumps(merged))
    for w in (5, 10, 20):
        prop = []
        for a in range(0, len(pred_all), w):
            prop += ner.propagate([t for t, _ in sents[a:a + w]], pred_all[a:a + w])
        r = span_prf(gold_all, prop)
        print(f"propagated, documents of {w} sentences:", json.dumps(r))
    return {"model_only": res, "with_gazetteer": merged}


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    if what in ("gazetteer", "all"):
        words = build_gazetteer_words()
        _dump_gz(words, DATA / "gazetteer_words.json.gz")
        print("gazetteer words:", len(words))
        from newsstream.core.enrich.gazetteer import build_index

        build_index(SHARED)
    if what in ("clusters", "all"):
        _dump_gz(build_clusters(), DATA / "word_clusters.json.gz")
    if what in ("ner", "all"):
        build_ner()
    if what in ("topics", "all"):
        from newsstream.core.enrich.topics import build_topics

        build_topics(SHARED)
    if what == "ner-cv":
        ner_cv()
    if what == "topics-cv":
        from newsstream.core.enrich.topics import topics_cv

        topics_cv(SHARED)


if __name__ == "__main__":
    main(sys.argv[1:])

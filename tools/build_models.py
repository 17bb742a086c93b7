"""Rebuild the compact models in ``data/`` from the shared data sets.

One command rebuilds everything (training-only dependencies: scikit-learn,
python-crfsuite)::

    .venv/bin/python tools/build_models.py all

or one part: ``gazetteer``, ``clusters``, ``encoder-clusters``, ``names``,
``ner`` (needs the four before it), ``topics``, ``language-means``; ``ner-cv``, ``topics-cv`` and ``topics-vectors-cv`` (the sentence
encoder for topics) print cross-validated figures. The data are read by path
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

from common import DATA, SHARED, dump_gz, jsonl

# --------------------------------------------------------------------------
# gazetteer word flags (NER features)
# --------------------------------------------------------------------------

def build_gazetteer_words() -> dict[str, str]:
    from newsstream.enrich.tokens import norm, tokens

    flags: dict[str, set[str]] = defaultdict(set)

    def add(name: str, flag: str, whole: bool = True) -> None:
        toks = [norm(t) for t, _, _ in tokens(name)]
        toks = [t for t in toks if len(t) >= 2 and t.isalpha()]
        for t in toks:
            flags[t].add(flag)
        if whole and len(toks) == 1:
            flags[toks[0]].add(flag + "1")

    g = SHARED / "arabic_gazetteers"
    for r in jsonl(g / "anergazet_entries.jsonl"):
        add(r["name"], {"LOC": "L", "PERS": "P", "ORG": "O"}[r["type"]])
    for r in jsonl(g / "countries_ar_en.jsonl"):
        for n in (r["name_ar"], r["official_ar"], r["name_ar_umpirsky"]):
            if n:
                add(n, "C")
        for cap in r["capitals"]:
            for n in cap["names_ar"]:
                if len(n) >= 3:
                    add(n, "K")
    for r in jsonl(g / "cities15000_ar_names.jsonl"):
        if r["population"] >= 100_000:
            for n in r["names_ar"]:
                add(n, "K")
    for r in jsonl(SHARED / "anetac_en_ar_entities" / "train.jsonl"):
        add(r["text"], {"LOCATION": "l", "PERSON": "p", "ORGANIZATION": "o"}[r["label"]].upper() + "t")
    return {w: ",".join(sorted(f)) for w, f in flags.items()}


# --------------------------------------------------------------------------
# word clusters (unsupervised NER features)
# --------------------------------------------------------------------------

CLUSTER_SOURCES = [
    ("iptc_topics", "train.jsonl"), ("ant_multisource_topics", "train.jsonl"), ("ant_jawharafm_topics", "train.jsonl"),
    ("ant_multisource_stream", "stream.jsonl"), ("aja_breaking_ticker", "ticker.jsonl"),
]


def build_clusters(vocab_size: int = 60_000, ctx_size: int = 3000, dims: int = 100, ks=(32, 128, 512, 2048)) -> dict:
    """Distributional word clusters from the unlabelled Arabic news text of the
    shared data (ANERcorp itself is not used): counts of the neighbours at
    -2, -1, +1, +2 among the 3,000 most frequent words -> log -> truncated SVD
    -> k-means at four granularities (``ner.CLUSTER_KS``)."""
    from collections import Counter

    import numpy as np
    import scipy.sparse as sp
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize


    docs = _cluster_docs()
    freq = Counter(w for d in docs for w in d)
    vocab = [w for w, c in freq.most_common(vocab_size) if c >= 2]
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
            for off, base in ((-1, 0), (1, ctx_size), (-2, 2 * ctx_size), (2, 3 * ctx_size)):
                j = k + off
                if 0 <= j < len(d) and cid[j] >= 0:
                    rows.append(i)
                    cols.append(base + cid[j])
    M = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(vocab), 4 * ctx_size))
    M.sum_duplicates()
    M.data = np.log1p(M.data)
    M = normalize(M)
    Z = normalize(TruncatedSVD(dims, random_state=0).fit_transform(M))
    labels = [MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=4096).fit_predict(Z) for k in ks]
    out = {w: ",".join(str(int(l[i])) for l in labels) for w, i in vi.items()}
    print(f"clusters: {len(docs)} docs, {sum(freq.values())} tokens, {len(out)} words")
    return out


ENCODER_MIN_COUNT = 2  # occurrences a word needs for a mean state
ENCODER_DOC_WORDS = 3000  # words read of each text


def _encoder_word_sums(part: int, parts: int):  # type: ignore[no-untyped-def]
    """(words, summed layer-6 states, counts) of the words of every ``parts``-th
    unlabelled text from ``part``: each text read as the tagger reads an
    article (``ner_context.word_states``: its words joined by spaces, windows of
    128 tokens), each word's first sub-word state added to its normalised form."""
    import numpy as np

    from newsstream.enrich.ner_context import word_states
    from newsstream.enrich.tokens import TOKEN_RE, norm
    from newsstream.evaluation.scoring import join_words

    docs = [TOKEN_RE.findall(text)[:ENCODER_DOC_WORDS] for text in _cluster_texts()][part::parts]
    index: dict[str, int] = {}
    sums = np.zeros((400_000, 384), np.float32)
    counts = np.zeros(400_000, np.int32)
    t = time.time()
    for b in range(0, len(docs), 16):
        for toks, states in zip(docs[b:b + 16], word_states([join_words(toks) for toks in docs[b:b + 16]])):
            for w, state in zip(toks, states):
                i = index.setdefault(norm(w), len(index))
                if state.any():
                    sums[i] += state
                    counts[i] += 1
        if b % 800 == 0:
            print(f"  encoder states, part {part}: {b}/{len(docs)} texts, {time.time() - t:.0f}s", flush=True)
    words = sorted(index, key=index.get)  # type: ignore[arg-type]
    return words, sums[:len(words)], counts[:len(words)]


def build_encoder_clusters() -> dict[str, str]:
    """Clusters of words by their mean encoder state in context (the tagger's
    layer 6) over the unlabelled news texts (ANERcorp is not used): what the
    pretrained encoder knows of a word, for every word the tagger meets, at
    the cost of a look-up (data/encoder_clusters.md). ``ENCODER_STATES_CACHE``:
    an .npz of the summed states to keep between builds (the encoding is
    most of the time: about 15 minutes on 2 cores)."""
    from multiprocessing import get_context

    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    from newsstream.enrich.ner import ENCODER_CLUSTER_KS

    cache = os.environ.get("ENCODER_STATES_CACHE")
    if cache and Path(cache).exists():
        with np.load(cache) as z:
            parts = [(z[f"words{p}"].tolist(), z[f"sums{p}"], z[f"counts{p}"]) for p in (0, 1)]
    else:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        with get_context("fork").Pool(2) as pool:
            parts = pool.starmap(_encoder_word_sums, [(0, 2), (1, 2)])
        if cache:
            np.savez(cache, **{f"{k}{p}": v for p, part in enumerate(parts) for k, v in zip(("words", "sums", "counts"), part)})
    words = sorted(set(parts[0][0]) | set(parts[1][0]))
    wi = {w: i for i, w in enumerate(words)}
    sums = np.zeros((len(words), 384), np.float64)
    counts = np.zeros(len(words))
    for pw, ps, pc in parts:
        ix = np.array([wi[w] for w in pw])
        sums[ix] += ps
        counts[ix] += pc
    keep = counts >= ENCODER_MIN_COUNT
    means = sums[keep] / counts[keep, None]
    means -= means.mean(0)  # every state leans the same way: the direction that tells words apart is what is left
    means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-9
    labels = [MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=4096).fit_predict(means) for k in ENCODER_CLUSTER_KS]
    kept = [w for w, k in zip(words, keep) if k]
    print(f"encoder clusters: {len(words)} words, {len(kept)} seen {ENCODER_MIN_COUNT}+ times")
    return {w: ",".join(str(int(lab[i])) for lab in labels) for i, w in enumerate(kept)}


def _cluster_texts() -> list[str]:
    """The unlabelled news texts (title and text), each once, in source order."""
    texts = ((r.get("title") or "") + "\n" + (r.get("text") or "")
             for folder, name in CLUSTER_SOURCES for r in jsonl(SHARED / folder / name))
    return list(dict.fromkeys(texts))


def _cluster_docs() -> list[list[str]]:
    """Normalised tokens of the unlabelled news texts (deduplicated)."""
    from newsstream.enrich.tokens import TOKEN_RE, norm

    return [[norm(t) for t in TOKEN_RE.findall(text)] for text in _cluster_texts()]


# --------------------------------------------------------------------------
# name-likeness of a word from its letters (NER feature for unknown words)
# --------------------------------------------------------------------------

def build_name_chars(min_df: int = 2, C: float = 2.0) -> dict:
    """Character 2-4-gram logistic regression over "<word>": P/L/O (one-word
    names and name parts of a single type from ANETAC, ANERGazet, countries,
    cities) against W (words seen at least twice in the unlabelled news text
    that no gazetteer lists). ANERcorp is not used."""
    from collections import Counter

    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    from newsstream.enrich.tokens import norm, tokens

    lab: dict[str, set[str]] = defaultdict(set)

    def add(name: str, t: str) -> None:
        for tok, _, _ in tokens(name):
            w = norm(tok)
            if len(w) >= 2 and w.isalpha():
                lab[w].add(t)

    g = SHARED / "arabic_gazetteers"
    for r in jsonl(SHARED / "anetac_en_ar_entities" / "train.jsonl"):
        add(r["text"], {"PERSON": "P", "LOCATION": "L", "ORGANIZATION": "O"}[r["label"]])
    for r in jsonl(g / "anergazet_entries.jsonl"):
        add(r["name"], r["type"][0])
    for r in jsonl(g / "countries_ar_en.jsonl"):
        for n in (r["name_ar"], r["official_ar"], r["name_ar_umpirsky"]):
            if n:
                add(n, "L")
    for r in jsonl(g / "cities15000_ar_names.jsonl"):
        for n in r["names_ar"]:
            add(n, "L")
    words = sorted(w for w, ts in lab.items() if len(ts) == 1)
    y = [next(iter(lab[w])) for w in words]
    freq = Counter(w for d in _cluster_docs() for w in d)
    neg = sorted(w for w, c in freq.items() if c >= 2 and w not in lab and w.isalpha() and len(w) >= 2)
    words += neg
    y += ["W"] * len(neg)
    cv = CountVectorizer(analyzer="char", ngram_range=(2, 4), lowercase=False, min_df=min_df)
    X = normalize(cv.fit_transform(["<" + w + ">" for w in words]).astype(np.float64))
    clf = LogisticRegression(C=C, max_iter=500, class_weight="balanced").fit(X, y)
    ngrams = cv.get_feature_names_out().tolist()
    coef = np.round(clf.coef_.T, 2)  # (ngrams, classes)
    print(f"name chars: {len(words)} words ({Counter(y)}), {len(ngrams)} n-grams")
    return {"classes": clf.classes_.tolist(), "ngrams": ngrams, "coef": coef.ravel().tolist(),
            "intercept": np.round(clf.intercept_, 4).tolist()}


# --------------------------------------------------------------------------
# NER
# --------------------------------------------------------------------------

def _ner_setup():
    from newsstream.enrich import ner

    ner._GAZ[0], ner._CLU[0], ner._ENC[0], ner._NAMES[0] = {}, {}, {}, None
    ner.load_lexicons()
    ner.word_features.cache_clear()
    return ner


# CRFsuite L-BFGS (OWL-QN) with L1 + L2: c1 = 0.02 keeps ~50k of ~350k
# attributes at the F1 of L2 alone (ner_crf.md).
C1 = float(os.environ.get("NER_C1", 0.02))
C2 = float(os.environ.get("NER_C2", 0.1))
ITERATIONS = int(os.environ.get("NER_ITER", 150))


def _train_crf(sents, ner, c1=None, c2=None, max_iter=None, feats=None):
    """CRFsuite model of ``(tokens, tags)`` sentences (features: ``feats``, one
    list per sentence, else ``ner.token_features``), exported for ``ner.Tagger``."""
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for k, (toks, tags) in enumerate(sents):
        trainer.append(pycrfsuite.ItemSequence(feats[k] if feats is not None else ner.token_features(toks)), tags)
    trainer.set_params({"c1": C1 if c1 is None else c1, "c2": C2 if c2 is None else c2,
                        "max_iterations": ITERATIONS if max_iter is None else max_iter,
                        "feature.possible_transitions": True})
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
    return [(r["tokens"], r["tags"]) for r in jsonl(SHARED / "anercorp" / "train.jsonl")]


# Contextual features (ner_context, ner.ContextProbe): the encoder's layer-6
# word states, read out by a logistic regression into BIO probabilities that
# both CRF stages weigh as soft features.
PROBE_C = 0.1  # L2 strength of the probe (C of scikit-learn's LogisticRegression)
PROBE_PARTS = 4  # the CRFs learn from probabilities of probes that did not see the sentence (jackknife)
# Share of training sentences whose context features are left out: the tagger
# also tags words without a state (past the context budget, embeddings off),
# and the dropout keeps the CRF from leaning on the probe alone (CV with it,
# sentence by sentence, stage 1: 0.786 with context, 0.739 without; trained
# with context everywhere: 0.779 with it).
CONTEXT_DROP = 0.5
_CONTEXT: dict = {}  # set of rows -> ({row: probe probabilities}, probe) for the training jobs (fork-inherited)


def _anercorp_states():
    """Word states of every ANERcorp sentence (a list of (words, 384) arrays),
    encoded as the pipeline encodes an article body: documents of consecutive
    sentences (``scoring.documents``), tokens joined by spaces, windows of 128
    tokens. ``NER_STATES_CACHE``: an .npy file to keep them in between builds."""
    import numpy as np

    from newsstream.enrich.ner_context import word_states
    from newsstream.evaluation.scoring import documents, join_words

    toks = [t for t, _ in _anercorp()]
    bounds = np.cumsum([0] + [len(t) for t in toks])
    cache = os.environ.get("NER_STATES_CACHE")
    if cache and Path(cache).exists():
        flat = np.load(cache).astype(np.float32)
    else:
        t, rows = time.time(), []
        for a, b in documents(toks):
            rows += word_states([join_words([w for sent in toks[a:b] for w in sent])])
        flat = np.concatenate(rows)
        print(f"  word states of {len(flat)} words: {time.time() - t:.0f}s", flush=True)
        if cache:
            np.save(cache, flat.astype(np.float16))
    return [flat[bounds[i]:bounds[i + 1]] for i in range(len(toks))]


def _fit_probe(states, tags) -> dict:
    """The context probe (``ner.ContextProbe``'s model) of word states and their gold tags."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from newsstream.enrich.ner_context import CONTEXT_LAYER

    X = np.concatenate(states)
    y = [t for tg in tags for t in tg]
    mean, scale = X.mean(0), X.std(0) + 1e-6
    m = LogisticRegression(C=PROBE_C, max_iter=300).fit((X - mean) / scale, y)
    return {"layer": CONTEXT_LAYER, "labels": [str(c) for c in m.classes_], "mean": mean.round(5).tolist(),
            "scale": scale.round(5).tolist(), "coef": m.coef_.T.round(5).tolist(), "intercept": m.intercept_.round(5).tolist()}


def _context_probs(train_idx: list[int], states, sents) -> tuple[dict, dict]:
    """Probe probabilities of every training row from a probe that did not see
    it (PROBE_PARTS contiguous parts), and the probe of all the rows."""
    from newsstream.enrich.ner import ContextProbe

    probs = {}
    for j in range(PROBE_PARTS):
        lo, hi = len(train_idx) * j // PROBE_PARTS, len(train_idx) * (j + 1) // PROBE_PARTS
        rest = train_idx[:lo] + train_idx[hi:]
        probe = ContextProbe(_fit_probe([states[i] for i in rest], [sents[i][1] for i in rest]))
        for i in train_idx[lo:hi]:
            probs[i] = probe.probabilities(states[i])
    return probs, _fit_probe([states[i] for i in train_idx], [sents[i][1] for i in train_idx])


def _with_context(i: int, sents) -> bool:
    """Whether training row ``i`` keeps its context features (CONTEXT_DROP leaves the others out)."""
    import zlib

    return zlib.crc32(" ".join(sents[i][0]).encode("utf-8")) % 1000 >= CONTEXT_DROP * 1000


def _row_features(i: int, sents, ner, set_key, extra=None) -> list[dict[str, float]]:
    """CRF features of training row ``i``: its tokens', the stacking ones
    (``extra``) and, unless dropped, the context ones."""
    base = ner.token_features(sents[i][0])
    if set_key in _CONTEXT:  # the tagger in context learnt without the encoder clusters (ner_crf_context.md)
        base = [[f for f in fs if not ner.encoder_cluster_feature(f)] for fs in base]
    if extra is not None:
        base = [b + e for b, e in zip(base, extra)]
    feats = [dict.fromkeys(f, 1.0) for f in base]
    if set_key in _CONTEXT and _with_context(i, sents):
        probs, probe = _CONTEXT[set_key]
        for f, c in zip(feats, ner.context_features(probs[i], probe["labels"])):
            f.update(c)
    return feats


def _tag_rows(tagger, rows: list[int], sents, set_key) -> list[list[str]]:
    """First-stage tags of training rows, with their context features as in training."""
    import numpy as np

    toks = [sents[i][0] for i in rows]
    if set_key not in _CONTEXT:
        return tagger.tag_batch(toks)
    probs, probe = _CONTEXT[set_key]
    kept = [i for i in rows if sents[i][0]]
    p = np.concatenate([probs[i] if _with_context(i, sents) else np.zeros_like(probs[i]) for i in kept])
    return tagger.tag_batch(toks, extra_emissions=tagger._context_emissions(p, [len(sents[i][0]) for i in kept], probe["labels"]))


# Bias added to the O emission when decoding, chosen with ner_cv (see ner_crf.md).
O_BIAS = float(os.environ.get("NER_O_BIAS", 0.0))


# Stacking: the second stage is trained on first-stage tags of the training
# sentences made by models that did not see them (jackknife over this many
# contiguous parts of the training set).
STACK_PARTS = 2


# Distillation: the plain tagger's first stage also learns from unlabelled
# news tagged by the tagger in context with every word in context (the best
# tagger, 0.80, too dear to run on every word at run time), so it meets the
# names and contexts of the news it will tag, beyond ANERcorp's 4,004
# sentences (data/ner_crf.md). Leads (title and first sentences) of every
# k-th unlabelled text, one encoder window each.
SILVER_TEXTS = 2000
SILVER_TOKENS = 150
_SILVER: dict = {}  # set of rows -> silver (tokens, tags) sentences for its first stage (fork-inherited)


def _silver_docs() -> list[tuple]:
    """(words, an array of their encoder states) of the first SILVER_TOKENS tokens of
    SILVER_TEXTS unlabelled news texts (every k-th of ``_cluster_texts``)."""
    from newsstream.enrich.ner_context import word_states
    from newsstream.enrich.tokens import tokens

    texts = _cluster_texts()
    docs = []
    for text in texts[::max(1, len(texts) // SILVER_TEXTS)][:SILVER_TEXTS]:
        toks = tokens(text)[:SILVER_TOKENS]
        if toks:
            docs.append((text[:toks[-1][2]], toks))
    t, states = time.time(), []
    for b in range(0, len(docs), 16):
        states += word_states([(text, [(s, e) for _, s, e in toks]) for text, toks in docs[b:b + 16]])
    print(f"  silver texts: {len(docs)}, encoded in {time.time() - t:.0f}s", flush=True)
    return [([w for w, _, _ in toks], st) for (_, toks), st in zip(docs, states)]


def _silver_sentences(context_model: dict, docs) -> list[tuple[list[str], list[str]]]:  # type: ignore[no-untyped-def]
    """The sentences of the silver texts with the tags the pipeline gives them
    with every word in context (``ner.tag_sentences``), by ``context_model``."""
    ner = _ner_setup()
    ner._tagger = ner._context_tagger = ner.Tagger(context_model)  # every word has a state: the plain one is not used
    out = []
    for words, states in docs:
        bounds, tags = ner.tag_words(words, states)
        out += [(words[a:b], tg) for (a, b), tg in zip(bounds, tags) if b > a]
    ner._tagger = ner._context_tagger = None
    return out


def _stage1_job(job):
    """(set, kind, training rows, rows to tag) -> (set, kind, model or None, rows, tags)."""
    f, kind, train_idx, pred_idx = job
    ner = _ner_setup()
    sents = _anercorp()
    t = time.time()
    silver = _SILVER.get(f, [])
    feats = [_row_features(i, sents, ner, f) for i in train_idx] + [[dict.fromkeys(x, 1.0) for x in ner.token_features(s)] for s, _ in silver]
    model = _train_crf([sents[i] for i in train_idx] + silver, ner, feats=feats)
    tagger = ner.Tagger(model)
    tagger.o_bias = O_BIAS
    tags = _tag_rows(tagger, pred_idx, sents, f) if pred_idx else []
    print(f"  stage 1, set {f} {kind}: {len(train_idx)} + {len(silver)} silver sentences, {time.time() - t:.0f}s", flush=True)
    return f, kind, (model if kind == "stage1" else None), pred_idx, tags


def _stage2_job(job):
    """(set, training rows, their jackknifed first-stage tags) -> second-stage model."""
    from newsstream.evaluation.scoring import documents

    f, train_idx, tags1 = job
    ner = _ner_setup()
    sents = _anercorp()
    t = time.time()
    feats = {}
    runs, run = [], [train_idx[0]]
    for i in train_idx[1:]:  # contiguous runs of the training rows: their documents
        if i != run[-1] + 1:
            runs.append(run)
            run = []
        run.append(i)
    runs.append(run)
    for run in runs:
        toks = [sents[i][0] for i in run]
        for a, b in documents(toks):
            extra = ner.stack_features(toks[a:b], [tags1[i] for i in run[a:b]])
            for i, ex in zip(run[a:b], extra):
                feats[i] = _row_features(i, sents, ner, f, ex)
    model = _train_crf([sents[i] for i in train_idx], ner, feats=[feats[i] for i in train_idx])
    model["o_bias"] = O_BIAS
    print(f"  stage 2, set {f}: {time.time() - t:.0f}s, {len(model['state'])} attributes", flush=True)
    return f, model


def _train_stacked(train_sets: list[list[int]], procs: int, context: bool,
                   silver: list[list[tuple[list[str], list[str]]]] | None = None) -> list[dict]:
    """One stacked model per set of ANERcorp rows: the first stage trained on
    all of the set, the second on the set with jackknifed first-stage tags;
    with ``context``, both with the context probe's probabilities, the probe
    in the model; with ``silver``, each set's first stages also learn from its
    silver sentences."""
    from multiprocessing import get_context

    _CONTEXT.clear()
    _SILVER.clear()
    _SILVER.update(enumerate(silver or []))
    if context:
        sents = _anercorp()
        states = _anercorp_states()
        for f, tr in enumerate(train_sets):
            t = time.time()
            _CONTEXT[f] = _context_probs(tr, states, sents)
            print(f"  context probe, set {f}: {time.time() - t:.0f}s", flush=True)
    jobs = []
    for f, tr in enumerate(train_sets):
        jobs.append((f, "stage1", tr, []))
        for j in range(STACK_PARTS):
            lo, hi = len(tr) * j // STACK_PARTS, len(tr) * (j + 1) // STACK_PARTS
            jobs.append((f, f"part {j}", tr[:lo] + tr[hi:], tr[lo:hi]))
    with get_context("fork").Pool(procs) as pool:
        res = pool.map(_stage1_job, jobs, chunksize=1)
        first, jk = {}, defaultdict(dict)
        for f, kind, model, idx, tags in res:
            if model is not None:
                first[f] = model
            jk[f].update(zip(idx, tags))
        second = dict(pool.map(_stage2_job, [(f, tr, jk[f]) for f, tr in enumerate(train_sets)], chunksize=1))
    out = []
    for f in range(len(train_sets)):
        m = first[f]
        m["o_bias"] = O_BIAS
        m["stage2"] = second[f]
        if context:
            m["context"] = _CONTEXT[f][1]
        out.append(m)
    return out


# Bias on O when the plain tagger decodes (both stages; training and the
# jackknife use O_BIAS). With the encoder clusters the plain tagger marks more
# names, and the bias gives its precision back. Re-chosen with the silver
# sentences (ner-crf-6; 5-fold CV, the same fold models decoded at each bias,
# docs/experiments/2026-12-07-plain-tagger-decoding.md): the default pipeline
# on articles 0.7790 / 0.7808 / 0.7830 / 0.7823 at 0.25 / 0.5 / 0.75 / 1; plain
# on articles 0.7753 / 0.7772 / 0.7795 / 0.7785; sentence by sentence 0.7684 /
# 0.7690 / 0.7694 / 0.7675. (ner-crf-4, without the silver: 0.770 at 0.5 and
# 0.772 at 0.75 on articles, but 0.759 and 0.756 sentence by sentence.)
PLAIN_DECODE_O_BIAS = 0.75


def _set_o_bias(model: dict, bias: float) -> None:
    model["o_bias"] = bias
    if model.get("stage2"):
        model["stage2"]["o_bias"] = bias


def build_ner(procs: int = int(os.environ.get("NER_PROCS", 2)),
              which: tuple[str, ...] = tuple(os.environ.get("NER_MODELS", "plain,context").split(","))) -> None:
    """The tagger in context (ner_crf_context.json.gz), then the plain tagger
    (ner_crf.json.gz), which learns from silver sentences tagged by it;
    ``NER_MODELS=plain`` or ``context``: one of them (the plain tagger then
    reads the tagger in context from its file)."""
    ner = _ner_setup()
    rows = list(range(len(_anercorp())))
    if "context" in which:
        (context,) = _train_stacked([rows], procs, True)
        context["version"] = ner.NER_CONTEXT_VERSION
        _dump_tagger(context, ner.CONTEXT_MODEL)
    else:
        with gzip.open(ner.CONTEXT_MODEL, "rt", encoding="utf-8") as fh:
            context = json.load(fh)
    if "plain" in which:
        silver = _silver_sentences(context, _silver_docs())
        (model,) = _train_stacked([rows], procs, False, [silver])
        _set_o_bias(model, PLAIN_DECODE_O_BIAS)
        model["version"] = ner.NER_VERSION
        _dump_tagger(model, DATA / "ner_crf.json.gz")


def _dump_tagger(model: dict, path: Path) -> None:
    dump_gz(model, path)
    print(f"{path.name}: %d labels, %d + %d attributes" % (len(model["labels"]), len(model["state"]), len(model["stage2"]["state"])))


CV_CONTEXT_BUDGETS = [int(n) for n in os.environ.get("NER_CV_BUDGETS", "128,256,512").split(",") if n]


def ner_cv(folds: int = 5, procs: int = int(os.environ.get("NER_CV_PROCS", 2))) -> dict:
    """Contiguous k-fold CV on the ANERcorp developer portion (blocks of
    consecutive sentences, like the official tail split): every fold is
    tagged by a model trained on the other folds only, through
    ``evaluate.document_tags`` (what ``newsstream eval entities`` runs)."""
    from newsstream.evaluation.scoring import document_tags, documents, span_prf

    sents = _anercorp()
    n = len(sents)
    train_sets = [[i for i in range(n) if not n * k // folds <= i < n * (k + 1) // folds] for k in range(folds)]
    models: dict[bool, dict[int, dict]] = {}
    for context in (True, False):  # the plain fold models learn from silver sentences tagged by the context ones
        # files to keep the fold models in (re-scoring without retraining)
        cache = os.environ.get("NER_CV_CONTEXT_MODELS" if context else "NER_CV_MODELS")
        if cache and Path(cache).exists():
            with gzip.open(cache, "rt", encoding="utf-8") as fh:
                models[context] = {int(k): m for k, m in json.load(fh).items()}
        else:
            silver = None
            if not context:
                docs = _silver_docs()
                silver = [_silver_sentences(models[True][k], docs) for k in range(folds)]
            models[context] = dict(enumerate(_train_stacked(train_sets, procs, context, silver)))
            if cache:
                dump_gz(models[context], Path(cache))
    for m in models[False].values():  # the plain tagger decodes as shipped
        _set_o_bias(m, PLAIN_DECODE_O_BIAS)
    ner = _ner_setup()
    gold = [t for _, t in sents]
    toks = [list(s) for s, _ in sents]
    # (name, gazetteer, sentences per document: None = articles of <= 6,000 characters, the eval's default,
    #  encoder tokens per text with contextual word states: 0 = none, as with NEWSSTREAM_EMBEDDINGS=off)
    full = 10**6
    configs = [("tagger, sentence by sentence", False, 1, 0), ("tagger, articles", False, None, 0),
               ("tagger+context, sentence by sentence", False, 1, full), ("tagger+context, articles", False, None, full),
               ("pipeline, sentence by sentence", True, 1, 0), ("pipeline, articles", True, None, 0),
               ("pipeline+context, sentence by sentence", True, 1, full), ("pipeline+context, articles", True, None, full)]
    configs += [(f"pipeline+context {n} tokens, articles", True, None, n) for n in CV_CONTEXT_BUDGETS]
    # documents of 7 sentences: about a median news article (1,260 characters, 360 tokens)
    configs += [(f"pipeline+context {n} tokens, 7-sentence documents", True, 7, n) for n in (0, *CV_CONTEXT_BUDGETS, full)]
    preds: dict[tuple, list] = {c: [] for c in configs}
    for k in range(folds):
        a, b = n * k // folds, n * (k + 1) // folds
        ner._tagger, ner._context_tagger = ner.Tagger(models[False][k]), ner.Tagger(models[True][k])
        for c in configs:
            for s, e in documents(toks[a:b], c[2]):
                preds[c] += document_tags(toks[a + s:a + e], gazetteer=c[1], context_tokens=c[3])
    ner._tagger = ner._context_tagger = None
    res = {}
    for c, pred in preds.items():
        r = span_prf(gold, pred)
        per = " ".join(f"{t} {v['f1']:.3f}" for t, v in r["per_type"].items())
        fold_f1 = " ".join(f"{span_prf(gold[n * k // folds:n * (k + 1) // folds], pred[n * k // folds:n * (k + 1) // folds])['f1']:.3f}"
                           for k in range(folds))
        print(f"{c[0]:50}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} | {per} | folds {fold_f1}")
        res[c[0]] = r
    print(json.dumps(res))
    return res


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    if what in ("gazetteer", "all"):
        words = build_gazetteer_words()
        dump_gz(words, DATA / "gazetteer_words.json.gz")
        print("gazetteer words:", len(words))
        from build_gazetteer import build_index

        build_index(SHARED)
    if what in ("clusters", "all"):
        dump_gz(build_clusters(), DATA / "word_clusters.json.gz")
    if what in ("encoder-clusters", "all"):
        dump_gz(build_encoder_clusters(), DATA / "encoder_clusters.json.gz")
    if what in ("names", "all"):
        dump_gz(build_name_chars(), DATA / "name_chars.json.gz")
    if what in ("ner", "all"):
        build_ner()
    if what in ("topics", "all"):
        from train_topics import build_topics

        build_topics(SHARED)
    if what in ("language-means", "all"):
        from build_language_means import build as build_language_means

        build_language_means()
    if what in ("topics-vectors", "all"):  # after topics and language-means: it reads both
        from train_topics import build_topics_vectors

        build_topics_vectors(SHARED)
    if what == "ner-cv":
        ner_cv()
    if what == "topics-cv":
        from train_topics import topics_cv

        topics_cv(SHARED)
    if what == "topics-vectors-cv":
        from train_topics import topics_vectors_cv

        topics_vectors_cv(SHARED)


if __name__ == "__main__":
    main(sys.argv[1:])

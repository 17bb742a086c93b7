"""Named-entity tagger (PERS, LOC, ORG, MISC) : a linear-chain CRF applied with
plain Python (Viterbi over weights exported from CRFsuite).

The model file ``data/ner_crf.json.gz`` holds the labels, the transition
matrix and the state weights per feature string; ``data/gazetteer_words.json.gz``
holds the word-level gazetteer flags used as features. Both are built by
``python -m newsstream.core.enrich.build ner`` (see ``data/ner_crf.md``).
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
from pathlib import Path

from newsstream.core.enrich.text import norm, strip_clitics, tokens

__all__ = ["token_features", "Tagger", "get_tagger", "bio_spans", "NER_VERSION"]

DATA = Path(__file__).parent / "data"
NER_VERSION = "ner-crf-1"

_PUNCT_CLASS = {".": "END", "!": "END", "?": "END", "؟": "END", ",": "COM", "،": "COM", ":": "COL", '"': "Q",
                "«": "Q", "»": "Q", "(": "PAR", ")": "PAR", "-": "DASH", "/": "SL"}


def _shape(tok: str) -> str:
    if not tok:
        return "E"
    if tok.isdigit():
        return "D"
    c = tok[0]
    if "\u0600" <= c <= "\u06ff":
        return "A"
    if c.isalpha():
        return "Lu" if c.isupper() else "Ll"
    return "P" + _PUNCT_CLASS.get(tok, "")


@functools.lru_cache(maxsize=200_000)
def _word_feats(tok: str, gaz_key: int) -> tuple[tuple[str, ...], str, str]:
    """Features of a token on its own (cached), plus its normalised form and
    gazetteer flags (used by the neighbours' features)."""
    w = norm(tok)
    gaz = _GAZ[0]
    cands = strip_clitics(w)
    flags = set()
    for k, c in enumerate(cands):
        f = gaz.get(c)
        if f:
            flags.update((fl if k == 0 else fl.lower()) for fl in f)
    fl = "".join(sorted(flags))
    stem = cands[-1] if len(cands) > 1 else w
    feats = [
        "w=" + w,
        "s=" + stem,
        "p2=" + w[:2],
        "p3=" + w[:3],
        "x2=" + w[-2:],
        "x3=" + w[-3:],
        "sh=" + _shape(tok),
        "len=" + str(min(len(w), 8)),
        "al=" + str(int(w.startswith(("ال", "وال", "بال", "لل")))),
    ]
    feats.extend("g=" + f for f in flags)
    clu = _CLU[0]
    c = None
    for cand in cands:
        c = clu.get(cand)
        if c:
            break
    if c:
        feats.append("c1=" + c[0])
        feats.append("c2=" + c[1])
        cl = c[0]
    else:
        cl = "-"
    return tuple(feats), w, fl + "|" + cl


_GAZ: list[dict[str, tuple[str, ...]]] = [{}]
_CLU: list[dict[str, tuple[str, str]]] = [{}]


def load_clusters() -> dict[str, tuple[str, str]]:
    """Normalised word -> (coarse, fine) distributional cluster ids."""
    path = DATA / "word_clusters.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {w: tuple(c.split(",")) for w, c in json.load(fh).items()}


def load_gazetteer_words() -> dict[str, tuple[str, ...]]:
    """Normalised word -> gazetteer flags (L/P/O: ANERGazet, C: country,
    K: capital or city, Lt/Pt/Ot: ANETAC; a trailing 1: a one-word name)."""
    path = DATA / "gazetteer_words.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {w: tuple(f.split(",")) for w, f in json.load(fh).items()}


def token_features(toks: list[str]) -> list[list[str]]:
    """CRF features of every token of a sentence (strings, weight 1)."""
    info = [_word_feats(t, 0) for t in toks]
    n = len(toks)
    out: list[list[str]] = []
    for i in range(n):
        own, w, fl = info[i]
        f = list(own)
        f.append("b")
        for d in (-2, -1, 1, 2):
            j = i + d
            if 0 <= j < n:
                _, wj, flj = info[j]
                f.append(f"w{d}={wj}")
                gj, _, cj = flj.partition("|")
                if gj:
                    f.append(f"g{d}={gj}")
                f.append(f"c{d}={cj}")
                if d in (-1, 1):
                    f.append(f"s{d}={_word_feats(toks[j], 0)[0][1][2:]}")
            else:
                f.append(f"w{d}=<>")
        if i > 0:
            f.append(f"w-1w={info[i-1][1]}|{w}")
        if i + 1 < n:
            f.append(f"ww+1={w}|{info[i+1][1]}")
        f.append("gf=" + fl.partition("|")[0])
        out.append(f)
    return out


def bio_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """``(type, start, end)`` token spans of BIO tags (end exclusive); an I-
    without a matching B- starts a span (conlleval convention)."""
    spans = []
    cur = None
    for i, t in enumerate(tags + ["O"]):
        if t == "O" or t.startswith("B-") or (t.startswith("I-") and (cur is None or cur[0] != t[2:])):
            if cur is not None:
                spans.append((cur[0], cur[1], i))
                cur = None
            if t != "O":
                cur = (t[2:], i)
    return spans


class Tagger:
    """Viterbi decoding of a linear-chain CRF exported as JSON.

    State weights are one dense float32 matrix (attribute row x label), so the
    emission scores of a sentence are one gather and one ``reduceat``; the
    Viterbi recursion costs three small numpy operations per token."""

    def __init__(self, model: dict) -> None:
        import numpy as np

        self.labels: list[str] = model["labels"]
        L = len(self.labels)
        self.T = np.asarray(model["transitions"], dtype=np.float32)  # from-label x to-label
        self._cols = np.arange(L)
        attrs = list(model["state"])
        self.attr_index: dict[str, int] = {a: i for i, a in enumerate(attrs)}
        S = np.zeros((len(attrs) + 1, L), dtype=np.float32)  # last row: unknown attribute
        state = model["state"]
        rows = [i for i, a in enumerate(attrs) for _ in state[a]]
        kv = np.array([x for a in attrs for x in state[a]], dtype=np.float64).reshape(-1, 2)
        S[np.asarray(rows, dtype=np.intp), kv[:, 0].astype(np.intp)] = kv[:, 1]
        self.S = S
        self.version: str = model.get("version", NER_VERSION)
        self._cache: dict[str, np.ndarray] = {}
        # Added to the "O" emission at decoding (negative: more entities).
        # Chosen by cross-validation in build.ner_cv (the CRF's precision is
        # well above its recall); stored in the model file.
        self.o_bias = float(model.get("o_bias", 0.0))
        self._o = self.labels.index("O") if "O" in self.labels else None
        # contributions of the sentence-boundary pads "w-2=<>" ... "w2=<>"
        self._pad = np.stack([np.zeros(L, dtype=np.float32)] + [self._vec([f"w{d}=<>"]) for d in (-2, -1, 1, 2)])

    @classmethod
    def load(cls, path: Path | None = None) -> "Tagger":
        with gzip.open(path or DATA / "ner_crf.json.gz", "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def _vec(self, feats) -> "np.ndarray":
        get = self.attr_index.get
        ids = [i for i in (get(a) for a in feats) if i is not None]
        return self.S[ids].sum(0) if ids else self.S[-1]

    def _word_vectors(self, tok: str):
        """(5, L) contributions of one word: as the tagged token itself, and
        as its neighbour at offsets -2, -1, +1, +2 (cached per word)."""
        v = self._cache.get(tok)
        if v is None:
            import numpy as np

            own, w, fl = _word_feats(tok, 0)
            g, _, c = fl.partition("|")
            rows = [self._vec(list(own) + ["b", "gf=" + g])]
            for d in (-2, -1, 1, 2):
                f = [f"w{d}={w}", f"c{d}={c}"]
                if g:
                    f.append(f"g{d}={g}")
                if d in (-1, 1):
                    f.append(f"s{d}={own[1][2:]}")
                rows.append(self._vec(f))
            v = np.stack(rows)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[tok] = v
        return v

    def emissions(self, toks: list[str]):
        """Emission scores (n, L): equal to summing the weights of
        ``token_features``, computed from cached per-word vectors."""
        import numpy as np

        n = len(toks)
        V = np.stack([self._word_vectors(t) for t in toks])  # (n, 5, L)
        E = V[:, 0].copy()
        pad = self._pad
        # neighbour at offset d of token i is token i+d; rows 1..4 = d -2, -1, +1, +2
        for row, d in ((1, -2), (2, -1), (3, 1), (4, 2)):
            if d < 0:
                k = min(-d, n)
                E[k:] += V[: n - k, row]
                E[:k] += pad[row]
            else:
                k = min(d, n)
                E[: n - k] += V[k:, row]
                E[n - k:] += pad[row]
        words = [_word_feats(t, 0)[1] for t in toks]
        get = self.attr_index.get
        for i in range(n):
            if i > 0:
                j = get(f"w-1w={words[i - 1]}|{words[i]}")
                if j is not None:
                    E[i] += self.S[j]
            if i + 1 < n:
                j = get(f"ww+1={words[i]}|{words[i + 1]}")
                if j is not None:
                    E[i] += self.S[j]
        return E

    def tag(self, toks: list[str]) -> list[str]:
        import numpy as np

        if not toks:
            return []
        emis = self.emissions(toks)
        if self.o_bias and self._o is not None:
            emis[:, self._o] += self.o_bias
        T = self.T
        score = emis[0]
        back = np.empty((len(toks), len(self.labels)), dtype=np.intp)
        for t in range(1, len(toks)):
            cand = score[:, None] + T
            back[t] = bp = cand.argmax(0)
            score = cand[bp, self._cols] + emis[t]
        j = int(score.argmax())
        path = [j]
        for t in range(len(toks) - 1, 0, -1):
            j = int(back[t, j])
            path.append(j)
        path.reverse()
        labels = self.labels
        return [labels[k] for k in path]


_tagger: Tagger | None = None
_lock = threading.Lock()


def get_tagger() -> Tagger:
    global _tagger
    if _tagger is None:
        with _lock:
            if _tagger is None:
                if not _GAZ[0]:
                    _GAZ[0] = load_gazetteer_words()
                if not _CLU[0] and (DATA / "word_clusters.json.gz").exists():
                    _CLU[0] = load_clusters()
                _tagger = Tagger.load()
    return _tagger


def tag_text(text: str) -> list[tuple[str, int, int, str]]:
    """``(type, char_start, char_end, surface)`` of entities found in ``text``
    (tagged sentence by sentence, then made consistent over the whole text
    with :func:`propagate`)."""
    toks = tokens(text)
    tagger = get_tagger()
    out = []
    # Sentences of at most ~60 tokens keep Viterbi cost linear and features local.
    start = 0
    words = [t[0] for t in toks]
    bounds = []
    for i, w in enumerate(words):
        if w in (".", "!", "?", "؟", "\n") or i - start >= 60:
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(words):
        bounds.append((start, len(words)))
    sents = [words[a:b] for a, b in bounds]
    tags = propagate(sents, [tagger.tag(sent) for sent in sents])
    for (a, _), tg in zip(bounds, tags):
        for typ, s, e in bio_spans(tg):
            cs, ce = toks[a + s][1], toks[a + e - 1][2]
            out.append((typ, cs, ce, text[cs:ce]))
    return out


def propagate(sents: list[list[str]], tags: list[list[str]], max_len: int = 4) -> list[list[str]]:
    """Document-level consistency: a name the tagger found once in a document
    is tagged wherever else it occurs untagged in that document (with the
    majority type of its tagged occurrences). ``sents`` are the token lists of
    one document, ``tags`` their BIO tags; returns new tags."""
    from collections import Counter

    memory: dict[tuple[str, ...], Counter] = {}
    for toks, tg in zip(sents, tags):
        for typ, s, e in bio_spans(list(tg)):
            if e - s > max_len:
                continue
            key = tuple(norm(t) for t in toks[s:e])
            if len("".join(key)) < 3:
                continue
            memory.setdefault(key, Counter())[typ] += 1
            # the same name without its proclitic ("وبوش" -> "بوش")
            cands = strip_clitics(key[0])
            if len(cands) > 1:
                memory.setdefault((cands[-1],) + key[1:], Counter())[typ] += 1
    if not memory:
        return [list(t) for t in tags]
    firsts = {k[0] for k in memory}
    out = []
    for toks, tg in zip(sents, tags):
        tg = list(tg)
        ntoks = [norm(t) for t in toks]
        i = 0
        while i < len(toks):
            if tg[i] != "O":
                i += 1
                continue
            hit = None
            for cand in strip_clitics(ntoks[i]):
                if cand not in firsts:
                    continue
                for L in range(min(max_len, len(toks) - i), 0, -1):
                    key = (cand,) + tuple(ntoks[i + 1:i + L])
                    if key in memory and all(t == "O" for t in tg[i:i + L]):
                        hit = (L, memory[key].most_common(1)[0][0])
                        break
                if hit:
                    break
            if hit and (i + hit[0] >= len(tg) or not tg[i + hit[0]].startswith("I-")):
                L, typ = hit
                tg[i] = "B-" + typ
                for k in range(i + 1, i + L):
                    tg[k] = "I-" + typ
                i += L
            else:
                i += 1
        out.append(tg)
    return out

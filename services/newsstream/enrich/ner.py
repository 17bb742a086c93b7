"""Named-entity tagger (PERS, LOC, ORG, MISC): a linear-chain CRF trained with
CRFsuite and applied with numpy (batched Viterbi over weights exported to
JSON; no CRFsuite at run time).

Model files in ``data/`` (built by ``python tools/build_models.py``,
see ``data/ner_crf.md``):

* ``ner_crf.json.gz``: labels, transition matrix, state weights per feature string;
* ``gazetteer_words.json.gz``: word-level gazetteer flags;
* ``word_clusters.json.gz``: distributional word clusters at four granularities;
* ``encoder_clusters.json.gz``: words clustered by their mean state in the
  sentence encoder (what the pretrained model knows of a word, read by a
  look-up: no encoder at run time);
* ``name_chars.json.gz``: a character n-gram classifier (person / location /
  organisation name / ordinary word) that gives unknown words a name-likeness.

Every feature of a token is either a feature of one word (its own, or a
neighbour's at offset -2..+2) or of a pair of adjacent words. The tagger caches
the summed weights of the one-word features per word, so tagging a sentence is
a gather, a few shifted additions, a dictionary look-up per word pair and a
Viterbi pass shared by all sentences of a text.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import threading
from pathlib import Path

import numpy as np

from newsstream.enrich.ner_context import CONTEXT_LAYER, word_states
from newsstream.enrich.tokens import norm, strip_clitics, tokens

__all__ = ["token_features", "context_features", "ContextProbe", "Tagger", "get_tagger", "get_context_tagger", "bio_spans",
           "tag_text", "tag_sentences", "propagate", "NER_VERSION", "NER_CONTEXT_VERSION"]

DATA = Path(__file__).parent / "data"
NER_VERSION = "ner-crf-6"
# ner-crf-3's features (no encoder clusters: the states say more) with a context probe over the encoder's layer-6 word states
NER_CONTEXT_VERSION = "ner-crf-ctx-1"

_PUNCT_CLASS = {".": "END", "!": "END", "?": "END", "؟": "END", ",": "COM", "،": "COM", ":": "COL", '"': "Q",
                "«": "Q", "»": "Q", "(": "PAR", ")": "PAR", "-": "DASH", "/": "SL"}
OFFSETS = (-2, -1, 1, 2)
CLUSTER_KS = (32, 128, 512, 2048)  # granularities in word_clusters.json.gz; neighbours use the 128 one
ENCODER_CLUSTER_KS = (64, 256, 1024)  # granularities in encoder_clusters.json.gz; neighbours use the 256 one


def _lex(words: str) -> frozenset[str]:
    return frozenset(norm(w) for w in words.split())


# Trigger words (matched on the word and its clitic-stripped forms): titles and
# roles that precede a person's name, verbs of saying, heads of organisation
# names, heads of place names. Features only: the CRF learns their weight.
LEX_TITLE = _lex("""الرئيس رئيس السيد السيدة الشيخ الملك الأمير الأمين وزير الوزير الوزيرة وزيرة نائب النائب الدكتور د المستشار
الزعيم القائد الجنرال العقيد اللواء العميد المشير الفريق الرائد الكابتن المدرب اللاعب لاعب مدرب الفنان الفنانة الممثل الممثلة المخرج
الكاتب الشاعر المطرب المطربة المغني المغنية الأستاذ البروفيسور الحاج الإمام البابا الكاردينال المطران القاضي المحامي المتحدث الناطق
السفير السناتور المرشح الصحفي الروائي المفكر العالم الباحث المهندس رئيسة المستشارة الزعيمة الملكة الأميرة ولي المبعوث المندوب المنسق
المدير مدير حاكم الحاكم محافظ المحافظ عمدة العمدة نجم النجم بطل البطل زميله زميل شقيق شقيقة ابن بنت أبو أم الأب عم خال زوج زوجة زوجته""")
LEX_SAY = _lex("""قال أعلن أكد صرح أضاف أوضح أشار ذكر كشف قالت أعلنت أكدت صرحت أضافت أوضحت أشارت ذكرت كشفت يقول تقول دعا دعت
طالب طالبت""")
LEX_ORG_HEAD = _lex("""حركة حزب وزارة جامعة شركة منظمة اتحاد مجلس وكالة بنك مصرف جمعية هيئة لجنة مؤسسة صحيفة جريدة مجلة قناة
إذاعة تلفزيون نادي فريق منتخب جبهة تنظيم جماعة مركز معهد أكاديمية محكمة برلمان البرلمان الجيش جيش قوات مكتب إدارة ادارة صندوق مجموعة
كتلة تحالف رابطة نقابة مصلحة سلطة دائرة مديرية مستشفى مدرسة كلية منتدى مهرجان بورصة سوق دار مطبعة مكتبة أوركسترا فرقة""")
LEX_LOC_HEAD = _lex("""مدينة بلدة قرية عاصمة ولاية إقليم محافظة منطقة جزيرة جزر نهر بحر خليج جبل جبال بحيرة مقاطعة دولة جمهورية مملكة
إمارة سلطنة شمال جنوب شرق غرب وسط شمالي جنوبي شرقي غربي مخيم حي شارع ميناء مطار""")


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


def _lex_class(cands: tuple[str, ...]) -> str:
    out = set()
    for c in cands:
        if c in LEX_TITLE:
            out.add("T")
        if c in LEX_SAY:
            out.add("S")
        if c in LEX_ORG_HEAD:
            out.add("OH")
        if c in LEX_LOC_HEAD:
            out.add("LH")
    return "".join(sorted(out))


class NameChars:
    """Character 2-4-gram logistic regression: is a word a person (P), location
    (L) or organisation (O) name, or an ordinary word (W)? Trained on the
    gazetteers' names against frequent words of unlabelled news (tools/build_models.py)."""

    def __init__(self, model: dict) -> None:
        self.classes: list[str] = model["classes"]
        self.index: dict[str, int] = {g: i for i, g in enumerate(model["ngrams"])}
        self.coef = np.asarray(model["coef"], dtype=np.float64).reshape(len(self.index), len(self.classes))
        self.intercept = np.asarray(model["intercept"], dtype=np.float64)

    def feature(self, word: str) -> str:
        """'' for an ordinary word, else class + confidence bucket ('P3': > 0.8)."""
        s = "<" + word + ">"
        counts: dict[int, int] = {}
        get = self.index.get
        for n in (2, 3, 4):
            for i in range(len(s) - n + 1):
                j = get(s[i:i + n])
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
        z = self.intercept.copy()
        if counts:
            ids = list(counts)
            c = np.fromiter(counts.values(), dtype=np.float64, count=len(ids))
            z += (c / math.sqrt(float(c @ c))) @ self.coef[ids]
        j = int(z.argmax())
        cls = self.classes[j]
        if cls == "W":
            return ""
        p = 1.0 / float(np.exp(z - z[j]).sum())
        return cls + ("3" if p > 0.8 else "2" if p > 0.6 else "1")


class ContextProbe:
    """A linear read-out of the encoder's word states (``ner_context``): the
    probability of each BIO label, which the CRF weighs as the soft features
    ``cx-1=``, ``cx+0=``, ``cx+1=`` (the token's and its neighbours'). Trained in
    tools/build_models.py on ANERcorp (logistic regression on standardised
    layer-6 states)."""

    def __init__(self, model: dict) -> None:
        self.layer = int(model["layer"])
        if self.layer != CONTEXT_LAYER:  # the worker makes the states of that layer with the item's vector
            raise ValueError(f"the context probe reads layer {self.layer}; the pipeline gives layer {CONTEXT_LAYER}")
        self.labels: list[str] = model["labels"]
        self.mean = np.asarray(model["mean"], dtype=np.float32)
        self.scale = np.asarray(model["scale"], dtype=np.float32)
        self.coef = np.asarray(model["coef"], dtype=np.float32)  # (dims, labels)
        self.intercept = np.asarray(model["intercept"], dtype=np.float32)

    def probabilities(self, states: np.ndarray) -> np.ndarray:
        """(words, labels) probabilities; a zero row of ``states`` (a word
        without a state) gets zero probabilities: no context, no evidence."""
        z = ((states - self.mean) / self.scale) @ self.coef + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[~states.any(axis=1)] = 0.0
        return p


CONTEXT_OFFSETS = (-1, 0, 1)


def context_features(probs: np.ndarray, labels: list[str]) -> list[dict[str, float]]:
    """The soft context features of every token of one sentence (``probs``: the
    probe's, over ``labels``), for training: ``Tagger._context_emissions`` adds
    up the same at run time."""
    n = len(probs)
    out: list[dict[str, float]] = [{} for _ in range(n)]
    for t in range(n):
        for d in CONTEXT_OFFSETS:
            j = t + d
            if 0 <= j < n and probs[j].any():
                out[t].update((f"cx{d:+d}={lab}", float(p)) for lab, p in zip(labels, probs[j]))
    return out


_GAZ: list[dict[str, tuple[str, ...]]] = [{}]
_CLU: list[dict[str, tuple[str, ...]]] = [{}]
_ENC: list[dict[str, tuple[str, ...]]] = [{}]
_NAMES: list[NameChars | None] = [None]


def _load_cluster_ids(name: str) -> dict[str, tuple[str, ...]]:
    """Normalised word -> its cluster ids from ``data/name``: one tuple per distinct
    combination of ids, shared by its words (18 MB instead of 30 for the encoder clusters)."""
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    shared: dict[str, tuple[str, ...]] = {}
    return {w: shared.setdefault(c, tuple(c.split(","))) for w, c in raw.items()}


def load_clusters() -> dict[str, tuple[str, ...]]:
    """Normalised word -> cluster ids at the granularities CLUSTER_KS."""
    return _load_cluster_ids("word_clusters.json.gz")


_ENCODER_FEATURES = frozenset({"e", "e-1", "e1", *(f"e{k}" for k in ENCODER_CLUSTER_KS)})


def encoder_cluster_feature(feature: str) -> bool:
    """Whether a feature string is one of the encoder-cluster features (the tagger in context has none)."""
    return feature.split("=", 1)[0] in _ENCODER_FEATURES


def load_encoder_clusters() -> dict[str, tuple[str, ...]]:
    """Normalised word -> cluster ids of its mean encoder state at the granularities ENCODER_CLUSTER_KS."""
    return _load_cluster_ids("encoder_clusters.json.gz")


def load_gazetteer_words() -> dict[str, tuple[str, ...]]:
    """Normalised word -> gazetteer flags (L/P/O: ANERGazet, C: country,
    K: capital or city, Lt/Pt/Ot: ANETAC; a trailing 1: a one-word name)."""
    with gzip.open(DATA / "gazetteer_words.json.gz", "rt", encoding="utf-8") as fh:
        return {w: tuple(f.split(",")) for w, f in json.load(fh).items()}


def load_name_chars() -> NameChars:
    with gzip.open(DATA / "name_chars.json.gz", "rt", encoding="utf-8") as fh:
        return NameChars(json.load(fh))


def load_lexicons() -> None:
    """Load the feature lexicons (once; training and run time alike)."""
    if not _GAZ[0]:
        _GAZ[0] = load_gazetteer_words()
    if not _CLU[0]:
        _CLU[0] = load_clusters()
    if not _ENC[0]:
        _ENC[0] = load_encoder_clusters()
    if _NAMES[0] is None:
        _NAMES[0] = load_name_chars()


def _cluster_features(lexicon: dict[str, tuple[str, ...]], cands: tuple[str, ...], ks: tuple[int, ...],
                      prefix: str) -> tuple[list[str], str]:
    """A word's cluster ids in one lexicon (of its first form found there) as
    features, and its second id, which the neighbours see ("-": not found)."""
    ids = next((lexicon[c] for c in cands if c in lexicon), None)
    if not ids:
        return [f"{prefix}=none"], "-"
    return [f"{prefix}{k}={c}" for k, c in zip(ks, ids)], ids[1]


@functools.lru_cache(maxsize=200_000)
def word_features(tok: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], str, str]:
    """Features that depend on one word only: ``(own, neighbour, w, cluster)``
    where ``own`` are its features as the tagged token, ``neighbour[k]`` its
    features as the neighbour at offset ``OFFSETS[k]`` of the tagged token,
    ``w`` its normalised form and ``cluster`` its 128-cluster id (for the
    pair features)."""
    w = norm(tok)
    gaz = _GAZ[0]
    cands = strip_clitics(w)
    flags = set()
    for k, c in enumerate(cands):
        f = gaz.get(c)
        if f:
            flags.update((fl if k == 0 else fl.lower()) for fl in f)
    g = "".join(sorted(flags))
    stem = cands[-1] if len(cands) > 1 else w
    own = ["w=" + w, "s=" + stem, "p2=" + w[:2], "p3=" + w[:3], "x2=" + w[-2:], "x3=" + w[-3:], "sh=" + _shape(tok),
           "len=" + str(min(len(w), 8)), "al=" + str(int(w.startswith(("ال", "وال", "بال", "لل")))), "b", "gf=" + g]
    own.extend("g=" + f for f in flags)
    clusters, c128 = _cluster_features(_CLU[0], cands, CLUSTER_KS, "k")
    own.extend(clusters)
    # What the encoder knows of the word (its mean state over unlabelled news),
    # for every word and without the encoder: CV F1 +0.009 sentence by
    # sentence, +0.005 on articles (data/ner_crf.md).
    clusters, e256 = _cluster_features(_ENC[0], cands, ENCODER_CLUSTER_KS, "e")
    own.extend(clusters)
    lx = _lex_class(cands)
    if lx:
        own.append("lx=" + lx)
    names = _NAMES[0]
    nl = ""
    if names is not None:
        nw = names.feature(w)
        nl = nw if stem == w else names.feature(stem)
        if nw:
            own.append("nlw=" + nw)
        if nl:
            own.append("nls=" + nl)
    nb = []
    for d in OFFSETS:
        f = [f"w{d}={w}", f"c{d}={c128}"]
        if g:
            f.append(f"g{d}={g}")
        if d in (-1, 1):
            f.append(f"s{d}={stem}")
            f.append(f"e{d}={e256}")
        if lx:
            f.append(f"lx{d}={lx}")
        if nl:
            f.append(f"nl{d}={nl}")
        nb.append(tuple(f))
    return tuple(own), tuple(nb), w, c128


def _pair_features(a: tuple, b: tuple) -> tuple[tuple[str, str], tuple[str, str]]:
    """Features of two adjacent words ``a`` ``b``: (those of the token ``b``,
    those of the token ``a``)."""
    return ((f"w-1w={a[2]}|{b[2]}", f"cc-1={a[3]}|{b[3]}"), (f"ww+1={a[2]}|{b[2]}", f"cc+1={a[3]}|{b[3]}"))


def _pad_features(d: int) -> str:
    return f"w{d}=<>"


STACK_WIDTH = 7  # at most this many stacking features per token


@functools.lru_cache(maxsize=200_000)
def _forms(tok: str) -> tuple[str, ...]:
    """The distinct forms of a token without its proclitics, itself first."""
    return tuple(dict.fromkeys(strip_clitics(word_features(tok)[2])))


def _doc_occurrences(sents: list[list[str]], tags: list[list[str]]):
    """How the first stage tagged each word of a document, proclitics aside:
    ``(keys, occ, totals)`` where every occurrence counts under each of its
    forms (``strip_clitics``: «وبوش» under «وبوش», «بوش», ...), ``occ[form]``
    counts entity types (or "O") in order of first appearance, and
    ``keys[s][i]`` is the first form of token ``i`` of sentence ``s`` that
    also occurs elsewhere (else the word)."""
    forms = [[_forms(t) for t in toks] for toks in sents]
    occ: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for fs, tg in zip(forms, tags):
        for cands, t in zip(fs, tg):
            typ = t[2:] if t != "O" else "O"
            for c in cands:
                totals[c] = totals.get(c, 0) + 1
                cnt = occ.get(c)
                if cnt is None:
                    occ[c] = {typ: 1}
                else:
                    cnt[typ] = cnt.get(typ, 0) + 1
    keys = [[cands[0] if len(cands) == 1 or totals[cands[0]] > 1 else next((c for c in cands if totals[c] > 1), cands[0])
             for cands in fs] for fs in forms]
    return keys, occ, totals


def stack_features(sents: list[list[str]], tags: list[list[str]]) -> list[list[list[str]]]:
    """Second-stage features of every token of one document, from the
    first-stage tags: its own tag and its neighbours', its tag with its word,
    and how the other occurrences of the same word (without proclitics) in
    the document were tagged (:func:`_doc_occurrences`): the most frequent
    entity type among them, whether all of them have it, or that all are O."""
    keys, occ, totals = _doc_occurrences(sents, tags)
    out = []
    for toks, ks, tg in zip(sents, keys, tags):
        n = len(toks)
        rows = []
        for i in range(n):
            t0 = tg[i]
            f = ["p0=" + t0, "p-1=" + (tg[i - 1] if i else "<>"), "p+1=" + (tg[i + 1] if i + 1 < n else "<>"),
                 f"p0w={t0}|{word_features(toks[i])[2]}"]
            c = occ[ks[i]]  # counts of the word's tags in the document, this token included
            own = t0[2:] if t0 != "O" else "O"
            tot = totals[ks[i]] - 1
            if tot > 0:
                ents = {k: v - (k == own) for k, v in c.items() if k != "O" and v - (k == own) > 0}
                if ents:
                    typ, v = max(ents.items(), key=lambda x: x[1])
                    f += ["dt=" + typ, f"dt={typ}|{'all' if v == tot else 'some'}", f"dtp0={typ}|{t0}"]
                else:
                    f.append("dt=O")
            rows.append(f)
        out.append(rows)
    return out


def token_features(toks: list[str]) -> list[list[str]]:
    """CRF features of every token of a sentence (strings, weight 1)."""
    info = [word_features(t) for t in toks]
    n = len(toks)
    out: list[list[str]] = []
    for i in range(n):
        f = list(info[i][0])
        for k, d in enumerate(OFFSETS):
            j = i + d
            f.extend(info[j][1][k] if 0 <= j < n else (_pad_features(d),))
        f.append(_pair_features(info[i - 1], info[i])[0][1] if i > 0 else f"cc-1=<>|{info[i][3]}")
        if i > 0:
            f.append(_pair_features(info[i - 1], info[i])[0][0])
        if i + 1 < n:
            f.extend(_pair_features(info[i], info[i + 1])[1])
        else:
            f.append(f"cc+1={info[i][3]}|<>")
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
    MAX_WORDS = 100_000  # words whose vectors are cached (7 x L floats each)

    """Viterbi decoding of a linear-chain CRF exported as JSON.

    State weights are one dense float32 matrix (attribute row x label). Per
    word, the summed weights of its one-word features are cached as 7 rows
    (as the token itself, as the neighbour at -2, -1, +1, +2, and the
    sentence-boundary pair features); per adjacent word pair, the rows of the
    pair features. The emissions of all sentences of a text are computed in
    one pass over the concatenated tokens, and Viterbi runs once over the
    sentences stacked by length (one numpy step per token *position*)."""

    def __init__(self, model: dict) -> None:
        self.labels: list[str] = model["labels"]
        L = len(self.labels)
        self.T = np.asarray(model["transitions"], dtype=np.float32)  # from-label x to-label
        attrs = list(model["state"])
        self.attr_index: dict[str, int] = {a: i for i, a in enumerate(attrs)}
        S = np.zeros((len(attrs) + 1, L), dtype=np.float32)  # last row: unknown attribute
        state = model["state"]
        rows = [i for i, a in enumerate(attrs) for _ in state[a]]
        kv = np.array([x for a in attrs for x in state[a]], dtype=np.float64).reshape(-1, 2)
        S[np.asarray(rows, dtype=np.intp), kv[:, 0].astype(np.intp)] = kv[:, 1]
        self.S = S
        self._unk = len(attrs)
        self.version: str = model.get("version", NER_VERSION)
        self.stage2: Tagger | None = Tagger(model["stage2"]) if model.get("stage2") else None
        self.context: ContextProbe | None = ContextProbe(model["context"]) if model.get("context") else None
        self._cx: np.ndarray | None = None  # weights of the context features, (offsets, probe labels, labels)
        self._stack: tuple | None = None  # tables of _stack_emissions (built on first use)
        self._word_ids: dict[str, int] = {}
        self._wv = np.zeros((1024, 5, L), dtype=np.float32)
        self._pairs: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._label_arr = np.array(self.labels, dtype=object)
        # Added to the "O" emission at decoding (negative: more entities).
        # Chosen by cross-validation in tools/build_models.py ner-cv; stored in the model file.
        self.o_bias = float(model.get("o_bias", 0.0))
        self._o = self.labels.index("O") if "O" in self.labels else None
        # row 0 of the word vectors: a sentence-boundary pad, seen as a neighbour
        self._wv[0, 1:] = np.stack([self._vec([_pad_features(d)]) for d in OFFSETS])

    @classmethod
    def load(cls, path: Path | None = None) -> "Tagger":
        with gzip.open(path or DATA / "ner_crf.json.gz", "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def _vec(self, feats) -> np.ndarray:
        get = self.attr_index.get
        ids = [i for i in (get(a) for a in feats) if i is not None]
        return self.S[ids].sum(0) if ids else self.S[-1].copy()

    def _word_row(self, tok: str) -> int:
        """Row of ``tok`` in ``self._wv``: (5, L) summed weights of its one-word
        features as the token itself and as the neighbour at -2, -1, +1, +2."""
        own, nb, _, _ = word_features(tok)
        v = np.stack([self._vec(own)] + [self._vec(f) for f in nb])
        n = len(self._word_ids) + 1  # row 0: the sentence-boundary pad
        if n >= len(self._wv):
            self._wv = np.concatenate([self._wv, np.zeros_like(self._wv)])
        self._wv[n] = v
        self._word_ids[tok] = n
        return n

    def _pair_rows(self, a: str | None, b: str | None) -> tuple[int, int, int, int]:
        """Attribute rows of the pair features of adjacent ``a`` ``b`` (None: a
        sentence boundary): two for the token ``b``, two for the token ``a``."""
        get = self.attr_index.get
        unk = self._unk
        if a is None:
            r = (unk, get(f"cc-1=<>|{word_features(b)[3]}", unk), unk, unk) if b is not None else (unk,) * 4
        elif b is None:
            r = (unk, unk, unk, get(f"cc+1={word_features(a)[3]}|<>", unk))
        else:
            (f1, f2), (f3, f4) = _pair_features(word_features(a), word_features(b))
            r = (get(f1, unk), get(f2, unk), get(f3, unk), get(f4, unk))
        self._pairs[(a, b)] = r
        return r

    def emissions(self, toks: list[str]) -> np.ndarray:
        """Emission scores (n, L) of one sentence: equal to summing the weights
        of ``token_features`` (plus the O-bias)."""
        E, _ = self._emissions_flat([toks])
        return E

    def _emissions_flat(self, sents: list[list[str]], extra: list[list[list[str]]] | None = None,
                        extra_emissions: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        """Emissions (N, L) of the tokens of all sentences, concatenated, and
        the sentences' lengths. Sentences are laid out with two boundary pads
        before each and after the last, so every neighbour feature is a shifted
        slice and every pair feature a row per adjacent pair of slots.
        ``extra``: more features per token (the stacking features), or
        ``extra_emissions``: their summed weights (N, L)."""
        ids = self._word_ids
        n_tok = sum(len(t) for t in sents)
        if len(ids) + n_tok >= self.MAX_WORDS or len(self._pairs) + n_tok >= 2 * self.MAX_WORDS:
            ids.clear()  # a long-running worker: start the caches afresh
            self._pairs.clear()
        slots: list[str | None] = [None, None]
        for toks in sents:
            slots += toks
            slots += (None, None)
        rows = [0 if t is None else ids.get(t) for t in slots]
        if None in rows:
            rows = [0 if t is None else ids[t] if t in ids else self._word_row(t) for t in slots]
        pairs = self._pairs
        pr = [pairs.get((x, y)) or self._pair_rows(x, y) for x, y in zip(slots, slots[1:])]
        V = self._wv[rows]  # (M, 5, L)
        P = self.S[pr]  # (M - 1, 4, L)
        E = V[2:-2, 0] + V[:-4, 1] + V[1:-3, 2] + V[3:-1, 3] + V[4:, 4]  # slots 2 .. M-3
        E += P[1:-2, 0] + P[1:-2, 1] + P[2:-1, 2] + P[2:-1, 3]
        lens = [len(t) for t in sents]
        if len(sents) > 1:
            real = np.array([r for r, t in enumerate(slots[2:-2]) if t is not None], dtype=np.intp)
            E = E[real]
        if extra is not None:
            get = self.attr_index.get
            unk = self._unk
            pad = [unk] * STACK_WIDTH
            ids = [([get(a, unk) for a in f] + pad)[:STACK_WIDTH] for rows_ in extra for f in rows_]
            E += self.S[ids].sum(1)
        if extra_emissions is not None:
            E += extra_emissions
        if self.o_bias and self._o is not None:
            E[:, self._o] += self.o_bias
        return E, lens

    def tag(self, toks: list[str]) -> list[str]:
        return self.tag_batch([toks])[0]

    def _viterbi(self, E: np.ndarray) -> list[str]:
        T = self.T
        n = len(E)
        score = E[0].copy()
        back = np.empty((n, T.shape[0]), dtype=np.intp)
        cand = np.empty_like(T)
        for t in range(1, n):
            np.add(score[:, None], T, out=cand)
            cand.argmax(0, out=back[t])
            cand.max(0, out=score)
            score += E[t]
        j = int(score.argmax())
        path = [j]
        for t in range(n - 1, 0, -1):
            j = int(back[t, j])
            path.append(j)
        path.reverse()
        return self._label_arr[path].tolist()

    def tag_document(self, sents: list[list[str]], states: list[np.ndarray] | None = None) -> list[list[str]]:
        """Tags of the sentences of one document: the first stage, then (when
        the model has one and the document more than one sentence) the second
        stage, which also sees the first stage's tags of the token, its
        neighbours and the word's other occurrences in the document.
        ``states``: per sentence, the encoder's word states (``ner_context``;
        zero rows for words without one), read by the model's context probe."""
        probs = None
        if states is not None and self.context is not None:
            kept = [st for toks, st in zip(sents, states) if toks]
            p = self.context.probabilities(np.concatenate(kept)) if kept else None
            probs = p if p is not None and p.any() else None
        lens = [len(t) for t in sents if t]
        labels = self.context.labels if self.context is not None else []
        tags = self.tag_batch(sents, extra_emissions=None if probs is None else self._context_emissions(probs, lens, labels))
        if self.stage2 is None or len(lens) < 2:
            return tags  # one sentence (a ticker line): no other sentence to learn from
        extra = self.stage2._stack_emissions(sents, tags)
        if probs is not None:
            extra += self.stage2._context_emissions(probs, lens, labels)
        return self.stage2.tag_batch(sents, extra_emissions=extra)

    def _context_emissions(self, probs: np.ndarray, lens: list[int], labels: list[str]) -> np.ndarray:
        """Summed weights (N, L) of ``context_features`` of the concatenated
        tokens of sentences of ``lens`` tokens: each token's probabilities and
        its neighbours' within the sentence, times the features' weights."""
        if self._cx is None:
            get = self.attr_index.get
            self._cx = np.stack([np.stack([self.S[get(f"cx{d:+d}={lab}", self._unk)] for lab in labels])
                                 for d in CONTEXT_OFFSETS])
        starts = np.cumsum([0] + lens[:-1])
        prev = np.zeros_like(probs)
        prev[1:] = probs[:-1]
        prev[starts] = 0.0  # no neighbour before a sentence's first token
        nxt = np.zeros_like(probs)
        nxt[:-1] = probs[1:]
        nxt[starts[1:] - 1] = 0.0
        return prev @ self._cx[0] + probs @ self._cx[1] + nxt @ self._cx[2]

    def _stack_emissions(self, sents: list[list[str]], tags: list[list[str]]) -> np.ndarray:
        """Summed weights (N, L) of ``stack_features`` of the non-empty
        sentences' tokens, concatenated: the same features, computed from
        label ids and small cached tables instead of strings."""
        if self._stack is None:
            vec = lambda f: self.S[self.attr_index.get(f, self._unk)]  # noqa: E731
            labs = self.labels
            self._stack = (
                {l: i for i, l in enumerate(labs)},
                np.stack([vec("p0=" + l) for l in labs]),
                np.stack([vec("p-1=" + l) for l in labs] + [vec("p-1=<>")]),  # last row: sentence boundary
                np.stack([vec("p+1=" + l) for l in labs] + [vec("p+1=<>")]),
                {},  # (tag, token) -> attribute row of "p0w=tag|word"
                {},  # (type, all?, tag) -> row of self._dt_rows
                [np.zeros(len(labs), dtype=np.float32)],  # summed "dt" features
            )
        idx, P0, PM, PP, p0w, dt_ids, dt_rows = self._stack
        sents_tags = [(toks, tg) for toks, tg in zip(sents, tags) if toks]
        B = len(self.labels)
        cur, prev, nxt = [], [], []
        for _, tg in sents_tags:
            ids = [idx[t] for t in tg]
            cur += ids
            prev += [B] + ids[:-1]
            nxt += ids[1:] + [B]
        E = P0[cur] + PM[prev] + PP[nxt]
        keys, occ, totals = _doc_occurrences([t for t, _ in sents_tags], [g for _, g in sents_tags])
        get = self.attr_index.get
        unk = self._unk
        rows, dts = [], []
        memo: dict[tuple[str, str], int] = {}  # (word key, tag) -> dt row: the same for every occurrence
        for ks, (toks, tg) in zip(keys, sents_tags):
            for k, tok, t0 in zip(ks, toks, tg):
                r = p0w.get((t0, tok))
                if r is None:
                    r = p0w[(t0, tok)] = get(f"p0w={t0}|{word_features(tok)[2]}", unk)
                rows.append(r)
                d = memo.get((k, t0))
                if d is not None:
                    dts.append(d)
                    continue
                tot = totals[k] - 1
                key = None
                if tot > 0:
                    own = t0[2:] if t0 != "O" else "O"
                    ents = {e: v - (e == own) for e, v in occ[k].items() if e != "O" and v - (e == own) > 0}
                    if ents:
                        typ, v = max(ents.items(), key=lambda x: x[1])
                        key = (typ, v == tot, t0)
                    else:
                        key = ("O",)
                if key is None:
                    memo[(k, t0)] = 0
                    dts.append(0)
                    continue
                d = dt_ids.get(key)
                if d is None:
                    if key == ("O",):
                        fs = ["dt=O"]
                    else:
                        typ, every, t0_ = key
                        fs = ["dt=" + typ, f"dt={typ}|{'all' if every else 'some'}", f"dtp0={typ}|{t0_}"]
                    d = dt_ids[key] = len(dt_rows)
                    dt_rows.append(self.S[[get(f, unk) for f in fs]].sum(0))
                memo[(k, t0)] = d
                dts.append(d)
        E += self.S[rows]
        E += np.stack(dt_rows)[dts] if len(dt_rows) > 1 else 0.0
        return E

    def tag_batch(self, sents: list[list[str]], extra: list[list[list[str]]] | None = None,
                  extra_emissions: np.ndarray | None = None) -> list[list[str]]:
        """Tags of several sentences (one Viterbi pass over all of them);
        ``extra``: more features per token of every sentence (or
        ``extra_emissions``: their weights, (N, L) over the non-empty sentences)."""
        keep = [i for i, s in enumerate(sents) if s]
        out: list[list[str]] = [[] for _ in sents]
        if not keep:
            return out
        sents_k = [sents[i] for i in keep]
        E, lens_l = self._emissions_flat(sents_k, [extra[i] for i in keep] if extra is not None else None, extra_emissions)
        # Few tokens (a ticker line): one small Viterbi per sentence is cheaper
        # than the fixed cost of the batched one.
        if 4 * len(E) + 5 * len(lens_l) < 6 * max(lens_l) + 30:
            a = 0
            for i, n in zip(keep, lens_l):
                out[i] = self._viterbi(E[a:a + n])
                a += n
            return out
        lens = np.array(lens_l, dtype=np.intp)
        B, L = len(sents_k), len(self.labels)
        order = np.argsort(-lens, kind="stable")  # longest first: the sentences still going are a prefix
        lens_o = lens[order]
        Tm = int(lens_o[0])
        offs = (np.cumsum(lens) - lens)[order]
        T = self.T
        Eo = E[offs[:, None] + np.minimum(np.arange(Tm), lens_o[:, None] - 1)]  # (B, Tm, L)
        score = Eo[:, 0].copy()
        back = np.empty((Tm, B, L), dtype=np.intp)
        back[:] = np.arange(L)  # a finished sentence keeps its label
        active = np.searchsorted(-lens_o, -np.arange(Tm), side="left").tolist()  # sentences longer than t
        buf = np.empty((B, L, L), dtype=np.float32)
        for t in range(1, Tm):
            k = active[t]
            cand = np.add(score[:k, :, None], T, out=buf[:k])  # (k, from, to)
            cand.argmax(1, out=back[t, :k])
            cand.max(1, out=score[:k])
            score[:k] += Eo[:k, t]
        j = score.argmax(1)
        paths = np.empty((B, Tm), dtype=np.intp)
        rb = np.arange(B)
        for t in range(Tm - 1, 0, -1):
            paths[:, t] = j
            j = back[t, rb, j]
        paths[:, 0] = j
        named = self._label_arr[paths]
        for r, b in enumerate(order.tolist()):
            out[keep[b]] = named[r, : lens_o[r]].tolist()
        return out


_tagger: Tagger | None = None
_context_tagger: Tagger | None = None
_lock = threading.Lock()
CONTEXT_MODEL = DATA / "ner_crf_context.json.gz"


def get_tagger() -> Tagger:
    """The tagger of words read without context (``ner_crf.json.gz``)."""
    global _tagger
    if _tagger is None:
        with _lock:
            if _tagger is None:
                load_lexicons()
                _tagger = Tagger.load()
    return _tagger


def get_context_tagger() -> Tagger:
    """The tagger of sentences read in context (``ner_crf_context.json.gz``: the
    same features plus the context probe's; trained with half of the sentences
    without context, so it also tags the words of a sentence past the budget)."""
    global _context_tagger
    if _context_tagger is None:
        with _lock:
            if _context_tagger is None:
                load_lexicons()
                _context_tagger = Tagger.load(CONTEXT_MODEL)
    return _context_tagger


def split_sentences(words: list[str], max_len: int = 60) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges of the sentences of a token list: cut
    after . ! ? ؟ and line breaks, and every ``max_len`` tokens."""
    bounds = []
    start = 0
    for i, w in enumerate(words):
        if w in (".", "!", "?", "؟", "\n") or i - start >= max_len:
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(words):
        bounds.append((start, len(words)))
    return bounds


def tag_sentences(sents: list[list[str]], states: list[np.ndarray] | None = None) -> list[list[str]]:
    """BIO tags of the sentences of one document, as the pipeline makes
    them: the tagger, then document-level name propagation (:func:`propagate`).

    ``states``: the encoder's word states per sentence (zero rows past the
    context budget). A sentence with states is tagged by the context tagger, one
    without by the plain one: the context tagger gains 4-5 points of F1 where it
    has context and loses 1.3 where it has none (it learnt to lean on it), so
    each sentence gets the better of the two (figures: ``data/ner_crf_context.md``)."""
    covered = [bool(toks) and st is not None and bool(st.any()) for toks, st in zip(sents, states or [])]
    if not any(covered):
        return propagate(sents, get_tagger().tag_document(sents))
    in_context = get_context_tagger().tag_document(sents, states)
    if all(c for c, toks in zip(covered, sents) if toks):
        return propagate(sents, in_context)
    plain = get_tagger().tag_document(sents)
    return propagate(sents, [c_tags if c else p_tags for c, c_tags, p_tags in zip(covered, in_context, plain)])


def tag_words(words: list[str], states: np.ndarray | None = None) -> tuple[list[tuple[int, int]], list[list[str]]]:
    """The sentences of a text's words (:func:`split_sentences`) and their BIO
    tags (:func:`tag_sentences`); ``states``: one row per word, or None."""
    bounds = split_sentences(words)
    return bounds, tag_sentences([words[a:b] for a, b in bounds], None if states is None else [states[a:b] for a, b in bounds])


def tag_text(text: str, toks: list[tuple[str, int, int]] | None = None, context_tokens: int = 0,
             states: np.ndarray | None = None) -> list[tuple[str, int, int, str]]:
    """``(type, char_start, char_end, surface)`` of entities found in ``text``
    (tagged sentence by sentence, then made consistent over the whole text
    with :func:`propagate`). ``toks``: ``tokens(text)`` when the caller has them.
    ``context_tokens``: how many of the text's encoder tokens get contextual
    word states (:mod:`newsstream.enrich.ner_context`; 0: none, the tagger's
    own features only; the cost grows with it, about 0.3 ms a token), unless
    ``states`` gives them: one row per token of ``toks`` (``TextContext.word_states``)."""
    if toks is None:
        toks = tokens(text)
    words = [t[0] for t in toks]
    out = []
    if states is None and context_tokens > 0 and words:
        (states,) = word_states([(text, [(s, e) for _, s, e in toks])], context_tokens)
    bounds, tags = tag_words(words, states)
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

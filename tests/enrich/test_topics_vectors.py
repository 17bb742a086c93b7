"""Topics read with the article's vector: the stacked head over the text
model's margins and the item's vector, used for articles with embeddings on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from newsstream.cli.eval import eval_app
from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.enrich import pipeline
from newsstream.enrich.embedding import centred_unit
from newsstream.enrich.iptc import MODEL_FILE, VECTORS_MODEL_FILE, TopicModel, classify, get_topic_model
from newsstream.enrich.item import enrich_batch

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ARTICLE = RawArticle(
    id="a1", source="test", fetched_at=T0, title="أبل تطرح هاتفها الجديد",
    body="أعلنت شركة أبل عن هاتف آيفون الجديد بسعر يبدأ من 999 دولارا، وتوقع محللون أن ترتفع مبيعات "
         "الشركة وأسهمها في البورصة خلال الربع المقبل مع الطلب على الهواتف الذكية.")
LINE = RawTickerItem(id="t1", source="test", fetched_at=T0, published_at=T0, time="12:00", thread_id="th",
                     text="الترجي يفوز على النجم الساحلي بهدفين في الدوري التونسي لكرة القدم")


def test_the_head_reads_the_margins_and_the_vector() -> None:
    model = get_topic_model()
    assert model.head is not None and model.head.classes == model.classes
    vector = np.zeros(384, np.float32)
    vector[0] = 1.0
    margins = model.margins(ARTICLE.title, ARTICLE.body)
    z = np.concatenate([margins, vector]) @ model.head.W + model.head.b
    with_vector = model.probabilities(ARTICLE.title, ARTICLE.body, vector)
    assert np.allclose(with_vector, 1 / (1 + np.exp(-z)), atol=1e-6)
    # without a vector: the Platt sigmoids of the text model, as before the head
    plain = model.probabilities(ARTICLE.title, ARTICLE.body)
    assert np.allclose(plain, 1 / (1 + np.exp(-(model.platt[:, 0] * margins + model.platt[:, 1]))), atol=1e-6)
    assert not np.allclose(plain, with_vector)


def test_a_head_stacked_on_another_text_model_is_refused(tmp_path: Path) -> None:
    with np.load(VECTORS_MODEL_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["text_model"] = np.array("topics-iptc-svm-19700101")
    stale = tmp_path / "stale.npz"
    np.savez(stale, **arrays)
    with pytest.raises(ValueError, match="rebuild it"):
        TopicModel(MODEL_FILE, stale)
    assert TopicModel(MODEL_FILE, tmp_path / "missing.npz").head is None  # no head: the text model alone


def test_with_embeddings_an_articles_topics_come_from_its_vector_and_a_lines_do_not() -> None:
    on = enrich_batch([ARTICLE, LINE], T0, embeddings=True)
    off = enrich_batch([ARTICLE, LINE], T0, embeddings=False)
    article, line = on
    vector = centred_unit(article.enrichment.embedding, article.enrichment.language)
    assert [t.model_dump() for t in article.enrichment.topics] == classify(ARTICLE.title, ARTICLE.body, vector=vector)
    assert [t.model_dump() for t in off[0].enrichment.topics] == classify(ARTICLE.title, ARTICLE.body)
    assert article.enrichment.topics != off[0].enrichment.topics  # the head's scores, not the sigmoids'
    # a ticker line keeps the text model's topics (the head learnt from articles only)
    assert line.enrichment.embedding is not None
    assert line.enrichment.topics == off[1].enrichment.topics
    assert article.enrichment.enrichment_versions["topics_vectors"] == get_topic_model().head.version
    assert pipeline.versions()["topics_vectors"] == get_topic_model().head.version


def test_eval_topics_reads_vectors_as_the_worker_does(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    rows = [{"title": ARTICLE.title, "text": ARTICLE.body, "iptc": "medtop:13000000"},
            {"title": "", "text": LINE.text, "iptc": "medtop:15000000"}]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    models = {}
    for flag in ("--embeddings", "--no-embeddings"):
        r = CliRunner().invoke(eval_app, ["topics", flag, str(f)])
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["n"] == 2 and res["accuracy"] == 1.0
        models[flag] = res["model"]
    assert models["--embeddings"].endswith("with vectors") and "stack" in models["--embeddings"]
    assert models["--no-embeddings"] == get_topic_model().version

"""``eval pairs`` and ``eval stream``: on small files written here, and on the shared data read by path."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.evaluation.stories import eval_stream, pearson
from newsstream.evaluation.stream_replay import PipelineConfig
from tests.needs import require

from .texts import (
    FOOTBALL_BODY,
    LIGHT_EDIT_BODY,
    OTHER_STORY_BODY,
    QUAKE_A,
    QUAKE_A_TITLE,
    QUAKE_B,
    QUAKE_B_TITLE,
    TICKER_LINE,
    WATER_BODY,
    WIRE_BODY,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED_STREAM = SHARED / "ant_multisource_stream" / "stream.jsonl"
SHARED_PAIRS = SHARED / "semeval2022_task8_news_similarity" / "pairs.jsonl"


def cli() -> typer.Typer:
    return newsstream_cli


def run(*args: str) -> dict:
    result = CliRunner().invoke(cli(), ["eval", *args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout.strip().splitlines()[-1])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_pairs_prints_pearson_f1_and_n_per_language_with_arabic_apart(tmp_path: Path) -> None:
    pairs = [
        {"text": QUAKE_A_TITLE + " " + QUAKE_A, "text_pair": QUAKE_B_TITLE + " " + QUAKE_B, "label": 1.0, "lang1": "ar", "lang2": "ar"},
        {"text": WIRE_BODY, "text_pair": LIGHT_EDIT_BODY, "label": 1.0, "lang1": "ar", "lang2": "ar"},
        {"text": WIRE_BODY, "text_pair": OTHER_STORY_BODY, "label": 2.8, "lang1": "ar", "lang2": "ar"},
        {"text": QUAKE_A, "text_pair": FOOTBALL_BODY, "label": 4.0, "lang1": "ar", "lang2": "ar"},
        {"text": WATER_BODY, "text_pair": FOOTBALL_BODY, "label": 3.7, "lang1": "ar", "lang2": "ar"},
        {"text": "Floods hit the northern valley after three days of rain, officials said.",
         "text_pair": "Officials said floods hit the northern valley after days of heavy rain.", "label": 1.2,
         "lang1": "en", "lang2": "en"},
        {"text": "Floods hit the northern valley.", "text_pair": "The central bank raised interest rates again.",
         "label": 4.0, "lang1": "en", "lang2": "en"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    (tmp_path / "pairs.jsonl").write_bytes(path.read_bytes() + b"not json\n")  # a bad line is skipped, not fatal
    out = run("pairs", str(path))
    assert out["n"] == 7 and out["skipped"] == 1
    assert set(out["languages"]) == {"ar", "en"} and out["arabic"]["n"] == 5
    assert out["pearson"] > 0.5  # higher similarity, lower (closer) gold score
    # The three same-story pairs are found; of the rest only the other Jordanian energy story
    # (gold 2.8, "somewhat similar") reaches the threshold, never an unrelated pair.
    assert out["recall"] == 1.0 and out["precision"] >= 0.75
    assert 0 <= out["arabic"]["f1"] <= 1


def test_stream_counts_duplicates_and_stories_and_scores_exact_dedup(tmp_path: Path) -> None:
    records = [
        {"id": "a1", "source": "A", "title": QUAKE_A_TITLE, "text": QUAKE_A, "published_at": "2026-11-25T04:00:00+00:00", "exact_dup_group": "g1"},
        {"id": "a2", "source": "B", "title": "عنوان آخر", "text": QUAKE_A, "published_at": "2026-11-25T04:10:00+00:00", "exact_dup_group": "g1"},
        {"id": "a3", "source": "C", "title": QUAKE_B_TITLE, "text": QUAKE_B, "published_at": "2026-11-25T04:20:00+00:00", "exact_dup_group": "g2"},
        {"id": "w1", "source": "A", "title": "طاقة", "text": WIRE_BODY, "published_at": "2026-11-25T05:00:00+00:00", "exact_dup_group": "g3"},
        {"id": "w2", "source": "D", "title": "طاقة", "text": LIGHT_EDIT_BODY, "published_at": "2026-11-25T05:30:00+00:00", "exact_dup_group": "g4"},
        {"kind": "ticker", "source": "tv", "time": "06:00", "published_at": "2026-11-25T06:00:00+00:00",
         "text": TICKER_LINE, "attribution": "الرئاسة", "thread_id": "th_1"},
    ]
    out = run("stream", str(write_jsonl(tmp_path / "stream.jsonl", records)))
    assert out["items"] == 6 and out["ticker_lines"] == 1
    assert out["exact_duplicates"] == 1 and out["near_duplicates"] == 1
    assert out["precision"] == 1.0 and out["recall"] == 1.0
    assert out["stories"] == 3  # quake (a1 a2 a3), energy (w1 w2), the ticker line
    assert out["memory"]["near_dup_bytes_per_item"] > 0


def test_pearson() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 1], [1, 2]) is None


def test_exact_duplicate_recall_on_the_shared_stream_is_one() -> None:
    if not SHARED_STREAM.exists():
        require(f"shared data not beside the repo: {SHARED_STREAM}")
    out = eval_stream(str(SHARED_STREAM), PipelineConfig(embeddings=False), sample=0)  # exact dedup needs no vectors
    assert out["items"] == 546
    assert out["exact_vs_gold"]["recall"] == 1.0
    assert out["exact_vs_gold"]["precision"] == 1.0
    assert out["exact_vs_gold"]["wrong_target"] == 0


def test_pairs_on_the_shared_data_correlate_with_the_gold() -> None:
    if not SHARED_PAIRS.exists():
        require(f"shared data not beside the repo: {SHARED_PAIRS}")
    out = run("pairs", str(SHARED_PAIRS), "--no-embeddings")  # the word similarity: embedding 2,196 texts is eval's job
    assert out["n"] == 1098
    assert out["pearson"] > 0.4 and out["arabic"]["pearson"] > 0.4

"""Summaries for the person at the terminal count in English: "1 source", "3 articles", never "1 sources"."""

from __future__ import annotations

from collections import Counter

from newsstream.ingest.producer import IngestReport
from newsstream.ingest.sources.archive import ReplayReport
from newsstream.text.wording import counted


def test_counted_picks_singular_or_plural() -> None:
    assert counted(1, "source") == "1 source"
    assert counted(0, "source") == "0 sources"
    assert counted(3, "article") == "3 articles"
    assert counted(2, "dead letter") == "2 dead letters"
    assert counted(1, "entry", "entries") == "1 entry" and counted(2, "entry", "entries") == "2 entries"


def test_ingest_summary_counts_each_kind_in_words() -> None:
    report = IngestReport(emitted=Counter(article=3, ticker=1), dead_letters=Counter(invalid_json=1))
    assert report.summary() == "emitted 3 articles, 1 ticker line; 1 dead letter: 1 invalid_json"
    assert IngestReport().summary() == "emitted nothing"


def test_replay_summary_counts_in_words() -> None:
    report = ReplayReport(items=1, emitted=2, dead_letters=1, skipped=0, files=1)
    assert report.summary() == "replayed 1 input from 1 file: 2 events, 1 dead letter, 0 skipped (already done)"

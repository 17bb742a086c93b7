"""The README's main job: `newsstream demo` runs the whole pipeline and exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_stores_every_sample_item_and_reports_duplicates_and_dead_letters(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "newsstream", "demo", "--timeout", "90"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    def count(what: str) -> int:
        match = re.search(rf"│ {what}\s*│\s*(\d+) │", out)
        assert match, f"no '{what}' row in:\n{out}"
        return int(match.group(1))

    # 4 pages (one article each) + 3 wire articles; 6+6+5+4 page ticker lines + 1 wire line.
    assert count("articles") == 7
    assert count("ticker items") == 22
    # The republished article, two repeated ticker lines and the wire line that repeats a page line.
    assert count("exact duplicates") == 4
    # The edited wire copy of the desalination article.
    assert count("near duplicates") == 1
    assert re.search(r"al-khabar: «مناقصة دولية.*» ← wire-desk \(near 0\.\d\d\)", out), out
    # The battery story: page 1's article, its republication, the thread's headline line (and the thread
    # when its lines arrive after the article) and the wire line that repeats it.
    stories = re.search(r"│ stories\s*│\s*(\d+) \((\d+) with 2\+ items\) │", out)
    assert stories and int(stories.group(2)) >= 1, out
    assert re.search(r"\n  [4-9] items, 3 sources: «تشغيل أول محطة", out), out
    assert count("dead letters") == 2
    assert "1 invalid_json, 1 validation_error" in out
    assert (tmp_path / ".newsstream" / "demo" / "newsstream.sqlite").exists()

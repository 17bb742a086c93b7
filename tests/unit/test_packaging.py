"""The wheel (what `pip install .` in deploy/Dockerfile puts in the image) holds every module and data file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "services" / "newsstream"


def test_the_wheel_contains_every_subpackage_and_data_file(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build would leave build/ and egg-info behind.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "services" / "newsstream", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("newsstream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        "newsstream/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = sorted(expected - names)
    assert not missing, f"missing from the wheel: {missing[:20]}"
    # The checks that matter most, spelled out.
    assert "newsstream/worker/app.py" in names and "newsstream/sink/stores/postgres.py" in names
    assert any(n.startswith("newsstream/enrich/data/") and n.endswith(".gz") for n in names)
    assert "newsstream/samples/manifest.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "newsstream = newsstream.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

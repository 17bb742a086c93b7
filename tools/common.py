"""Paths and file helpers shared by the model-building tools."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import newsstream.enrich

# The committed model files live beside the code that reads them.
DATA = Path(newsstream.enrich.__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]
# Read by path, never copied into the repository.
SHARED = Path(os.environ.get("NEWSSTREAM_SHARED_DATA", REPO.parent / "shared" / "data"))


def jsonl(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def dump_gz(obj, path: Path) -> None:
    # mtime=0: byte-identical output for identical input.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as fh:
        fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8"))

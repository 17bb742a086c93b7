"""The README's "run the services by hand" walk-through works as written (issue 15, item 16).

The commands are read from README.md between the walkthrough markers, so the
README and this test cannot drift. They run in an empty directory, in order:
a line ending in ``&`` starts a service in the background, a ``sqlite3`` query
is repeated until its rows are there (the pipeline is asynchronous), every
other line must exit 0. Only the addresses differ from the README's defaults,
and only through the environment: ``KAFKA_BOOTSTRAP_SERVERS`` (where
``newsstream broker`` listens too) and each service's
``NEWSSTREAM_METRICS_PORT``, on free ports.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsstream.platform.broker import free_port
from tests.needs import require

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
MARKERS = ("<!-- walkthrough:begin -->", "<!-- walkthrough:end -->")
# What samples/wire.jsonl holds (services/newsstream/samples/README.md): rows per table queried.
EXPECTED_ROWS = {"articles": 3, "dead_letters": 2}
SHELL_SYNTAX = re.compile(r"[|;<>$`]|&&")


def walkthrough() -> list[list[str]]:
    """The commands of the README's walk-through, as argument lists (comments removed)."""
    block = README.read_text().split(MARKERS[0])[1].split(MARKERS[1])[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("```")]
    return [shlex.split(line, comments=True) for line in lines]


def test_the_walkthrough_is_plain_commands() -> None:
    """Nothing but commands, arguments and a trailing ``&``: what this test can run without a shell."""
    commands = walkthrough()
    assert len(commands) >= 6 and commands[0][:2] == ["newsstream", "broker"]
    for argv in commands:
        words = argv[:-1] if argv[-1] == "&" else argv
        assert not any(SHELL_SYNTAX.search(w) for w in words if not w.lower().startswith("select ")), argv


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[tuple[list[str], subprocess.Popen[bytes], Path]]]:
    started: list[tuple[list[str], subprocess.Popen[bytes], Path]] = []
    yield started
    for _argv, proc, _log in reversed(started):  # sink and worker first, the broker last
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path, services: list) -> None:  # type: ignore[type-arg]
    if not shutil.which("sqlite3"):
        require("the sqlite3 command-line shell is not installed")
    work = tmp_path / "fresh"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSSTREAM_", "KAFKA_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the installed `newsstream`
    env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"

    def logs() -> str:
        return "\n".join(f"--- {' '.join(a)}\n{log.read_text(errors='replace')[-3000:]}" for a, _p, log in services)

    for argv in walkthrough():
        if argv[-1] == "&":
            argv = argv[:-1]
            log = tmp_path / f"{len(services)}-{argv[1]}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(argv, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                        env={**env, "NEWSSTREAM_METRICS_PORT": str(free_port())})
            services.append((argv, proc, log))
        elif argv[0] == "sqlite3":
            rows = _rows_once_stored(argv, work, env, services, logs)
            if "articles" in argv[-1]:
                assert sum("|near|" in row for row in rows) == 1, rows
        else:
            done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}\n{logs()}"


def _rows_once_stored(argv: list[str], cwd: Path, env: dict[str, str], services: list, logs) -> list[str]:  # type: ignore[no-untyped-def, type-arg]
    """Run the query until it returns the rows the sample holds (polling: the worker and the sink are asynchronous)."""
    table = re.search(r"\bfrom (\w+)", argv[-1]).group(1)  # type: ignore[union-attr]
    expected = EXPECTED_ROWS[table]
    deadline = time.monotonic() + 180
    rows: list[str] = []
    while time.monotonic() < deadline:
        for service_argv, proc, _log in services:
            assert proc.poll() is None, f"{service_argv} exited with {proc.returncode}\n{logs()}"
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)
        rows = done.stdout.splitlines() if done.returncode == 0 else []  # no table yet: the sink is starting
        if len(rows) >= expected:
            assert len(rows) == expected, rows
            return rows
        time.sleep(0.5)  # polling interval, not a synchronisation
    raise AssertionError(f"{argv}: {len(rows)} of {expected} rows after 180 s\n{logs()}")

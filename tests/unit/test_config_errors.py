"""A configuration mistake is one line naming what to change, and exit 2: never a traceback (issue 15, item 13).

Run as the user runs them (``python -m newsstream ...``), with an unreachable
broker: each mistake must be caught before any connection is tried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsstream.errors import EXIT_CONFIG

UNREACHABLE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "NEWSSTREAM_KAFKA_CONNECT_TIMEOUT_S": "0"}


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSSTREAM_", "KAFKA_"))}
    return subprocess.run([sys.executable, "-m", "newsstream", *args], env={**clean, **UNREACHABLE, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["sink"], {"NEWSSTREAM_KAFKA_SECURITY_PROTOCOL": "BOGUS"}, "NEWSSTREAM_KAFKA_SECURITY_PROTOCOL"),
        (["sink", "--store", "mysql://db/news"], {}, "--store"),
        (["sink"], {"NEWSSTREAM_STORE_URL": "sqlite://news.sqlite"}, "NEWSSTREAM_STORE_URL"),
        (["worker", "--partitions", "0"], {}, "--partitions"),
        (["topics", "create"], {"NEWSSTREAM_PARTITIONS": "many"}, "NEWSSTREAM_PARTITIONS"),
        (["sink"], {"NEWSSTREAM_LOG_LEVEL": "loud"}, "NEWSSTREAM_LOG_LEVEL"),
        (["worker"], {"NEWSSTREAM_METRICS_PORT": "99999"}, "NEWSSTREAM_METRICS_PORT"),
        (["topics", "create"], {"NEWSSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "NEWSSTREAM_KAFKA_SASL_MECHANISM"),
        (["sink"], {"NEWSSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "NEWSSTREAM_KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"},
         "NEWSSTREAM_KAFKA_SSL_CAFILE"),
    ],
)
def test_a_configuration_mistake_is_one_line_and_exit_2(args: list[str], env: dict[str, str], names: str,
                                                        tmp_path: Path) -> None:
    result = _run(args, env, tmp_path)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], result.stderr

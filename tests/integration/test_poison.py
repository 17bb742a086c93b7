"""Poison input never costs good data, never crashes a service, never leaks a secret (issue 13).

Each test reproduces one way good data was lost or a secret leaked, on the
real broker and stores, with the services as processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.contract import topics
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.integration import harness
from tests.sources.kafka_util import read_all

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _ticker(n: int, tag: str) -> dict:
    return {"kind": "ticker", "id": f"t_{tag}_{n}", "source": "agency", "time": "10:00",
            "published_at": (NOW - timedelta(minutes=n)).isoformat(), "thread_id": f"th_{tag}_{n}",
            "text": f"خبر عاجل رقم {n} من الدفعة {tag} عن {tag * (n % 3 + 1)}", "attribution": None,
            "fetched_at": NOW.isoformat()}


async def _migrated(url: str) -> str:
    async with open_store(url) as store:
        await store.migrate()
    return url


async def test_a_poison_record_between_good_ones_costs_only_itself(
    fast_settings: Settings, sqlite_url: str, tmp_path: Path, query_store
) -> None:
    """450,000 quotes: under 1 MB as raw JSON, 1.8 MB once escaped again in a dead letter.
    Before: the dead letter was refused at send, the agent crashed, its batch was
    committed past: 0 of 200 good lines stored."""
    settings = fast_settings.model_copy(update={"store_url": await _migrated(sqlite_url)})
    poison = {"kind": "article", "id": "a_poison", "source": "rogue", "title": "x", "body": '"' * 450_000,
              "fetched_at": NOW.isoformat()}
    records = [_ticker(n, "a") for n in range(100)] + [poison] + [_ticker(n, "b") for n in range(100)]
    # As `topics create` does before any service starts: a record sent first would make
    # Tansu auto-create its topic with 4 partitions, which the services now refuse.
    await ensure_topics(settings)
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    try:
        # Straight onto the raw topic, as a producer that skips the ingest edge would.
        producer = await start_producer(settings)
        try:
            for record in records:
                await producer.send(topics.RAW_TOPIC_BY_KIND[record["kind"]], orjson.dumps(record),
                                    key=record["id"].encode())
            await producer.flush()
        finally:
            await producer.stop()

        async def done() -> bool:
            rows = await query_store(sqlite_url, "SELECT (SELECT count(*) FROM ticker_items) t, "
                                                 "(SELECT count(*) FROM dead_letters) d")
            return rows == [{"t": 200, "d": 1}]

        await harness.wait_for(done, 120, "200 ticker lines and 1 dead letter", services)
        (letter,) = await query_store(sqlite_url, "SELECT * FROM dead_letters")
        assert letter["stage"] == "worker" and letter["source_topic"] == topics.RAW_ARTICLES
        event = json.loads(letter["event"])
        assert event["payload_truncated"] is True and event["payload_bytes"] > 900_000
        assert len(event["payload_sha256"]) == 64 and len(letter["payload"]) < 300_000
        assert all(svc.proc.poll() is None for svc in services)
    finally:
        for svc in services:
            svc.stop()


def _ingest(args: list[str], broker_bootstrap: str) -> tuple[int, str]:
    result = CliRunner().invoke(newsstream_cli, [*args, "--bootstrap", broker_bootstrap])
    return result.exit_code, result.output


async def test_an_oversize_jsonl_line_is_a_dead_letter_and_the_lines_after_it_are_sent(
    fast_settings: Settings, tmp_path: Path
) -> None:
    """Before: exit 2 on MessageSizeTooLargeError (AttributeError for a ticker line), later lines never sent."""
    big_ticker = {**_ticker(0, "big"), "text": "كلمة " * 250_000}  # ~2.5 MB
    big_article = {"kind": "article", "source": "wire", "url": "https://example.org/big", "title": "t",
                   "body": "نص " * 400_000, "published_at": NOW.isoformat()}
    lines = [_ticker(1, "ok"), big_ticker, _ticker(2, "ok"), big_article, _ticker(3, "ok")]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    code, output = await asyncio.to_thread(_ingest, ["ingest", "jsonl", str(path)], fast_settings.kafka_bootstrap_servers)
    assert code == 0, output
    raw = await read_all(fast_settings, topics.RAW_TICKER, expect=3)
    assert sorted(v["id"] for _, _, v in raw) == ["t_ok_1", "t_ok_2", "t_ok_3"]
    letters = [v for _, _, v in await read_all(fast_settings, topics.DEAD_LETTERS, expect=2)]
    assert sorted((d["reason"], d["input_ref"]) for d in letters) == [("too_large", f"{path}:2"), ("too_large", f"{path}:4")]
    assert all(d["payload_truncated"] and d["payload_bytes"] > 1_000_000 for d in letters)


async def test_an_oversize_page_does_not_stop_a_directory_replay(fast_settings: Settings, tmp_path: Path) -> None:
    """Before: one 4.5 MB ticker line left every later page un-ingested."""
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a_big.txt").write_text("عاجل\n10:15\nالخارجية التركية: " + "كلمة " * 900_000 + "\n", encoding="utf-8")
    for n in range(3):
        (pages / f"b_{n}.txt").write_text(f"عاجل\n10:2{n}\nالخارجية التركية: خبر رقم {n} عن الاجتماع\n", encoding="utf-8")
    code, output = await asyncio.to_thread(
        _ingest, ["ingest", "dir", str(pages), "--state", str(tmp_path / "state.sqlite"), "--no-progress"],
        fast_settings.kafka_bootstrap_servers,
    )
    assert code == 0, output
    raw = await read_all(fast_settings, topics.RAW_TICKER, expect=3)
    assert len(raw) == 3
    (letter,) = [v for _, _, v in await read_all(fast_settings, topics.DEAD_LETTERS, expect=1)]
    assert letter["reason"] == "too_large"


async def test_invisible_text_and_far_future_and_nul_ids_are_dead_letters_at_the_edge(
    fast_settings: Settings, tmp_path: Path
) -> None:
    lines = [
        {"kind": "article", "source": "wire", "title": "", "body": "\u200b\u200f\u2066\u200d", "published_at": NOW.isoformat()},
        {"kind": "article", "source": "wire", "title": "t", "body": "خبر من المستقبل", "published_at": "2099-01-01T00:00:00Z"},
        {"kind": "article", "id": "a\u0000b", "source": "wire", "title": "t", "body": "نص", "published_at": NOW.isoformat()},
        {"kind": "article", "source": "wire", "title": "t", "body": "خبر بلا منطقة زمنية", "published_at": "2024-05-01T09:30:00"},
        {"kind": "article", "source": "wire", "title": "t", "body": "نص\u0000 سليم", "published_at": NOW.isoformat()},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    code, output = await asyncio.to_thread(_ingest, ["ingest", "jsonl", str(path)], fast_settings.kafka_bootstrap_servers)
    assert code == 0, output
    letters = {d["input_ref"].rsplit(":", 1)[1]: d for _, _, d in await read_all(fast_settings, topics.DEAD_LETTERS, expect=4)}
    assert letters["1"]["reason"] == "empty_text"
    assert letters["2"]["reason"] == "timestamp_out_of_range"
    assert letters["3"]["reason"] == "validation_error" and "id" in letters["3"]["error"]
    assert letters["4"]["reason"] == "validation_error" and "timezone" in letters["4"]["error"]
    (stored,) = [v for _, _, v in await read_all(fast_settings, topics.RAW_ARTICLES, expect=1)]
    assert stored["body"] == "نص سليم"  # a NUL in text is dropped, not a reason to lose the item


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sink_that_cannot_reach_postgres_never_prints_its_password(tmp_path: Path) -> None:
    """Before: the console traceback printed every frame's locals, the DSN among them, 11 times."""
    secret = "S3cretPW-xyz"
    env = {**os.environ, "NEWSSTREAM_STORE_URL": f"postgresql://newsstream:{secret}@127.0.0.1:{_closed_port()}/db",
           "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}", "NEWSSTREAM_KAFKA_CONNECT_TIMEOUT_S": "3",
           "NEWSSTREAM_METRICS_PORT": "0", "NEWSSTREAM_LOG_FORMAT": "console"}
    for fmt in ("console", "json"):
        result = subprocess.run([sys.executable, "-m", "newsstream", "sink"], env={**env, "NEWSSTREAM_LOG_FORMAT": fmt},
                                capture_output=True, text=True, timeout=60)
        output = result.stdout + result.stderr
        assert secret not in output, output
        assert "LOCAL VARIABLES" not in output and "locals" not in output.lower()
        assert result.returncode == 69, output
        assert output.strip().splitlines()[-1].startswith("error: Kafka at 127.0.0.1:")
        assert len(output.splitlines()) < 30, output


class _SilentListener:
    """Accepts connections and never answers: a broker address that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("service", ["worker", "sink"])
def test_without_a_broker_a_service_serves_health_says_why_once_per_try_and_exits_69(service: str, tmp_path: Path) -> None:
    """Before: ~40 s of silence against a listener that never answers, no /healthz, then a 100-line traceback."""
    listener = _SilentListener()
    port = _closed_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{listener.port}", "NEWSSTREAM_KAFKA_CONNECT_TIMEOUT_S": "12",
           "NEWSSTREAM_METRICS_PORT": str(port), "NEWSSTREAM_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite",
           "NEWSSTREAM_WORKER_DATADIR": str(tmp_path / "fresh" / "dir")}
    proc = subprocess.Popen([sys.executable, "-m", "newsstream", service], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:  # /healthz answers while Kafka is awaited; not ready
            assert time.monotonic() < deadline, "no /healthz while waiting for Kafka"
            try:
                assert not harness.ready(port)
                with __import__("urllib.request").request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                break
            except OSError:
                time.sleep(0.1)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    lines = output.strip().splitlines()
    waiting = [line for line in lines if "waiting for Kafka" in line]
    assert len(waiting) >= 2 and "no answer" in waiting[0], output
    assert proc.returncode == 69, output
    assert lines[-1] == f"error: Kafka at 127.0.0.1:{listener.port} did not answer within 12 s (NEWSSTREAM_KAFKA_CONNECT_TIMEOUT_S)"
    assert "Traceback" not in output

"""Replay (ingest dir): rate limit, progress, resume without duplicates, on the real broker."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.ingest.sources.archive import RateLimiter, replay
from newsstream.ingest.sources.state import SourceState
from newsstream.platform.settings import Settings
from newsstream.text.wording import counted
from tests.sources.kafka_util import count_by_key, read_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIX = Path(__file__).parent / "fixtures"


def _jsonl(path: Path, n: int, bad: tuple[int, ...] = ()) -> Path:
    lines = []
    for i in range(1, n + 1):
        if i in bad:
            lines.append("{not json" if i % 2 else json.dumps({"kind": "article", "source": "archive", "title": "no body"}))
        else:
            lines.append(json.dumps({"kind": "article", "source": "archive", "url": f"https://news.example/{i}",
                                     "title": f"خبر {i}", "body": f"نص الخبر رقم {i}"}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_rate_limiter_caps_items_per_second() -> None:
    limiter = RateLimiter(20)
    started = time.monotonic()
    for _ in range(40):
        await limiter.acquire()
    assert 0.9 <= time.monotonic() - started < 2.5  # 20 burst, then 20 more at 20/s


async def test_interrupted_replay_resumes_without_duplicates(fast_settings: Settings, tmp_path: Path) -> None:
    archive = _jsonl(tmp_path / "archive.jsonl", 60, bad=(7, 8))
    state_path = tmp_path / "replay.sqlite"
    with SourceState(state_path) as state:
        async with RawEventProducer(fast_settings) as producer:
            task = asyncio.create_task(replay([archive], producer, state, rate=10, batch=5))
            name = f"replay:{archive.resolve()}"
            deadline = time.monotonic() + 30
            while state.checkpoint(name) < 15:  # part-way through (the rate keeps it from finishing)
                assert time.monotonic() < deadline and not task.done(), "the replay made no progress"
                await asyncio.sleep(0.05)
            task.cancel()  # what Ctrl-C / SIGTERM do to the run
            with pytest.raises(asyncio.CancelledError):
                await task
        done = state.checkpoint(f"replay:{archive.resolve()}")
    assert 10 < done < 60
    with SourceState(state_path) as state:
        async with RawEventProducer(fast_settings) as producer:
            report = await replay([archive], producer, state)
    assert report.skipped == done and report.items == 60 - done

    raw = await read_all(fast_settings, topics.RAW_ARTICLES, expect=58)
    assert len(raw) == 58 and set(count_by_key(raw).values()) == {1}
    dlq = await read_all(fast_settings, topics.DEAD_LETTERS, expect=2)
    assert sorted(v["input_ref"].rsplit(":", 1)[1] for _, _, v in dlq) == ["7", "8"]
    assert {v["reason"] for _, _, v in dlq} == {"invalid_json", "validation_error"}


def test_ingest_dir_cli_pages_jsonl_and_bad_files(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "archive"
    (archive / "pages").mkdir(parents=True)
    shutil.copy(ROOT / "services" / "newsstream" / "samples" / "01_energy_battery_storage.txt", archive / "pages")
    shutil.copy(FIX / "ar-1.html", archive / "pages")
    (archive / "pages" / "latin1.txt").write_bytes(b"caf\xe9 \xff")  # not UTF-8: a dead letter
    (archive / "pages" / "empty.html").write_text("<html><head></head></html>")  # no body: a dead letter
    _jsonl(archive / "wire.jsonl", 5, bad=(3,))
    app = newsstream_cli
    args = ["ingest", "dir", str(archive), "--bootstrap", broker.bootstrap, "--state", str(tmp_path / "r.sqlite"),
            "--tz", "Asia/Beirut", "--progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "items/s" in result.output and "errors: 3" in result.output  # the rich progress bar
    assert "replayed 9 inputs from 5 files" in result.output and "3 dead letters" in result.output
    again = CliRunner().invoke(app, [*args, "--no-progress"])
    assert "replayed 0 inputs" in again.output and "9 skipped" in again.output

    settings = Settings(kafka_bootstrap_servers=broker.bootstrap)
    raw = asyncio.run(read_all(settings, *topics.RAW_TOPICS, idle_s=1.0, timeout_s=10))
    assert set(count_by_key(raw).values()) == {1}
    sources = {v["source"] for _, _, v in raw}
    assert sources == {"archive", "01_energy_battery_storage", "ar-1"}
    dlq = asyncio.run(read_all(settings, topics.DEAD_LETTERS, expect=3, timeout_s=10))
    assert sorted(v["reason"] for _, _, v in dlq) == ["empty_page", "invalid_encoding", "invalid_json"]


def test_sigterm_mid_replay_then_resume_emits_each_item_once(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real process, a real SIGTERM: the position is saved after the last acknowledged line."""
    import os
    import signal
    import subprocess
    import sys

    archive = _jsonl(tmp_path / "big.jsonl", 80)
    cmd = [sys.executable, "-m", "newsstream", "ingest", "dir", str(archive), "--bootstrap", broker.bootstrap,
           "--state", str(tmp_path / "r.sqlite"), "--no-progress"]
    env = {**os.environ, "NEWSSTREAM_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([*cmd, "--rate", "15"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while _records_on(broker.bootstrap, topics.RAW_ARTICLES) < 10:  # running, part-way at 15/s
        assert time.monotonic() < deadline and proc.poll() is None, "the replay made no progress"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted (run again to resume): replayed" in err
    first = int(err.split("replayed ")[1].split(" ")[0])
    assert 0 < first < 80
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"replayed {counted(80 - first, 'input')}" in done.stderr and f"{first} skipped" in done.stderr

    settings = Settings(kafka_bootstrap_servers=broker.bootstrap)
    raw = asyncio.run(read_all(settings, topics.RAW_ARTICLES, expect=80, timeout_s=15))
    assert len(raw) == 80 and set(count_by_key(raw).values()) == {1}


def _records_on(bootstrap: str, topic: str) -> int:
    """Records on ``topic`` so far, asked by a second, independent client (librdkafka); on Tansu
    the high watermark can lag by the last batch, a lower bound, which is all this needs."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as Partition

    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "replay-test-probe"})
    try:
        meta = client.list_topics(topic, timeout=10).topics.get(topic)
        parts = meta.partitions if meta is not None and meta.error is None else {}
        return sum(client.get_watermark_offsets(Partition(topic, p), timeout=10)[1] for p in parts)
    finally:
        client.close()

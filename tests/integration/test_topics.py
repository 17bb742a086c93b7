"""Topics on a real broker: `topics create` makes the worker's topics too, and partition counts are
checked at start-up (issue 15, item 7). Before, a raw topic with 6 partitions next to
NEWSSTREAM_PARTITIONS=4 went unnoticed, and the worker created its own topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.contract import topics
from newsstream.errors import EXIT_CONFIG, ConfigError
from newsstream.platform.broker import EmbeddedBroker
from newsstream.platform.kafka import ensure_topics
from newsstream.platform.settings import Settings
from newsstream.worker.topology import every_topic_spec

pytestmark = pytest.mark.integration


async def _partitions(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def _create(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def test_topics_create_makes_the_workers_internal_and_changelog_topics(broker: EmbeddedBroker) -> None:
    result = CliRunner().invoke(newsstream_cli, ["topics", "create", "-b", broker.bootstrap, "--partitions", "3"],
                                env={"NEWSSTREAM_WORKER_APP_ID": "nw"})
    assert result.exit_code == 0, result.output
    made = asyncio.run(_partitions(broker.bootstrap))
    expected = {
        topics.RAW_ARTICLES: 3, topics.STORIES: 3, topics.DEAD_LETTERS: 1,
        "nw-by-content": 3, "nw-dedup-first-seen-changelog": 3, "nw-placement": 1,
        "nw-placement-near-items-changelog": 1, "nw-placement-near-common-changelog": 1,
        "nw-placement-threads-changelog": 1, "nw-placement-stories-changelog": 1, "nw-__assignor-__leader": 1,
    }
    assert {name: made.get(name) for name in expected} == expected
    again = CliRunner().invoke(newsstream_cli, ["topics", "create", "-b", broker.bootstrap, "--partitions", "3"],
                               env={"NEWSSTREAM_WORKER_APP_ID": "nw"})
    assert again.exit_code == 0 and "all topics exist" in again.output


async def test_existing_topics_with_other_partition_counts_stop_every_service(broker: EmbeddedBroker) -> None:
    await _create(broker.bootstrap, topics.RAW_ARTICLES, 6)
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, partitions=4)
    with pytest.raises(ConfigError) as caught:
        await ensure_topics(settings)  # what ingest and the sink call at start-up
    message = str(caught.value)
    assert "news.raw.articles.v1 has 6 (expected 4)" in message and "NEWSSTREAM_PARTITIONS=4" in message
    assert "news.raw.ticker.v1" not in message  # created by that call with 4: not a mismatch


async def test_the_worker_checks_its_changelog_against_the_setting(broker: EmbeddedBroker) -> None:
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, partitions=2)
    await _create(broker.bootstrap, f"{settings.worker_app_id}-dedup-first-seen-changelog", 3)
    await ensure_topics(settings)  # the public topics alone are fine
    with pytest.raises(ConfigError, match="newsstream-worker-dedup-first-seen-changelog has 3 .expected 2."):
        await ensure_topics(settings, every_topic_spec(settings))


def test_a_worker_started_with_another_partition_count_exits_2_with_one_line(tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        created = subprocess.run([sys.executable, "-m", "newsstream", "topics", "create", "-b", broker.bootstrap,
                                  "--partitions", "6"], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        env = {**os.environ, "NEWSSTREAM_PARTITIONS": "4", "NEWSSTREAM_METRICS_PORT": "0",
               "NEWSSTREAM_WORKER_DATADIR": str(tmp_path / "data")}
        worker = subprocess.run([sys.executable, "-m", "newsstream", "worker", "-b", broker.bootstrap],
                                capture_output=True, text=True, timeout=120, env=env)
    assert worker.returncode == EXIT_CONFIG, worker.stderr[-3000:]
    errors = [line for line in worker.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in worker.stderr
    assert "set NEWSSTREAM_PARTITIONS=6" in errors[0] and "newsstream-worker-by-content has 6 (expected 4)" in errors[0]

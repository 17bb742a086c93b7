"""``newsstream dlq replay`` end to end on the real broker (issue 15, item 6).

An article the database refuses becomes a ``store_rejected`` dead letter; the
cause is fixed (the constraint dropped); re-driving the dead letter takes the
raw event through the worker and the sink again and the article is stored;
re-driving twice stores nothing twice. The worker and the sink run as
processes, the command as a user types it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest

from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.platform.broker import EmbeddedBroker
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.conftest import _query as query
from tests.integration import harness

pytestmark = pytest.mark.integration

ARTICLES = [
    {"kind": "article", "id": "a_fine", "source": "agency", "title": "افتتاح معرض الكتاب",
     "body": "افتتح وزير الثقافة معرض الكتاب الدولي بمشاركة مئات دور النشر من العالم العربي",
     "published_at": "2026-01-05T09:00:00+00:00"},
    {"kind": "article", "id": "a_poison", "source": "agency", "title": "POISON",
     "body": "أعلنت وزارة النقل عن خطة جديدة لتوسيع شبكة القطارات بين المدن الكبرى خلال العام المقبل",
     "published_at": "2026-01-05T09:05:00+00:00"},
]


async def _newsstream(settings: Settings, *args: str) -> str:
    """Run the ``newsstream`` command with the services' settings; its standard output (it must exit 0)."""
    env = {**os.environ, **harness.service_env(settings)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "newsstream", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_dead_letter_is_re_driven_once_its_cause_is_fixed_and_stored_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, partitions=2, session_timeout_s=6,
                        rebalance_timeout_s=3, heartbeat_interval_s=1, metrics_host="127.0.0.1", metrics_port=0,
                        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}")
    url = settings.store_url
    async with open_store(url) as store:
        await store.migrate()
    # The condition a fix removes: a rule in the database that refuses one article.
    await query(url, "CREATE TRIGGER no_poison BEFORE INSERT ON articles WHEN NEW.title = 'POISON'"
                     " BEGIN SELECT RAISE(ABORT, 'constraint failed: poison'); END")

    async def stored(sql: str) -> list[dict]:
        return await query(url, sql)

    worker = harness.start("worker", settings, tmp_path / "worker")
    sink = harness.start("sink", settings, tmp_path / "sink")
    services = [worker, sink]
    try:
        await harness.wait_for(lambda: harness.ready(worker.metrics_port), 60, "worker ready", services)
        async with RawEventProducer(settings) as producer:
            await producer.ingest_json_lines((f"test:{n}", orjson.dumps(a)) for n, a in enumerate(ARTICLES))

        async def rejected() -> bool:
            letters = await stored("SELECT reason FROM dead_letters")
            return bool(await stored("SELECT id FROM articles")) and letters == [{"reason": "store_rejected"}]

        await harness.wait_for(rejected, 90, "a_fine stored and a_poison dead-lettered", services)
        assert await stored("SELECT id FROM articles") == [{"id": "a_fine"}]

        await query(url, "DROP TRIGGER no_poison")  # the fix
        out = await _newsstream(settings, "dlq", "replay", "--reason", "store_rejected", "--since", "2026-01-01")
        assert "selected: 1" in out and f"re-published: 1\n  {topics.RAW_ARTICLES}: 1" in out, out

        async def both_stored() -> bool:
            return len(await stored("SELECT id FROM articles")) == 2

        await harness.wait_for(both_stored, 90, "a_poison stored after the re-drive", services)

        # Re-driving again changes nothing downstream: wait until the worker and the sink have read it all.
        out = await _newsstream(settings, "dlq", "replay", "--reason", "store_rejected")
        assert "re-published: 1" in out, out
        app = settings.worker_app_id
        await harness.wait_committed(settings, app, [*topics.RAW_TOPICS, f"{app}-by-content", f"{app}-placement"],
                                     services)
        await harness.wait_committed(settings, settings.sink_group_id, list(topics.ENRICHED_TOPICS), services)
        assert sorted(r["id"] for r in await stored("SELECT id FROM articles")) == ["a_fine", "a_poison"]
        assert await stored("SELECT reason FROM dead_letters") == [{"reason": "store_rejected"}]
        # Nothing else is selected: the filters hold.
        out = await _newsstream(settings, "dlq", "replay", "--reason", "invalid_json", "--dry-run")
        assert "selected: 0" in out and "would re-publish: 0" in out, out
    finally:
        for svc in services:
            svc.stop()

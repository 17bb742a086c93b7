"""A seeded fuzz run through every entry point, with the accounting that nothing vanished (issue 13).

A few thousand generated inputs — valid and broken JSON, wrong types, missing
and oversize fields, invalid UTF-8, control, zero-width and bidi characters,
HTML and script, deep nesting, odd timestamps and time zones, colliding and
hostile ids — go through ``ingest jsonl``, ``ingest page``, ``ingest dir``,
the push API and ``parse page``, then through the worker into two sinks
(SQLite and PostgreSQL). The test asserts the accounting, not the content:

* every input became events or exactly one dead letter, the same way at every
  entry point, and the push API answered 4xx (never 5xx) to what it refused;
* every record on the raw topics was stored, or the worker dead-lettered it
  with its coordinates;
* both stores hold the same rows; no service exited.

``NEWSSTREAM_FUZZ_SEED=N`` reproduces a failing run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from typer.testing import CliRunner

from newsstream.cli.main import app as newsstream_cli
from newsstream.contract import topics
from newsstream.ingest.producer import RawEventProducer
from newsstream.ingest.sources.archive import replay
from newsstream.ingest.sources.push import PushClient, PushConfig, push_app
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.integration import harness
from tests.sources.kafka_util import read_all

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("NEWSSTREAM_FUZZ_SEED", "20261206"))
N_JSONL, N_PUSH, N_PAGES = 1500, 300, 60
TOKEN = "fuzz-token-0123456789"
NOW = datetime.now(UTC)

WORDS = ("الخارجية", "التركية", "وزير", "اجتماع", "غزة", "لبنان", "الاتفاق", "مجلس", "الأمن", "عاجل", "قصف",
         "الرئيس", "مصدر", "الحكومة", "بيروت", "Reuters", "said", "the", "talks", "ceasefire", "١٢", "2024")
ODD = ("\u200b", "\u200f", "\u202e", "\u2066", "\ufeff", "\x00", "\x07", "\x1b", "<script>alert(1)</script>",
       "<b>", "&amp;", "\U0001f525", "\u0301", "\r\n", "\t", "\\", '"', "'", "\u2028")
ZONES = ("Z", "+00:00", "+03:00", "-05:30", "")  # "" is a naive timestamp: refused unless a zone is given


class Fuzz:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = [f"fuzz-{n}" for n in range(40)]  # a small pool, so ids collide

    def text(self, words: int = 12) -> str:
        rng = self.rng
        parts = [rng.choice(WORDS) for _ in range(rng.randint(1, words))]
        for _ in range(rng.choice((0, 0, 0, 1, 3))):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(ODD))
        return " ".join(parts)

    def timestamp(self) -> str | int | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(("not a date", 17, None, "2024-13-45T99:00:00Z", "0001-01-01T00:00:00+01:00",
                               "9999-12-31T23:59:59-01:00", "2099-01-01T00:00:00Z", "1800-01-01T00:00:00Z"))
        at = NOW - timedelta(minutes=rng.randint(0, 5000))
        return at.replace(tzinfo=None).isoformat(timespec="seconds") + rng.choice(ZONES)

    def record(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(("article", "article", "ticker"))
        if kind == "article":
            rec: dict[str, Any] = {"kind": "article", "source": rng.choice(("wire", "outlet-a", "outlet-b")),
                                   "title": self.text(6), "body": self.text(40), "published_at": self.timestamp()}
            if rng.random() < 0.5:
                rec["url"] = f"https://news.example/{rng.randint(0, 300)}?utm_source=x"
        else:
            rec = {"kind": "ticker", "source": rng.choice(("tv", "agency")), "time": f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                   "published_at": self.timestamp(), "text": self.text(10), "thread_id": f"th-{rng.randint(0, 50)}",
                   "attribution": rng.choice((None, "الخارجية التركية", self.text(3)))}
        if rng.random() < 0.3:
            rec["id"] = rng.choice(self.ids)
        return self.mutate(rec)

    def mutate(self, rec: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            return rec
        field = rng.choice(list(rec))
        mutations = (
            lambda: rec.pop(field),                                   # missing field
            lambda: rec.__setitem__(field, rng.choice((5, 1.5, True, [], {}, None))),  # wrong type
            lambda: rec.__setitem__(field, "كلمة " * rng.choice((30_000, 300_000))),  # oversize field
            lambda: rec.__setitem__(field, self.deep(rng.choice((10, 300, 2000)))),  # deep nesting
            lambda: rec.__setitem__(field, "".join(rng.choice(ODD) for _ in range(rng.randint(1, 20)))),  # invisible only
            lambda: rec.__setitem__("id", rng.choice(("a\x00b", " ", "x" * 600, "../../etc/passwd", "🔥", "id\nnext"))),
            lambda: rec.__setitem__("extra_field", "typo"),
            lambda: rec.__setitem__("kind", rng.choice(("story", "ARTICLE", 3))),
            lambda: rec.__setitem__("fetched_at", self.timestamp()),
        )
        rng.choice(mutations)()
        return rec

    def deep(self, depth: int) -> Any:
        value: Any = "x"
        for _ in range(depth):
            value = {"a": value}
        return value

    def line(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return rng.randbytes(rng.randint(1, 200)).replace(b"\n", b" ") or b"\xff"  # not UTF-8, not JSON
        if roll < 0.10 and roll >= 0.08:
            return rng.choice((b"[]", b"null", b"42", b'"text"', b"[{}]"))
        try:
            line = json.dumps(self.record(), ensure_ascii=rng.random() < 0.2).encode("utf-8", "surrogatepass")
        except RecursionError:  # json cannot write what it nests too deep: write the nesting as text
            line = b'{"kind": "article", "body": ' + b"[" * 3000 + b"]" * 3000 + b"}"
        return line[: rng.randint(1, 40)] if roll < 0.08 else line  # some cut short

    def page(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return rng.randbytes(rng.randint(10, 5000))
        if roll < 0.25:
            return b""
        lines = []
        if rng.random() < 0.7:
            lines += ["الأكثر قراءة", self.text(8), "", self.text(60), self.text(60), "يتم قراءة الآن"]
        if rng.random() < 0.6:
            lines.append("عاجل")
            for _ in range(rng.randint(1, 8)):
                clock = rng.choice((f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", "25:99", "١٠:٣٠", ""))
                lines += [clock, f"{rng.choice(('الخارجية التركية', self.text(2)))}{rng.choice((':', ' -', ''))} {self.text(12)}"]
        if rng.random() < 0.1:
            lines.append("<html><script>x</script>" + "كلمة " * rng.choice((10, 300_000)))
        return "\n".join(lines).encode("utf-8", "surrogatepass")


async def _push_all(settings: Settings, fuzz: Fuzz) -> tuple[set[str], int, dict[int, int]]:
    """(accepted ids, items accepted, responses by status) of N_PUSH requests of 1-5 items."""
    config = PushConfig(tokens={TOKEN: PushClient("fuzzer")}, max_body_bytes=1024 * 1024, max_items=50, body_timeout_s=5)
    accepted_ids: set[str] = set()
    accepted, statuses = 0, {}
    async with RawEventProducer(settings) as producer:
        runner = web.AppRunner(push_app(producer, config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(N_PUSH):
                    kind = fuzz.rng.choice(("articles", "ticker"))
                    items = [fuzz.line() for _ in range(fuzz.rng.randint(1, 5))]
                    body = items[0] if len(items) == 1 else b"[" + b",".join(items) + b"]"
                    query = fuzz.rng.choice(("", "?tz=Asia/Beirut", "?tz=Mars/Base"))
                    token = TOKEN if fuzz.rng.random() > 0.03 else "wrong"
                    async with session.post(f"http://127.0.0.1:{port}/v1/{kind}{query}", data=body,
                                            headers={"Authorization": f"Bearer {token}"}) as resp:
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status == 202:
                            answer = await resp.json()
                            accepted += answer["accepted"]
                            accepted_ids.update(answer["ids"])
        finally:
            await runner.cleanup()
    return accepted_ids, accepted, statuses


async def test_fuzzed_inputs_through_every_entry_point_are_stored_or_dead_lettered(
    fast_settings: Settings, sqlite_url: str, pg_url: str, tmp_path: Path, query_store
) -> None:
    fuzz = Fuzz(SEED)
    note = f"(NEWSSTREAM_FUZZ_SEED={SEED})"
    sinks = {"sqlite": sqlite_url, "postgresql": pg_url}
    for url in sinks.values():
        async with open_store(url) as store:
            await store.migrate()
    settings = fast_settings.model_copy(update={"store_url": sqlite_url})
    services = [
        harness.start("worker", settings, tmp_path),
        harness.start("sink", settings.model_copy(update={"sink_group_id": "sink-sqlite"}), tmp_path / "s1"),
        harness.start("sink", settings.model_copy(update={"store_url": pg_url, "sink_group_id": "sink-pg"}), tmp_path / "s2"),
    ]
    try:
        # ingest jsonl: every line is an event or one dead letter.
        lines = [fuzz.line() for _ in range(N_JSONL)]
        async with RawEventProducer(settings) as jsonl:
            await jsonl.ingest_json_lines(((f"fuzz.jsonl:{n}", line) for n, line in enumerate(lines, 1)),
                                          tz=None if fuzz.rng.random() < 0.5 else __import__("zoneinfo").ZoneInfo("Asia/Beirut"))
        assert jsonl.report.total_emitted + jsonl.report.total_dead_letters == N_JSONL, note

        # push API: every request 202 or a 4xx, never a 5xx.
        _, pushed, statuses = await _push_all(settings, fuzz)
        assert sum(statuses.values()) == N_PUSH and not [s for s in statuses if s >= 500 or s < 200], (statuses, note)

        # ingest page, ingest dir and parse page on the same files: one policy.
        pages = tmp_path / "pages"
        pages.mkdir()
        files = []
        for n in range(N_PAGES):
            (path := pages / f"page_{n:03d}.txt").write_bytes(fuzz.page())
            files.append(path)
        page_outcomes = []
        async with RawEventProducer(settings) as by_page:
            for path in files:
                before = (by_page.report.total_emitted, by_page.report.total_dead_letters)
                await by_page.ingest_page(path, source="fuzz-pages")
                emitted = by_page.report.total_emitted - before[0]
                dead = by_page.report.total_dead_letters - before[1]
                assert (emitted > 0 and dead == 0) or (emitted == 0 and dead == 1) or emitted > 0, (path, note)
                page_outcomes.append(emitted > 0)
        async with RawEventProducer(settings) as by_dir:
            report = await replay([pages], by_dir, None, source="fuzz-pages")
        assert report.items == N_PAGES
        assert (by_dir.report.total_emitted, by_dir.report.total_dead_letters) == \
               (by_page.report.total_emitted, by_page.report.total_dead_letters), note
        for path, had_events in zip(files, page_outcomes):
            result = CliRunner().invoke(newsstream_cli, ["parse", "page", str(path)])
            assert result.exception is None or isinstance(result.exception, SystemExit), (path, result.exception, note)
            if had_events:
                assert result.exit_code == 0, (path, result.output, note)

        # Downstream: every raw record stored, or dead-lettered by the worker at its coordinates.
        sent = jsonl.report.total_emitted + pushed + by_page.report.total_emitted + by_dir.report.total_emitted
        raw = await _raw_records(settings, sent)
        assert len(raw) == sent, note
        letters_sent = (jsonl.report.total_dead_letters + by_page.report.total_dead_letters
                        + by_dir.report.total_dead_letters)
        dlq = [v for _, _, v in await read_all(settings, topics.DEAD_LETTERS, expect=letters_sent, idle_s=1.0)]
        assert sum(d["stage"] == "ingest" for d in dlq) == letters_sent, note
        # The same bad page through `ingest page` and `ingest dir` is the same dead letter (one id).
        ingest_letters = len({d["id"] for d in dlq if d["stage"] == "ingest"})

        async def unaccounted() -> dict[str, object] | None:
            """Per store, raw records neither stored nor dead-lettered and the ingest dead letters
            missing (None once everything is accounted for)."""
            missing: dict[str, object] = {}
            for name, url in sinks.items():
                stored = {r["id"] for table in ("articles", "ticker_items")
                          for r in await query_store(url, f"SELECT id FROM {table}")}
                letters = await query_store(url, "SELECT stage, source_topic, source_partition, source_offset "
                                                 "FROM dead_letters")
                coords = {(r["source_topic"], r["source_partition"], r["source_offset"])
                          for r in letters if r["stage"] == "worker"}
                lost = [r for r in raw if r[3] not in stored and r[:3] not in coords]
                ingest = sum(r["stage"] == "ingest" for r in letters)
                if lost or ingest != ingest_letters:
                    missing[name] = {"lost": lost[:5], "n_lost": len(lost), "ingest_letters": (ingest, ingest_letters)}
            return missing or None

        async def all_accounted() -> bool:
            return await unaccounted() is None

        try:
            await harness.wait_for(all_accounted, 180, f"every input stored or dead-lettered {note}", services)
        except AssertionError:
            raise AssertionError(f"unaccounted: {await unaccounted()} {note}") from None
        for url in sinks.values():
            letters = await query_store(url, "SELECT source_topic FROM dead_letters WHERE stage <> 'ingest'")
            # Only stage 1 (the raw topics) may refuse an accepted item: nothing is lost later.
            assert {r["source_topic"] for r in letters} <= set(topics.RAW_TOPICS), note
        # Both stores hold the same rows.
        snapshot = {}
        for name, url in sinks.items():
            snapshot[name] = {
                table: sorted((r["id"], r["content_hash"]) for r in await query_store(url, f"SELECT id, content_hash FROM {table}"))
                for table in ("articles", "ticker_items")
            }
            snapshot[name]["dead_letters"] = sorted(r["id"] for r in await query_store(url, "SELECT id FROM dead_letters"))
        assert snapshot["sqlite"] == snapshot["postgresql"], note
        assert all(svc.proc.poll() is None for svc in services), note
    finally:
        for svc in services:
            svc.stop()


async def _raw_records(settings: Settings, expect: int) -> list[tuple[str, int, int, str]]:
    """(topic, partition, offset, id) of every record on the raw topics."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                fetch_max_wait_ms=100)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(t, p) for t in topics.RAW_TOPICS for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[tuple[str, int, int, str]] = []
        deadline = asyncio.get_running_loop().time() + 60
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                out += [(tp.topic, tp.partition, r.offset, json.loads(r.value)["id"]) for r in records]
        return out
    finally:
        await consumer.stop()

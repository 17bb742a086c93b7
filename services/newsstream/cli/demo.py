"""``newsstream demo``: the whole pipeline, end to end, on this machine.

Starts the embedded broker (unless given one), the worker and the sink as
separate processes (as they run in production), ingests the bundled sample
pages and a JSONL file with one bad line, waits until every item is stored
and prints what happened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from newsstream.platform.broker import EmbeddedBroker, free_port
from newsstream.platform.logs import configure_logging
from newsstream.platform.settings import Settings, load_settings
from newsstream.text.wording import counted

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DEMO_DIR = Path(".newsstream") / "demo"

# Start-up in seconds rather than half a minute: the Kafka defaults wait for
# slow group members; a single-machine demo has none.
FAST_GROUP_ENV = {
    "NEWSSTREAM_SESSION_TIMEOUT_S": "6",
    "NEWSSTREAM_REBALANCE_TIMEOUT_S": "3",
    "NEWSSTREAM_HEARTBEAT_INTERVAL_S": "1",
}


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn_service(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """Run ``newsstream <name> ...`` as a child process with its log in ``log_dir``."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsstream", name, "--metrics-port", str(port), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    return ServiceProcess(name, proc, port, log_path)


def sample_inputs() -> list[dict[str, str]]:
    """The bundled pages with the outlet, URL and time zone each was written as."""
    return orjson.loads((SAMPLES / "manifest.json").read_bytes())["pages"]


async def _ingest_samples(settings: Settings) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    from newsstream.ingest.producer import RawEventProducer

    async with RawEventProducer(settings) as producer:
        for page in sample_inputs():
            await producer.ingest_page(
                SAMPLES / page["file"], source=page["source"], url=page.get("url"), tz=ZoneInfo(page["tz"]),
                fetched_at=datetime.fromisoformat(page["fetched_at"]),
            )
        await producer.ingest_jsonl(SAMPLES / "wire.jsonl")
    return producer.report.total_emitted, producer.report.total_dead_letters


async def _wait_until_stored(
    store_url: str, items: int, dead_letters: int, timeout: float, console: Console, stories: bool = True
):
    from newsstream.sink.stores import open_store

    store = open_store(store_url)
    await store.connect()
    try:
        await store.migrate()  # idempotent; the sink may not have created the tables yet
        deadline = time.monotonic() + timeout
        with console.status("waiting for the worker and the sink…") as status:
            while True:
                summary = await store.summary()
                stored = summary.articles + summary.ticker_items
                status.update(f"stored {stored}/{items} items, {summary.dead_letters}/{dead_letters} dead letters")
                # Stories come with the items (stage 3 emits both); wait for at least one.
                if stored >= items and summary.dead_letters >= dead_letters and (summary.stories or not stories):
                    return summary, await store.duplicates(), await store.threads(), await store.stories(5)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {stored}/{items} items stored after {timeout:.0f}s")
                await asyncio.sleep(0.25)
    finally:
        await store.close()


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(bootstrap: str | None, store_url: str | None, keep_running: bool, timeout: float) -> int:
    console = Console()
    # SIGTERM ends the demo like Ctrl-C does, through the cleanup below: the
    # children run in their own sessions and would otherwise outlive it.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    configure_logging("error")  # the summary reports dead letters; warnings would only repeat them
    started = time.monotonic()
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    store_url = store_url or f"sqlite:///{(DEMO_DIR / 'newsstream.sqlite').resolve()}"

    embedded = None
    if not bootstrap:
        embedded = EmbeddedBroker(log_path=DEMO_DIR / "broker.log").start()
        bootstrap = embedded.bootstrap
        console.print(f"[bold]broker[/]  embedded Tansu on {bootstrap} (in memory)")
    env = {**FAST_GROUP_ENV, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "NEWSSTREAM_STORE_URL": store_url,
           "NEWSSTREAM_WORKER_BATCH_WITHIN_S": "0.05", "NEWSSTREAM_SINK_BATCH_WAIT_MS": "100"}
    settings = load_settings(kafka_bootstrap_servers=bootstrap, store_url=store_url,
                             **{k.removeprefix("NEWSSTREAM_").lower(): v for k, v in FAST_GROUP_ENV.items()})
    services: list[ServiceProcess] = []
    try:
        from newsstream.platform.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        services = [
            spawn_service("worker", [], env, DEMO_DIR),
            spawn_service("sink", [], env, DEMO_DIR),
        ]
        for svc in services:
            console.print(f"[bold]{svc.name:<7}[/] pid {svc.proc.pid}, metrics http://127.0.0.1:{svc.metrics_port}/metrics, log {svc.log_path}")
        items, dead = asyncio.run(_ingest_samples(settings))
        console.print(f"[bold]ingest[/]  {counted(items, 'raw event')} from {counted(len(sample_inputs()), 'page')} "
                      f"and wire.jsonl, {counted(dead, 'dead letter')}")
        for svc in services:
            if svc.proc.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with code {svc.proc.returncode}; see {svc.log_path}")
        summary, duplicates, threads, stories = asyncio.run(
            _wait_until_stored(store_url, items, dead, timeout, console, settings.stories_enabled)
        )
        _print_summary(console, summary, duplicates, threads, stories, store_url, services, time.monotonic() - started)
        if keep_running:
            console.print("services keep running; Ctrl-C stops them")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    except (TimeoutError, RuntimeError) as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        for svc in services:
            console.print(f"--- last lines of {svc.log_path}")
            console.print("\n".join(svc.log_path.read_text(errors="replace").splitlines()[-15:]), markup=False)
        return 1
    finally:
        for svc in services:
            svc.stop()
        if embedded:
            embedded.stop()


def _print_summary(
    console: Console, summary, duplicates, threads, stories, store_url: str, services, elapsed: float
) -> None:
    table = Table(title="newsstream demo: what reached the store")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("articles", str(summary.articles))
    table.add_row("ticker items", str(summary.ticker_items))
    table.add_row("ticker threads", str(summary.threads))
    table.add_row("exact duplicates", str(summary.duplicates - summary.near_duplicates))
    table.add_row("near duplicates", str(summary.near_duplicates))
    table.add_row("stories", f"{summary.stories} ({summary.multi_member_stories} with 2+ items)")
    table.add_row("dead letters", str(summary.dead_letters))
    console.print(table)
    if duplicates:
        console.print("[bold]duplicates[/] (item ← the first item it copies)")
        for d in duplicates:
            how = "exact" if d.duplicate_kind == "exact" else f"near {d.similarity or 0:.2f}"
            console.print(f"  {d.kind:<7} {d.source}: «{_short(d.text, 34)}» ← {d.first_source} ({how})", markup=False)
    if threads:
        console.print("[bold]multi-line ticker threads[/]")
        for t in threads:
            console.print(f"  {t.thread_id} {counted(t.lines, 'line')}, {t.source}: {t.attribution or '(no attribution)'}", markup=False)
    if stories:
        console.print("[bold]largest stories[/]")
        for st in stories:
            console.print(f"  {counted(st.member_count, 'item')}, {counted(len(st.sources), 'source')}: «{_short(st.headline, 50)}»", markup=False)
    if summary.dead_letters_by_reason:
        reasons = ", ".join(f"{n} {reason}" for reason, n in summary.dead_letters_by_reason.items())
        console.print(f"[bold]dead letters[/] {reasons}")
    console.print(f"[bold]data[/]    {store_url}  (tables articles, ticker_items, stories, dead_letters)")
    console.print("[bold]metrics[/] " + ", ".join(f"{s.name} http://127.0.0.1:{s.metrics_port}/metrics" for s in services))
    console.print(f"done in {elapsed:.1f}s")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

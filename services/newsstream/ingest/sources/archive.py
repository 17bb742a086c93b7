"""Replay archives and backfills: JSONL files and directories of pages.

* ``--rate N`` caps items per second (a token bucket; bursts up to one second's worth).
* A rich progress bar shows items, items/s and errors (off when not a TTY or ``--no-progress``).
* Resumable: per file, the number of the last line (or page) whose events the
  broker acknowledged is kept in the state file (:class:`SourceState`
  checkpoints), written after every flush and when the run is interrupted
  (Ctrl-C, SIGTERM, task cancellation: the pending events are flushed first).
  A resumed run starts after that line, so nothing is emitted twice; only a
  hard kill between a flush and its checkpoint write can repeat up to one
  batch, with the same ids (harmless downstream).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from newsstream.contract import wire
from newsstream.ingest.events import (
    event_from_json_line,
    events_from_page_text,
    page_text,
    read_jsonl,
)
from newsstream.ingest.sources.base import STAGE
from newsstream.ingest.sources.page import page_outcome
from newsstream.ingest.sources.runner import EventSink
from newsstream.ingest.sources.state import SourceState
from newsstream.ingest.sources.textutil import decode_body
from newsstream.text.wording import counted

PAGE_SUFFIXES = {".txt", ".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class RateLimiter:
    """Token bucket: ``rate`` per second, bursts up to ``rate`` (at least 1)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate or 1.0)
        self.tokens = self.capacity if rate else 0.0
        self.stamp = time.monotonic()

    async def acquire(self) -> None:
        if not self.rate:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass
class ReplayReport:
    items: int = 0  # inputs read (lines, pages)
    emitted: int = 0  # raw events emitted
    dead_letters: int = 0
    skipped: int = 0  # inputs skipped because a previous run had done them
    files: int = 0
    interrupted: bool = False

    def summary(self) -> str:
        head = "interrupted (run again to resume): " if self.interrupted else ""
        return head + (f"replayed {counted(self.items, 'input')} from {counted(self.files, 'file')}: "
                       f"{counted(self.emitted, 'event')}, {counted(self.dead_letters, 'dead letter')}, "
                       f"{self.skipped} skipped (already done)")


def input_files(paths: list[Path]) -> list[Path]:
    """JSONL files and page files; directories are walked (sorted, so resumes see the same order)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES | JSONL_SUFFIXES)
        else:
            out.append(path)
    return out


def _units(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """(position, input ref, raw bytes): JSONL lines, or the page as position 1."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        for number, line in read_jsonl(str(path)):
            yield number, f"{path}:{number}", line
    else:
        yield 1, str(path), path.read_bytes()


def count_units(path: Path) -> int:
    if path.suffix.lower() in JSONL_SUFFIXES:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return 1


def checkpoint_name(path: Path) -> str:
    return f"replay:{path.resolve()}"


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self._progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8.1f} items/s"), TextColumn("errors: {task.fields[errors]}"),
                TimeElapsedColumn(), transient=False,
            )
            self._task = self._progress.add_task("replay", total=total, rate=0.0, errors=0)
            self._start = time.monotonic()
            self._progress.start()

    def advance(self, done: int, errors: int) -> None:
        if self._progress is not None:
            elapsed = max(time.monotonic() - self._start, 1e-6)
            self._progress.update(self._task, completed=done, rate=done / elapsed, errors=errors)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


async def replay(
    paths: list[Path],
    sink: EventSink,
    state: SourceState | None,
    *,
    rate: float | None = None,
    progress: bool = False,
    source: str | None = None,
    tz: ZoneInfo = ZoneInfo("UTC"),
    batch: int = 500,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Replay ``paths``; pass ``report`` to keep the counts when the run is interrupted."""
    report = report if report is not None else ReplayReport()
    files = input_files(paths)
    report.files = len(files)
    done_before = {f: (state.checkpoint(checkpoint_name(f)) if state else 0) for f in files}
    total = sum(count_units(f) for f in files)
    bar = _Progress(progress, total)
    limiter = RateLimiter(rate)
    fetched_at = wire.utcnow()
    done = 0
    try:
        for path in files:
            name, skip = checkpoint_name(path), done_before[path]
            position, pending = skip, 0
            try:
                for pos, ref, raw in _units(path):
                    if pos <= skip:
                        report.skipped += 1
                        done += 1
                        continue
                    await limiter.acquire()
                    await _one(path, ref, raw, sink, report, source=source, tz=tz, fetched_at=fetched_at)
                    report.items += 1
                    done += 1
                    position, pending = pos, pending + 1
                    if pending >= batch:
                        await _checkpoint(sink, state, name, position)
                        pending = 0
                    bar.advance(done, report.dead_letters)
            finally:
                # Runs on normal completion and on interruption (CancelledError, KeyboardInterrupt):
                # flush what was sent, and only if the broker acknowledged it, record the position.
                if position > skip:
                    await _checkpoint(sink, state, name, position)
    finally:
        bar.advance(done, report.dead_letters)
        bar.stop()
    return report


async def _checkpoint(sink: EventSink, state: SourceState | None, name: str, position: int) -> None:
    await sink.flush()
    if state is not None:
        state.set_checkpoint(name, position)


async def _one(
    path: Path, ref: str, raw: bytes, sink: EventSink, report: ReplayReport, *, source: str | None, tz: ZoneInfo,
    fetched_at: datetime,
) -> None:
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            events = [event_from_json_line(raw, fetched_at)]
            letters = []
        elif suffix == ".txt":
            events = events_from_page_text(page_text(raw), source=source or path.stem, tz=tz, fetched_at=fetched_at)
            letters = [] if events else [wire.dead_letter(raw, stage=STAGE, reason="empty_page",
                                                          error="no article text and no ticker lines found", input_ref=ref)]
        else:
            out = page_outcome(decode_body(raw).text, source=source or path.stem, url=None, fetched_at=fetched_at,
                               tz=tz, payload=raw)
            events, letters = out.events, out.dead_letters
    except Exception as exc:
        events, letters = [], [wire.dead_letter_for(raw, exc, stage=STAGE, input_ref=ref)]
    for event in events:
        await sink.emit(event, input_ref=ref)
    for letter in letters:
        await sink.emit_dead_letter(letter)
    report.emitted += len(events)
    report.dead_letters += len(letters)

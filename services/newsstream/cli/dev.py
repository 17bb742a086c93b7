"""Development tools: the embedded broker and the end-to-end demo (not for production)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Annotated

import typer

from newsstream.cli.common import Bootstrap, settings_from


def broker(
    port: Annotated[int | None, typer.Option(
        help="Port to listen on (127.0.0.1); default: the port of KAFKA_BOOTSTRAP_SERVERS (9092), where the other commands look.",
    )] = None,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) until Ctrl-C / SIGTERM."""
    from newsstream.platform.broker import EmbeddedBroker, bootstrap_port

    if port is None:
        port = bootstrap_port(settings_from().kafka_bootstrap_servers)
    embedded = EmbeddedBroker(port=port).start()
    typer.echo(f"embedded broker listening on {embedded.bootstrap} (in-memory; Ctrl-C stops it)")

    class _Stop(Exception):
        pass

    def on_signal(signum: int, _frame: object) -> None:
        # Only raise here: stopping (which waits on the child) must happen
        # after the interrupted Popen.wait() has released its lock.
        raise _Stop

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        code = embedded.wait()
    except _Stop:
        code = 0
    finally:
        embedded.stop()
    raise SystemExit(code)


def samples(
    into: Annotated[Path, typer.Argument(help="Directory to copy them to (created if missing).")] = Path("samples"),
) -> None:
    """Copy the bundled sample pages and wire.jsonl into a directory, to try `ingest page` and `ingest jsonl` on."""
    from newsstream.cli.demo import SAMPLES

    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(SAMPLES.glob("*")):
        if path.suffix in (".txt", ".jsonl"):
            shutil.copyfile(path, into / path.name)
            typer.echo(str(into / path.name))


def demo(
    bootstrap: Bootstrap = None,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep broker, worker and sink up afterwards.")] = False,
    store: Annotated[str | None, typer.Option(help="Store URL; default a fresh SQLite file under .newsstream/demo/.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every item to be stored.")] = 90.0,
) -> None:
    """The whole pipeline on the embedded broker with bundled sample pages, then a summary."""
    from newsstream.cli.demo import run_demo

    raise SystemExit(run_demo(bootstrap=bootstrap, store_url=store, keep_running=keep_running, timeout=timeout))

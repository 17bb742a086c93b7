"""Development tools: the embedded broker and the end-to-end demo (not for production)."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from newsstream.cli.common import Bootstrap


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) until Ctrl-C / SIGTERM."""
    from newsstream.platform.broker import EmbeddedBroker

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


def demo(
    bootstrap: Bootstrap = None,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep broker, worker and sink up afterwards.")] = False,
    store: Annotated[str | None, typer.Option(help="Store URL; default a fresh SQLite file under .newsstream/demo/.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every item to be stored.")] = 90.0,
) -> None:
    """The whole pipeline on the embedded broker with bundled sample pages, then a summary."""
    from newsstream.cli.demo import run_demo

    raise SystemExit(run_demo(bootstrap=bootstrap, store_url=store, keep_running=keep_running, timeout=timeout))

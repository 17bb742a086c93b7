"""`newsstream broker` runs the embedded Tansu broker and stops it cleanly on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from newsstream.platform.broker import free_port

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_broker_command_serves_kafka_and_stops_on_signal(sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "newsstream", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        await admin.start()
        assert isinstance(await admin.list_topics(), list)
        await admin.close()
    finally:
        proc.send_signal(sig)
        assert proc.wait(15) == 0
    deadline = time.monotonic() + 5
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(port), "the Tansu process outlived the command"

"""The worker's consumer waits per fetch what the settings say, not faust's hard-coded 1.5 s.

The consumer is the one faust builds for the worker (not started: nothing
here talks to Kafka); ``bench/latency.py`` measures what the wait costs on the
real broker. The two library facts the work-around stands on are pinned, so
an upgrade that moves either fails here.
"""

from __future__ import annotations

import inspect

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from newsstream.platform.settings import Settings
from newsstream.worker.app import build_app


async def _worker_consumer(fetch_max_wait_ms: int) -> aiokafka.AIOKafkaConsumer:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=fetch_max_wait_ms)
    app = build_app(settings, changelog_tail_check=False)
    thread = app.consumer._new_consumer_thread()
    return thread._create_worker_consumer(app.transport)


async def test_the_worker_consumer_waits_the_configured_fetch_wait() -> None:
    assert (await _worker_consumer(40))._fetch_max_wait_ms == 40
    assert (await _worker_consumer(500))._fetch_max_wait_ms == 500


def test_faust_still_hard_codes_its_fetch_wait_and_aiokafka_reads_it_at_start() -> None:
    # If faust makes the wait a setting, use it and drop newsstream.worker.fetch_wait.
    assert "fetch_max_wait_ms=1500" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)

"""faust's worker consumer, with the fetch wait taken from our settings instead of a hard-coded 1.5 s.

faust 0.15 builds the worker's one consumer (every agent's topics) with
``fetch_max_wait_ms=1500`` written into ``_create_worker_consumer``; no app
setting reaches it. Apache Kafka answers a fetch as soon as one record is
there, so the constant costs nothing on it; the embedded broker (Tansu)
holds every fetch for the whole wait (measured: a record produced while a
fetch is pending arrives after p50 435 ms at 1,500 ms, 22 ms at 100 ms,
2 ms at 10 ms). Three worker hops paid it once each: a breaking-news line
took 2 s from produce to store.

The fix sets aiokafka's fetch wait on the consumer faust builds, before it
starts (aiokafka hands ``_fetch_max_wait_ms`` to its fetcher in ``start()``).
``tests/unit/test_fetch_wait.py`` pins both facts, so an upgrade of either
library that moves them fails a test instead of bringing the wait back.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


def install_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Make ``app``'s worker consumer wait at most ``fetch_max_wait_ms`` per fetch.

    Call before anything asks the app for its transport (``app.topic`` does)."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WorkerConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = WorkerConsumer

    app.transport = Transport(app.conf.broker_consumer, app)

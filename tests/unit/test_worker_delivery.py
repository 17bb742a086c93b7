"""The worker's reaction to a record the broker refuses: exit before faust can commit past it."""

from __future__ import annotations

import asyncio

import pytest

from newsstream.worker import delivery as worker_app


def test_a_refused_record_stops_the_worker_and_a_delivered_one_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(worker_app, "_hard_exit", exits.append)
    loop = asyncio.new_event_loop()
    try:
        delivered, cancelled, refused = loop.create_future(), loop.create_future(), loop.create_future()
        delivered.set_result("metadata")
        cancelled.cancel()
        refused.set_exception(RuntimeError("MessageSizeTooLarge"))
        for delivery in (delivered, cancelled):
            worker_app.fail_stop_on_delivery_error(delivery)
        assert exits == []
        worker_app.fail_stop_on_delivery_error(refused)
        assert exits == [worker_app.DELIVERY_FAILURE_EXIT_CODE]
    finally:
        loop.close()

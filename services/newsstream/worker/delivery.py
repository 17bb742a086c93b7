"""How the worker writes: every record awaited into the producer, fail-stop when the broker refuses one.

All three stages write through one :class:`Output`, so the delivery rule and
the dead-letter format are the same wherever a record comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from newsstream.contract import topics, wire
from newsstream.errors import EXIT_DELIVERY_FAILURE
from newsstream.platform import metrics
from newsstream.worker.envelope import EnvelopeItem

log = logging.getLogger(__name__)

SERVICE = "worker"

# Replaced in tests; os._exit skips faust's shutdown, which would commit offsets.
_hard_exit = os._exit
DELIVERY_FAILURE_EXIT_CODE = EXIT_DELIVERY_FAILURE


def fail_stop(exc: BaseException, what: str) -> None:
    """Stop the process at once, before faust can commit past a record that was not written.

    faust acks a batch once its records are handed to the producer and
    commits after flushing it, and aiokafka's flush waits but never raises:
    a refused record would be committed past and lost. Exiting before the
    next commit makes the batch come back to whoever takes the partition
    over (fail-stop, as Kafka Streams does by default).
    """
    log.critical("%s (%s: %s): exiting without committing", what, type(exc).__name__, exc,
                 extra={"error_type": type(exc).__name__})
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a closed stream must not stop the exit
            handler.flush()
    _hard_exit(DELIVERY_FAILURE_EXIT_CODE)


def fail_stop_on_delivery_error(delivery: asyncio.Future[Any]) -> None:
    """Done-callback of every record the worker produces: a record the broker
    finally refused (after the producer's own retries) stops the process.

    Awaiting the deliveries inside the batch loop instead stalled the worker
    after a restart; a callback adds no wait.
    """
    if delivery.cancelled() or delivery.exception() is None:
        return
    fail_stop(delivery.exception(), "a record the worker produced was refused by the broker")  # type: ignore[arg-type]


class Output:
    """The worker's producer side: ``send`` any record, ``dead_letter`` an input that failed."""

    def __init__(self, app: Any) -> None:
        self._app = app  # the faust app: its producer exists only once the app runs

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        try:
            delivery = await self._app.producer.send(topic, key, value, partition, None, None)
        except Exception as exc:  # refused before it left (too large, producer closed): never commit past it
            fail_stop(exc, f"a record for {topic} could not be handed to the producer")
            raise  # only reached when _hard_exit is replaced (tests)
        delivery.add_done_callback(fail_stop_on_delivery_error)  # type: ignore[attr-defined]

    async def dead_letter(
        self, topic: str, partition: int, offset: int, payload: bytes | None, exc: BaseException,
        item_id: str | None = None, input_ref: str | None = None,
    ) -> None:
        """The input at ``topic[partition]@offset`` could not be processed: to the dead-letter topic, counted and logged."""
        letter = wire.dead_letter_for(
            payload or b"", exc, stage=SERVICE, source_topic=topic, source_partition=partition, source_offset=offset,
            input_ref=input_ref,
        )
        await self.send(topics.DEAD_LETTERS, letter.id.encode(), wire.dumps(letter))
        metrics.DEAD_LETTERS.labels(SERVICE, topic, letter.reason).inc()
        log.warning(
            "dead letter: %s (%s) topic=%s partition=%s offset=%s%s",
            letter.reason, letter.error[:200], topic, partition, offset, f" read at {input_ref}" if input_ref else "",
            extra={
                "item_id": item_id, "topic": topic, "partition": partition, "offset": offset, "input_ref": input_ref,
                "reason": letter.reason, "dead_letter_id": letter.id, "error_type": type(exc).__name__,
            },
        )

    async def item_dead_letter(self, envelope: Any, item: EnvelopeItem, exc: BaseException) -> None:
        """An item of an envelope (stage 2 or 3) could not be processed.

        The dead letter points at the item's raw record, which can be
        re-driven (``newsstream dlq replay``), not at the worker's internal
        topic; ``input_ref`` says where the stage read it, and the payload is
        the enriched event. An envelope of an older worker, without the raw
        coordinates, gives the envelope's and the whole line.
        """
        if item.origin is None:
            await self.dead_letter(envelope.topic, envelope.partition, envelope.offset, item.line, exc, item.item_id)
            return
        await self.dead_letter(*item.origin, item.value, exc, item.item_id,
                               input_ref=f"{envelope.topic}[{envelope.partition}]@{envelope.offset}")

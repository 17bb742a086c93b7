"""faust's table recovery, with the stream partitions resumed only after the agents' queues are cleared.

faust 0.15 ends a recovery (``Recovery.on_recovery_completed``) in this order:

1. resume the stream partitions (the fetcher starts delivering their records
   into the agents' in-memory queues),
2. seek them to the committed offsets (a broker round trip),
3. ``flow_control.resume()``, which **clears every agent queue**.

Records fetched between 1 and 3 are dropped from the queues, never processed
and never acked, while the consumer's position has already moved past them
(faust-streaming/faust#596, open). The worker then sits idle on a partition
whose last records it never saw, or stops committing at the gap. Measured
here: after a kill -9 with a backlog on stage 3's one-partition input, 1 in
3 restarts under CPU load lost the last envelopes (hundreds of items).

The fix is the order: seek, clear, and only then resume the partitions, so
nothing can be fetched into a queue that is about to be cleared.
"""

from __future__ import annotations

import asyncio

from faust.tables import TableManager
from faust.tables.recovery import Recovery


class OrderedResumeRecovery(Recovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """faust's ``on_recovery_completed`` with the stream partitions resumed last."""
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table]))
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} param {generation_id}")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        self.completed.set()
        # Clears the agents' queues: the stream partitions are still paused, so
        # nothing fetched from them since the seek can be in a queue yet.
        self.app.flow_control.resume()
        consumer.resume_flow()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        await self.app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class OrderedResumeTableManager(TableManager):
    """faust's table manager with :class:`OrderedResumeRecovery`; pass as ``faust.App(TableManager=...)``."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = OrderedResumeRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery

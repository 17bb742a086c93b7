"""Stream time: the newest event time a stage has seen, as in Kafka Streams.

Windows run on event time, and "now" for forgetting state is the stream time,
so a replay of an old archive keeps its state and gives the verdicts the live
stream gave (and ``newsstream eval stream`` gives). It never runs ahead of the
wall clock by more than a day: one record dated 2099 would otherwise expire
every window at the next timer tick.
"""

from __future__ import annotations

import time

from newsstream.platform import metrics

MAX_STREAM_TIME_AHEAD_S = 24 * 3600.0


def advanced(stream_time: float, event_time: float) -> float:
    """The stream time once an item of ``event_time`` (epoch seconds) has been seen."""
    limit = time.time() + MAX_STREAM_TIME_AHEAD_S
    if event_time > limit:
        metrics.EVENT_TIME_CLAMPED.inc()
        event_time = limit
    return max(stream_time, event_time)

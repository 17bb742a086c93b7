"""Per-source Prometheus metrics. Labels are bounded: the source name (from
the registry) and a small ``kind`` vocabulary, never URLs or item ids.

* ``newsstream_source_polls_total{source,kind}``     polls (kind: ok, not_modified, error)
* ``newsstream_source_poll_errors_total{source,kind}`` errors and dead letters by kind (timeout,
  http_status, redirect_loop, too_large, broken_xml, invalid_encoding, empty_page, ...)
* ``newsstream_source_cleaned_total{source,kind}``   inputs repaired rather than rejected
  (kind: invisible_chars, missing_date, missing_link, decoded_charset, loose_xml)
* ``newsstream_source_last_success_timestamp_seconds{source,kind}``  Unix time of the last good poll
* ``newsstream_source_fetch_seconds{source,kind}``   fetch latency (kind: feed, page, ticker)

Items emitted per source are ``newsstream_source_items_total{source,kind}``
(and ``newsstream_source_last_item_timestamp_seconds``) in
:mod:`newsstream.platform.metrics`, counted by the producer for every event, so
they are not repeated here. Push requests are counted under the token's
name as ``source`` (``poll_errors_total{kind="push_401"}`` ...).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter("newsstream_source_polls_total", "Polls per source by outcome", ["source", "kind"])
ERRORS = Counter(
    "newsstream_source_poll_errors_total", "Fetch, parse and item errors per source by kind", ["source", "kind"]
)
CLEANED = Counter("newsstream_source_cleaned_total", "Inputs repaired instead of rejected", ["source", "kind"])
LAST_SUCCESS = Gauge(
    "newsstream_source_last_success_timestamp_seconds", "Unix time of the last successful poll", ["source", "kind"]
)
FETCH_SECONDS = Histogram(
    "newsstream_source_fetch_seconds",
    "Latency of one fetch (including redirects)",
    ["source", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def error(source: str, kind: str) -> None:
    ERRORS.labels(source, kind).inc()


def cleaned(source: str, kind: str, n: int = 1) -> None:
    if n:
        CLEANED.labels(source, kind).inc(n)


def success(source: str, kind: str) -> None:
    LAST_SUCCESS.labels(source, kind).set(time.time())


def value(counter: Counter, source: str, kind: str) -> float:
    """Current value of one labelled counter (for reports and tests)."""
    return counter.labels(source, kind)._value.get()

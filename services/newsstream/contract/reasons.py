"""The reason codes of dead letters: a closed set, published as the enum of ``DeadLetter.reason``.

The one place they are listed. Every code the code base emits is here: the
reasons of :class:`~newsstream.errors.DataError` and of
:func:`~newsstream.contract.wire.describe_error`, the outcomes of bad input at
the ingest edge, and the kinds of a failed fetch of a feed item's page
(``FetchError.kind``) that become the reason when the entry has no text of
its own. A test reads the sources for the codes they emit and fails on one
that is missing here; docs/contract.md lists them with the meanings below.
"""

from __future__ import annotations

from typing import Literal

DEAD_LETTER_REASONS: dict[str, str] = {
    # The input cannot be read or does not fit the contract.
    "invalid_json": "not JSON",
    "invalid_encoding": "not UTF-8 text (or not its declared charset)",
    "validation_error": "does not fit the schema: a field missing, unknown at the edge or of the wrong type, a timestamp without an offset",
    "invalid_id": "an id a store cannot hold as its key (a NUL character)",
    "invalid_input": "bad input of no more specific kind",
    "empty_text": "nothing left once invisible characters are removed",
    "empty_page": "a page with neither article text nor ticker lines",
    "empty_item": "a feed entry with neither text nor link",
    "bad_shape": "a ticker endpoint's JSON is not a list of lines",
    "timestamp_out_of_range": "a timestamp before 1900 or a day or more in the future",
    "too_large": "over NEWSSTREAM_MAX_RECORD_BYTES once serialised, or a page over the fetch size limit",
    # A feed entry without text of its own whose page could not be fetched.
    "bad_url": "the entry's link is not an http(s) URL",
    "redirect_loop": "the page's redirects loop",
    "too_many_redirects": "the page redirects too often",
    "robots_disallowed": "robots.txt disallows the page",
    "http_status": "the page answered an HTTP error status",
    "http_error": "the HTTP exchange for the page failed",
    "timeout": "the page did not answer in time (after the retries of later polls)",
    "connection": "the page's server could not be reached (after the retries of later polls)",
    # Processing.
    "processing_error": "an error no other code describes while processing the item (a bug, or a case the code does not handle)",
    "store_rejected": "the database refused the row (a constraint, a value it cannot hold)",
}

DeadLetterReason = Literal[tuple(DEAD_LETTER_REASONS)]  # type: ignore[valid-type]

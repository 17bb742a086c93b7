"""One exception hierarchy for newsstream, so every service can tell three kinds of failure apart.

* :class:`DataError` - the *input* is bad (it carries a short ``reason`` code):
  it becomes a dead letter with that reason and the service goes on. Retrying
  the same input can never succeed.
* :class:`InfrastructureError` - something the service depends on (Kafka, the
  database, a news site) failed: retried with backoff, never dead-lettered.
* :class:`ConfigError` - a configuration mistake: the command exits with one
  line that names the setting to fix.

Anything else that escapes (``TypeError``, ``AttributeError``, ...) is a bug in
newsstream: it is neither retried nor turned into a dead letter, so it shows up
loudly instead of disguised as bad data. Each package keeps its own
exceptions (``FetchError``, ``RegistryError``, ...) as subclasses of these.
"""

from __future__ import annotations


class NewsstreamError(Exception):
    """Base of every exception newsstream raises on purpose."""


class DataError(NewsstreamError):
    """The input itself is bad; ``reason`` is the dead letter's reason code (e.g. ``invalid_json``)."""

    reason = "invalid_input"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class InfrastructureError(NewsstreamError):
    """A dependency failed (broker, database, HTTP source); worth another try later."""


class ConfigError(NewsstreamError):
    """A configuration mistake; the message says what to change."""


# Exit codes of every command, whichever service it runs.
EXIT_CONFIG = 2  # a configuration mistake (also click's code for a bad flag)
EXIT_UNAVAILABLE = 69  # a dependency (Kafka, the database) did not answer: sysexits' EX_UNAVAILABLE
EXIT_DELIVERY_FAILURE = 70  # the broker refused a record: stopped before committing past it (EX_SOFTWARE)


def exit_code_for(exc: NewsstreamError) -> int:
    return EXIT_UNAVAILABLE if isinstance(exc, InfrastructureError) else EXIT_CONFIG


# Exceptions that only a bug in our own code raises: never bad data, never transient.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError, NotImplementedError, ImportError,
)


def is_programming_error(exc: BaseException) -> bool:
    return isinstance(exc, PROGRAMMING_ERRORS) and not isinstance(exc, NewsstreamError)

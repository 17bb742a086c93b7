"""newsstream: event-streaming ingestion for news (imported as ``newsstream``)."""

__version__ = "0.1.0"

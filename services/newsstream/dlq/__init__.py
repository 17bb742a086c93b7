"""The dead-letter topic after the fact: select dead letters and re-drive their raw events (``newsstream dlq``)."""

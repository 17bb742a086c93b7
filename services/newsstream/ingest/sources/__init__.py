"""Producers for real sources: feeds, article pages, ticker endpoints, HTTP push and replay.

Layout (pure parts first, I/O shells last):

* :mod:`.urls`        URL canonicalisation (one article, one URL, one id)
* :mod:`.textutil`    decoding fetched bytes, HTML to visible text
* :mod:`.pages`       article pages: trafilatura extraction + the page parser's ticker
* :mod:`.feeds`       RSS/Atom with feedparser
* :mod:`.ticker_feed` ticker endpoints (JSON or a text/HTML block)
* :mod:`.http`        the shared, polite fetcher (per-host limits, robots.txt, conditional GET)
* :mod:`.state`       durable state (seen items, validators, replay checkpoints) in SQLite
* :mod:`.metrics`     ``newsstream_source_*`` Prometheus metrics
* :mod:`.registry`    the TOML source registry
* :mod:`.runner`      polling loop: one task per source, backoff, exactly-once hand-off
* :mod:`.push`        the HTTP push endpoint (aiohttp)
* :mod:`.replay`      JSONL / directory replay with rate limit, progress and resume
"""

"""Topic names and layout: versioned names are part of the public contract."""

from __future__ import annotations

from dataclasses import dataclass

RAW_ARTICLES = "news.raw.articles.v1"
RAW_TICKER = "news.raw.ticker.v1"
ENRICHED_ARTICLES = "news.enriched.articles.v1"
ENRICHED_TICKER = "news.enriched.ticker.v1"
DEAD_LETTERS = "news.dlq.v1"
# Story state, keyed by story id and compacted: the latest event per key is the story.
STORIES = "news.stories.v1"

RAW_TOPICS = (RAW_ARTICLES, RAW_TICKER)
ENRICHED_TOPICS = (ENRICHED_ARTICLES, ENRICHED_TICKER)

RAW_TOPIC_BY_KIND = {"article": RAW_ARTICLES, "ticker": RAW_TICKER}
ENRICHED_TOPIC_BY_KIND = {"article": ENRICHED_ARTICLES, "ticker": ENRICHED_TICKER}

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]
    # The partition count is part of the layout (keys co-partitioned with state,
    # or one ordered partition): an existing topic with another count stops the
    # services at start-up. False: any count works.
    checked: bool = True


def topic_specs(partitions: int, replication_factor: int = 1) -> list[TopicSpec]:
    """The topics every service needs, with explicit partition counts.

    Raw and enriched topics share one partition count so that a key stays on
    the same partition number end to end; the dead-letter topic has few
    partitions because it is low volume and read in order by people.
    """
    del replication_factor  # applied by the admin call; kept in the signature for symmetry
    retention = {"retention.ms": str(WEEK_MS)}
    return [
        TopicSpec(RAW_ARTICLES, partitions, retention),
        TopicSpec(RAW_TICKER, partitions, retention),
        TopicSpec(ENRICHED_ARTICLES, partitions, retention),
        TopicSpec(ENRICHED_TICKER, partitions, retention),
        TopicSpec(DEAD_LETTERS, 1, {"retention.ms": str(4 * WEEK_MS)}, checked=False),
        TopicSpec(STORIES, partitions, {"cleanup.policy": "compact"}),
    ]

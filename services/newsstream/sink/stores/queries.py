"""Read-side queries shared by both stores: row counts and the demo's listings."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field, field_validator

from newsstream.sink.stores.tables import ARTICLES, DEAD_LETTERS, STORIES, TICKER_ITEMS


class StoreSummary(BaseModel):
    """Row counts of a store, for the CLI, tests and health reporting."""

    articles: int = 0
    ticker_items: int = 0
    threads: int = Field(default=0, description="Distinct ticker thread ids.")
    duplicates: int = Field(default=0, description="Articles and ticker items whose duplicate_of is set (exact or near).")
    near_duplicates: int = Field(default=0, description="Of those, near (not exact) copies.")
    stories: int = 0
    multi_member_stories: int = Field(default=0, description="Stories with more than one member.")
    dead_letters: int = 0
    dead_letters_by_reason: dict[str, int] = Field(default_factory=dict)


SUMMARY_SQL = {
    ARTICLES: "SELECT count(*) FROM articles",
    TICKER_ITEMS: "SELECT count(*) FROM ticker_items",
    # The worker's stream thread (across fetches) when stage 3 ran, else the page's.
    "threads": "SELECT count(DISTINCT coalesce(stream_thread_id, thread_id)) FROM ticker_items",
    "duplicates": (
        "SELECT (SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL)"
        " + (SELECT count(*) FROM ticker_items WHERE duplicate_of IS NOT NULL)"
    ),
    "near_duplicates": (
        "SELECT (SELECT count(*) FROM articles WHERE duplicate_kind = 'near')"
        " + (SELECT count(*) FROM ticker_items WHERE duplicate_kind = 'near')"
    ),
    STORIES: "SELECT count(*) FROM stories",
    "multi_member_stories": "SELECT count(*) FROM stories WHERE member_count > 1",
    DEAD_LETTERS: "SELECT count(*) FROM dead_letters",
}
BY_REASON_SQL = "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason"

# {limit} is the dialect's placeholder ("?" or "$1").
DUPLICATES_SQL = """
SELECT 'article' AS kind, d.id, d.source, d.title AS text, f.id AS first_id, f.source AS first_source,
       coalesce(d.duplicate_kind, 'exact') AS duplicate_kind, d.duplicate_similarity AS similarity
  FROM articles d JOIN articles f ON f.id = d.duplicate_of
UNION ALL
SELECT 'ticker' AS kind, d.id, d.source, d.text, f.id AS first_id, f.source AS first_source,
       coalesce(d.duplicate_kind, 'exact') AS duplicate_kind, d.duplicate_similarity AS similarity
  FROM ticker_items d JOIN ticker_items f ON f.id = d.duplicate_of
ORDER BY 1, 2 LIMIT {limit}
"""
THREADS_SQL = """
SELECT coalesce(stream_thread_id, thread_id) AS thread_id, count(*) AS lines, min(source) AS source,
       min(attribution) AS attribution
  FROM ticker_items GROUP BY coalesce(stream_thread_id, thread_id) HAVING count(*) > 1
 ORDER BY lines DESC, thread_id LIMIT {limit}
"""
STORIES_SQL = """
SELECT id AS story_id, headline, member_count, sources FROM stories WHERE member_count > 1
 ORDER BY member_count DESC, id LIMIT {limit}
"""


class DuplicateRow(BaseModel):
    kind: str
    id: str
    source: str
    text: str
    first_id: str
    first_source: str
    duplicate_kind: str = "exact"
    similarity: float | None = None


class ThreadRow(BaseModel):
    thread_id: str
    lines: int
    source: str
    attribution: str | None


class StoryRow(BaseModel):
    story_id: str
    headline: str
    member_count: int
    sources: list[str]

    @field_validator("sources", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:  # SQLite returns the JSON column as text
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value

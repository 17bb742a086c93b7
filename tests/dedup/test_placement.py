"""Stage 3's building blocks: the placement of one item, write-collecting tables, the rebuilt band index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup.neardup import NearDupIndex
from newsstream.dedup.placement import CHANGELOGGED_TABLES, Placement, PlacementConfig
from newsstream.enrich.item import enrich
from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig
from newsstream.worker.changelog import ChangelogWrites

from .texts import (
    LIGHT_EDIT_BODY,
    QUAKE_TICKER_1,
    QUAKE_TICKER_2,
    WATER_BODY,
    WIRE_BODY,
)

# The word-based mechanics (NEWSSTREAM_EMBEDDINGS=off): tests/dedup/test_stories_meaning.py covers vectors.
WORDS = PipelineConfig(embeddings=False)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _article(id_: str, body: str, minutes: int, source: str = "wire") -> RawArticle:
    at = T0 + timedelta(minutes=minutes)
    return RawArticle(id=id_, source=source, title=f"عنوان {id_}", body=body, published_at=at, fetched_at=at)


def _ticker(id_: str, text: str, minutes: int, continues: bool = False) -> RawTickerItem:
    at = T0 + timedelta(minutes=minutes)
    return RawTickerItem(id=id_, source="tv", time=at.strftime("%H:%M"), published_at=at, text=text,
                         attribution="آفاد", continues_previous=continues, thread_id=f"th_{id_}", fetched_at=at)


def _placed(placement: Placement, raw, exact_of: str | None = None):
    return placement.place(enrich(raw, T0), exact_of).enriched.enrichment


def test_placed_items_carry_duplicate_thread_and_story_fields() -> None:
    placement = Placement()
    first = _placed(placement, _article("a1", WIRE_BODY, 0))
    near = _placed(placement, _article("a2", LIGHT_EDIT_BODY, 30, source="outlet-b"))
    exact = _placed(placement, _article("a3", WIRE_BODY, 40, source="outlet-c"), exact_of="a1")
    other = _placed(placement, _article("a4", WATER_BODY, 50))
    assert (first.duplicate_of, first.duplicate_kind, first.duplicate_similarity) == (None, None, None)
    assert (near.duplicate_of, near.duplicate_kind) == ("a1", "near") and 0.5 <= near.duplicate_similarity < 1.0
    assert (exact.duplicate_of, exact.duplicate_kind, exact.duplicate_similarity) == ("a1", "exact", 1.0)
    assert first.story_id == near.story_id == exact.story_id != other.story_id
    assert first.thread_id is None  # articles have no thread

    t1 = _placed(placement, _ticker("t1", QUAKE_TICKER_1, 60))
    t2 = _placed(placement, _ticker("t2", QUAKE_TICKER_2, 70, continues=True))
    assert t1.thread_id == t2.thread_id == "th_t1" and t1.story_id == t2.story_id


def test_settings_reach_the_placement_config() -> None:
    from newsstream.platform.settings import Settings

    config = PlacementConfig.from_settings(Settings(near_threshold=0.7, near_window_hours=2, story_threshold=0.3,
                                                    story_window_hours=6, thread_followup_minutes=5,
                                                    thread_continuation_hours=1))
    assert (config.near.threshold, config.near.window_s) == (0.7, 7200.0)
    assert (config.stories.threshold, config.stories.window_s) == (0.3, 21600.0)
    assert (config.threads.followup_window_s, config.threads.continuation_window_s) == (300.0, 3600.0)


def test_changelog_writes_send_each_changed_key_once_with_its_last_value() -> None:
    data: dict[str, object] = {"kept": 1, "gone": 2}
    writes = ChangelogWrites(lambda: data)
    writes["a"] = 1
    writes["a"] = 2
    del writes["gone"]
    writes["b"] = [1]
    assert data == {"kept": 1, "a": 2, "b": [1]} and writes.get("a") == 2 and "gone" not in writes
    assert writes.pending == 3
    assert sorted(writes.drain(), key=str) == [("a", 2), ("b", [1]), ("gone", None)]
    assert writes.drain() == [] and len(writes) == 3


def test_a_worker_that_recovers_only_the_changelogged_tables_places_items_the_same_way() -> None:
    """The worker does not changelog the LSH bands: it rebuilds them from the signatures."""
    items = [_article("a1", WIRE_BODY, 0), _article("a4", WATER_BODY, 5), _ticker("t1", QUAKE_TICKER_1, 10)]
    later = [_article("a2", LIGHT_EDIT_BODY, 30, source="outlet-b"), _ticker("t2", QUAKE_TICKER_2, 20, continues=True)]
    whole = Pipeline(WORDS)
    for raw in items:
        whole.process(raw)
    expected = [whole.process(raw).enriched.enrichment for raw in later]

    before = Pipeline(WORDS)
    for raw in items:
        before.process(raw)
    recovered = {name: dict(before.state[name]) for name in CHANGELOGGED_TABLES}
    restarted = Pipeline(WORDS)
    restarted.exact.update(before.exact)
    for name, mapping in recovered.items():
        restarted.state[name].update(mapping)
    assert not restarted.near.bands
    assert restarted.near.rebuild_bands() == 3  # the two articles and the ticker line
    assert restarted.near.bands == before.near.bands
    got = [restarted.process(raw).enriched.enrichment for raw in later]
    assert [(e.duplicate_of, e.thread_id, e.story_id) for e in got] == [
        (e.duplicate_of, e.thread_id, e.story_id) for e in expected
    ]
    assert got[0].duplicate_of == "a1"


def test_rebuilt_bands_are_the_bands_the_index_built() -> None:
    index = NearDupIndex()
    for n, body in enumerate((WIRE_BODY, WATER_BODY, LIGHT_EDIT_BODY)):
        index.check_and_add(f"a{n}", "article", body, float(n))
    bands = {k: list(v) for k, v in index.bands.items()}
    index.bands.clear()
    index.rebuild_bands()
    assert {k: list(v) for k, v in index.bands.items()} == bands


def test_a_common_word_keeps_a_bounded_postings_list() -> None:
    """Memory and cost per item stay flat however many stories share a word."""
    import random

    from newsstream.dedup.stories import StoryConfig

    placement = Placement()
    cap = StoryConfig().max_postings + 1
    rng = random.Random(0)
    for n in range(cap * 3):
        # Words no other line has, plus one every line has: one story per line, one common word.
        words = " ".join("".join(rng.choices("ابتثجحخدذرزسشصضطظعغفقكلمنهوي", k=6)) for _ in range(6))
        raw = _ticker(f"t{n}", f"ميناء {words}", n).model_copy(update={"attribution": None})  # no thread
        placement.place(enrich(raw, T0), None)
    assert len({story["story_id"] for story in placement.stories.stories()}) == cap * 3
    postings = [v for k, v in placement.stories.state.items() if k.startswith("w:")]
    assert max(len(p) for p in postings) == cap

"""Stories: one event across outlets, ticker threads and the articles that cover them; stable ids; restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup.stories import (
    StoryConfig,
    StoryEvent,
    content_terms,
    pair_similarity,
)
from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig
from newsstream.text.normalize import normalize_text

from .texts import (
    MATCH,
    MATCH_TITLE,
    QUAKE_A,
    QUAKE_A_TITLE,
    QUAKE_B,
    QUAKE_B_TITLE,
    QUAKE_TICKER_1,
    QUAKE_TICKER_2,
    WATER_BODY,
)

# The word-based mechanics (NEWSSTREAM_EMBEDDINGS=off): tests/dedup/test_stories_meaning.py covers vectors.
WORDS = PipelineConfig(embeddings=False)

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def article(id_: str, title: str, body: str, source: str, minutes: float) -> RawArticle:
    at = T0 + timedelta(minutes=minutes)
    return RawArticle(id=id_, source=source, title=title, body=body, published_at=at, fetched_at=at)


def ticker(id_: str, text: str, source: str, minutes: float, continues: bool = False) -> RawTickerItem:
    at = T0 + timedelta(minutes=minutes)
    return RawTickerItem(id=id_, source=source, time=at.strftime("%H:%M"), published_at=at, text=text,
                         attribution="آفاد", continues_previous=continues, thread_id=f"th_{id_}", fetched_at=at)


def stream() -> list[RawArticle | RawTickerItem]:
    return [
        ticker("t1", QUAKE_TICKER_1, "tv", 0),
        ticker("t2", QUAKE_TICKER_2, "tv", 12, continues=True),
        article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", 40),
        article("m1", MATCH_TITLE, MATCH, "sport", 50),
        article("a2", QUAKE_B_TITLE, QUAKE_B, "daily", 75),
        article("a3", "", QUAKE_A, "aggregator", 90),  # wire copy, no headline
        article("w1", "مؤتمر الأمم المتحدة للمياه", WATER_BODY, "agency", 100),
    ]


def test_one_event_from_tickers_and_outlets_is_one_story_and_other_events_are_not() -> None:
    pipeline = Pipeline(WORDS)
    done = {raw.id: pipeline.process(raw) for raw in stream()}
    quake = {done[i].story.story_id for i in ("t1", "t2", "a1", "a2", "a3")}
    assert len(quake) == 1
    assert done["m1"].story.story_id not in quake and done["w1"].story.story_id not in quake
    assert done["m1"].story.story_id != done["w1"].story.story_id

    assert done["t2"].story.joined_by == "thread"  # the thread's second line follows its first
    assert done["a1"].story.joined_by == "similarity"  # the article that covers the ticker thread
    assert done["a2"].story.joined_by == "similarity"  # another outlet, its own words
    assert done["a3"].story.joined_by == "duplicate"  # the wire copy


def test_story_events_carry_members_headline_times_and_sources() -> None:
    pipeline = Pipeline(WORDS)
    events = [pipeline.process(raw).story.event for raw in stream()]
    assert all(isinstance(e, StoryEvent) for e in events)
    created = [e for e in events if e and e.event == "created"]
    assert len(created) == 3  # quake, match, water

    quake = [e for e in events if e and e.story_id == created[0].story_id]
    assert [e.event for e in quake] == ["created", "updated", "updated", "updated", "updated"]
    assert [e.revision for e in quake] == [1, 2, 3, 4, 5]
    last = quake[-1]
    assert [m.id for m in last.members] == ["t1", "t2", "a1", "a2", "a3"]
    assert last.member_count == 5
    assert last.sources == ["agency", "aggregator", "daily", "tv"]
    assert last.first_seen == T0 and last.last_seen == T0 + timedelta(minutes=90)
    # A ticker-born story is headed by its thread until an article comes; then by the newest original article.
    assert quake[0].headline == f"آفاد: {QUAKE_TICKER_1}"
    assert quake[2].headline == QUAKE_A_TITLE and last.headline == QUAKE_B_TITLE
    assert last.members[-1].duplicate_of == "a1"
    # The event is JSON for the stories topic, keyed by story id.
    assert orjson.loads(last.model_dump_json())["story_id"] == last.story_id


def test_story_ids_are_stable_across_replays() -> None:
    first = [Pipeline(WORDS).process(raw).story.story_id for raw in stream()]
    again = [Pipeline(WORDS).process(raw).story.story_id for raw in stream()]
    assert first == again


def test_a_restarted_worker_recovers_state_without_false_new_story_events() -> None:
    items = stream()
    whole = Pipeline(WORDS)
    expected = [whole.process(raw).story for raw in items]

    before = Pipeline(WORDS)
    for raw in items[:4]:
        before.process(raw)
    # The changelog holds JSON: round-trip the state through it.
    recovered = Pipeline.restore(orjson.loads(orjson.dumps(before.snapshot())), WORDS)
    # At-least-once: the last item before the crash is delivered again.
    replayed = recovered.process(items[3])
    assert replayed.story.event is None  # no second "created"
    assert replayed.story.story_id == expected[3].story_id
    assert replayed.enriched.enrichment.duplicate_of is None  # not a duplicate of itself
    rest = [recovered.process(raw).story for raw in items[4:]]
    assert [u.story_id for u in rest] == [u.story_id for u in expected[4:]]
    assert [u.event.event if u.event else None for u in rest] == [u.event.event if u.event else None for u in expected[4:]]


def test_a_story_silent_for_longer_than_the_window_takes_no_new_members() -> None:
    config = PipelineConfig(embeddings=False, stories=StoryConfig(window_s=3600))
    pipeline = Pipeline(config)
    first = pipeline.process(article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", 0))
    late = pipeline.process(article("a2", QUAKE_B_TITLE, QUAKE_B, "daily", 180))
    assert late.story.story_id != first.story.story_id and late.story.event.event == "created"


def test_headlines_without_a_shared_word_do_not_join_however_alike_the_bodies() -> None:
    pipeline = Pipeline(WORDS)
    first = pipeline.process(article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", 0))
    other = pipeline.process(article("a2", "حصيلة جديدة للكارثة", QUAKE_B, "daily", 10))
    assert other.story.story_id != first.story.story_id
    ungated = Pipeline(PipelineConfig(embeddings=False, stories=StoryConfig(title_gate=False)))
    ungated.process(article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", 0))
    assert ungated.process(article("a2", "حصيلة جديدة للكارثة", QUAKE_B, "daily", 10)).story.joined_by == "similarity"


def test_pair_similarity_ranks_same_event_above_other_events_and_uses_entities() -> None:
    a, b, m = (content_terms(normalize_text(t)) for t in (QUAKE_A, QUAKE_B, MATCH))
    assert pair_similarity(a, b) > StoryConfig().threshold > pair_similarity(a, m)
    assert pair_similarity(a, m, ["ملاطية"], ["ملاطية"]) > pair_similarity(a, m)
    assert pair_similarity(set(), b) == 0.0


def test_expiry_forgets_silent_stories_and_their_index() -> None:
    pipeline = Pipeline(PipelineConfig(embeddings=False, stories=StoryConfig(window_s=1800)))  # kept 1.5 h
    for raw in stream():
        pipeline.process(raw)
    live = {story["story_id"] for story in pipeline.stories.stories()}
    expired = pipeline.expire((T0 + timedelta(hours=10)).timestamp())  # past the stories ttl only
    assert not [k for k in pipeline.stories.state if k.startswith(("s:", "w:", "i:", "h:", "d:"))]
    assert sorted(expired.stories) == sorted(live) and expired.keys > len(live)  # each story's end, to announce
    assert pipeline.near.items  # the near-dup window (48 h) is not over
    pipeline.expire((T0 + timedelta(hours=100)).timestamp())
    assert not pipeline.near.items and not pipeline.near.bands and not pipeline.near.common and not pipeline.threads.state
    assert not pipeline.exact


def test_entity_mentions_and_topics_of_the_enrichment_become_comparable_keys() -> None:
    from types import SimpleNamespace

    from newsstream.dedup.placement import entity_keys, topic_codes

    mentions = [
        SimpleNamespace(id="geonames:304922", text="ملاطية"),
        SimpleNamespace(id=None, text="آفاد"),
        "آفاد",
        SimpleNamespace(id="geonames:304922", text="مالاطيا"),
    ]
    assert entity_keys(mentions) == ("geonames:304922", normalize_text("آفاد"))
    assert entity_keys(None) == ()
    assert topic_codes([SimpleNamespace(code="medtop:06000000", score=0.9), "medtop:11000000"]) == (
        "medtop:06000000",
        "medtop:11000000",
    )


def test_a_story_window_longer_than_three_days_keeps_its_stories_that_long() -> None:
    """Before: stories were forgotten after a fixed 72 h, so a 100 h window silently ended at 72 h."""
    from newsstream.dedup.placement import PlacementConfig
    from newsstream.platform.settings import Settings

    stories = PlacementConfig.from_settings(Settings(story_window_hours=100)).stories
    assert stories.ttl_s > stories.window_s == 100 * 3600
    pipeline = Pipeline(PipelineConfig(stories=stories))
    first = pipeline.process(article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", 0))
    pipeline.expire((T0 + timedelta(hours=80)).timestamp())
    later = pipeline.process(article("a2", QUAKE_B_TITLE, QUAKE_B, "daily", 80 * 60))
    assert later.story.story_id == first.story.story_id and later.story.joined_by == "similarity"


def test_an_item_that_arrives_late_decays_by_its_distance_from_the_story_before_as_after() -> None:
    # The same pair of articles, 20 hours apart: the later one arriving second or the
    # earlier one arriving second (late) meets the same similarity.
    def joined(first_minutes: float, second_minutes: float) -> float:
        pipeline = Pipeline(WORDS)
        pipeline.process(article("a1", QUAKE_A_TITLE, QUAKE_A, "agency", first_minutes))
        return pipeline.process(article("a2", QUAKE_B_TITLE, QUAKE_B, "daily", second_minutes)).story.similarity

    at_once = joined(0, 0)
    after, before = joined(0, 20 * 60), joined(20 * 60, 0)
    assert after == before < at_once

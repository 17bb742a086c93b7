"""Stage 3's story state as the changelog holds it: compact, and the older layouts still read.

Synthetic int8 vectors (no encoder): items of one event lie close together,
other events far away, so the placements are known without the model.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest

from newsstream.dedup.stories import Stories, StoryConfig, profile_of
from newsstream.dedup.vectors import b85_bytes, b85_text

T0 = 1_764_057_600.0
RNG = np.random.default_rng(14)
EVENTS = RNG.normal(0, 40, (3, 384))
# Long texts (15+ content terms) and one short line, by event.
WORDS = [
    "earthquake magnitude struck coastal province rescue teams collapsed buildings villages "
    "aftershocks residents shelters hospitals injured volunteers governor",
    "parliament election ballots counted opposition coalition majority seats turnout "
    "candidates campaign results commission districts leaders",
    "football league champions trophy stadium supporters midfielder striker goalkeeper "
    "coach season derby penalty referee tournament",
]


def _vector(event: int, noise: float = 12.0) -> np.ndarray:
    return np.clip(np.rint(EVENTS[event] + RNG.normal(0, noise, 384)), -127, 127).astype(np.int8)


def _items() -> list[dict[str, Any]]:
    """(event, minutes, kind) -> the keyword arguments of Stories.assign."""
    plan = [(0, 0, "article"), (1, 5, "article"), (0, 20, "ticker"), (0, 30, "article"), (2, 40, "article"),
            (1, 50, "article"), (0, 60, "ticker"), (2, 70, "article"), (0, 80, "article"), (1, 95, "article")]
    items = []
    for n, (event, minutes, kind) in enumerate(plan):
        words = WORDS[event].split()
        text = " ".join(words[n % 3:] if kind == "article" else words[:6])
        items.append({
            "item_id": f"{kind[0]}{n}", "kind": kind, "source": f"outlet{n % 4}", "at": T0 + minutes * 60,
            "title": "" if kind == "ticker" else " ".join(words[:4]), "normalized_text": text,
            "thread_id": f"th{event}" if kind == "ticker" else None, "entities": [f"Q{event}", f"Q{10 + n % 2}"],
            "topics": [f"t{event}"], "vector": _vector(event),
        })
    return items


ITEMS = _items()


def _placements(stories: Stories, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for item in items:
        update = stories.assign(**item)
        out.append((update.story_id, update.similarity, update.joined_by,
                    None if update.event is None else update.event.model_dump_json()))
    return out


def _as_older(state: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The state as the previous version wrote it: a story as a dict of the event's fields
    (``story_id`` too, members as dicts, times as floats), its profiles as ``[item_id, terms,
    entities, title_ids, base64 vector, group, n_terms]`` (entities kept for long texts too, the
    group always written), and the entity document frequencies (``e:``)."""
    older: dict[str, Any] = {}
    for story in Stories(StoryConfig(), state).stories():
        story = orjson.loads(orjson.dumps(story))
        story["first_seen"], story["last_seen"] = float(story["first_seen"]), float(story["last_seen"])
        for member in story["members"]:
            member["at"] = float(member["at"])
        profiles = []
        for prof in map(profile_of, story["profiles"]):
            vector = None if prof.vector is None else base64.b64encode(prof.int8().tobytes()).decode()
            entities = next(sorted(i["entities"]) for i in items if i["item_id"] == prof.item_id)
            profiles.append([prof.item_id, list(prof.terms), entities, list(prof.title_ids), vector, prof.group,
                             prof.n_terms])
        story["profiles"] = profiles
        older[f"s:{story['story_id']}"] = story
    for item in items:
        for entity in item["entities"]:
            older[f"e:{entity}"] = [older.get(f"e:{entity}", [0])[0] + 1, item["at"]]
    older.update((key, value) for key, value in state.items() if not key.startswith("s:"))
    return older


def test_base85_is_the_standard_librarys() -> None:
    for n in (0, 1, 3, 4, 5, 383, 384):
        data = RNG.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert b85_text(data) == base64.b85encode(data).decode()
        assert b85_bytes(b85_text(data)) == data
    with pytest.raises(ValueError):
        b85_bytes('ab"cd')


def test_a_long_texts_profile_keeps_its_vector_in_base85_and_no_entities() -> None:
    stories = Stories()
    _placements(stories, ITEMS[:4])
    profiles = {p[0]: p for story in stories.stories() for p in story["profiles"]}
    article, line = profiles["a0"], profiles["t2"]
    assert len(article) == 3 and len(article[1]) == 480  # [item_id, vector, n_terms]: 384 bytes in 480 characters
    assert np.array_equal(profile_of(article).int8(), ITEMS[0]["vector"])
    assert profile_of(article).group == "a0" and profile_of(article).entities == ()
    # A short line keeps its terms and entities (the shared-word test) and its thread.
    assert profile_of(line).terms and list(profile_of(line).entities) == ["Q0", "Q10"] and line[-1] == "th0"


def test_with_vectors_no_document_frequencies_are_kept_of_terms_or_entities() -> None:
    stories = Stories()
    _placements(stories, ITEMS)
    assert not [key for key in stories.state if key.startswith(("w:", "d:", "e:", "n"))]
    words = Stories()  # embeddings off: the word index and both document frequencies, as before
    _placements(words, [{**item, "vector": None} for item in ITEMS])
    assert {key[:2] for key in words.state} >= {"w:", "d:", "e:", "n"}


@pytest.mark.parametrize("fields", [4, 5, 6, 7])
def test_profiles_of_every_older_layout_are_read(fields: int) -> None:
    vector = base64.b64encode(ITEMS[0]["vector"].tobytes()).decode()
    stored = ["a0", [1, 2, 3], ["Q0"], [2], vector, "th0", 20][:fields]
    prof = profile_of(stored)
    assert (prof.item_id, list(prof.terms), list(prof.entities), list(prof.title_ids)) == ("a0", [1, 2, 3], ["Q0"], [2])
    assert prof.vector == (vector if fields > 4 else None) and not prof.base85
    assert prof.group == ("th0" if fields > 5 else "a0") and prof.n_terms == (20 if fields > 6 else 3)
    if fields > 4:
        assert np.array_equal(prof.int8(), ITEMS[0]["vector"])


@pytest.mark.parametrize("vectors", [True, False], ids=["vectors", "words"])
def test_a_state_in_the_older_layout_places_the_next_items_as_the_new_one_does(vectors: bool) -> None:
    """A running deployment's changelog holds the older layout: it must go on as if nothing changed."""
    items = ITEMS if vectors else [{**item, "vector": None} for item in ITEMS]
    whole = Stories()
    expected = _placements(whole, items)
    assert len({placed[0] for placed in expected}) == 3

    before = Stories()
    assert _placements(before, items[:6]) == expected[:6]
    # What a worker recovers: the JSON of the changelog.
    older = orjson.loads(orjson.dumps(_as_older(dict(before.state), items[:6])))
    assert all(isinstance(v, dict) and len(v["profiles"][0]) == 7 for k, v in older.items() if k.startswith("s:"))
    restarted = Stories(StoryConfig(), older)
    assert restarted.rebuild_vectors() == before.rebuild_vectors()
    # The same stories and events from the older records...
    assert list(restarted.stories()) == [
        {**s, "first_seen": float(s["first_seen"]), "last_seen": float(s["last_seen"]),
         "members": [{**m, "at": float(m["at"])} for m in s["members"]],
         "profiles": older[f"s:{s['story_id']}"]["profiles"]}
        for s in before.stories()
    ]
    for story in before.stories():
        assert restarted.current_event(story["story_id"], "x") == before.current_event(story["story_id"], "x")
    # ... and the next items placed as without the restart: same stories, similarities, events.
    assert _placements(restarted, items[6:]) == expected[6:]
    # Re-delivered items are known whatever layout placed them.
    assert [restarted.assign(**item).joined_by for item in items[:6]] == ["known"] * 6
    # A story written again is in the new layout, its older profiles kept as they were.
    written = restarted.state[f"s:{expected[-1][0]}"]
    assert isinstance(written, list) and any(len(p) == 7 and isinstance(p[1], list) for p in written[10])


def test_older_stories_expire_with_their_index_entries() -> None:
    before = Stories()
    _placements(before, ITEMS[:6])
    older = Stories(StoryConfig(), orjson.loads(orjson.dumps(_as_older(dict(before.state), ITEMS[:6]))))
    older.rebuild_vectors()
    gone = list(older.expire(ITEMS[5]["at"] + StoryConfig().ttl_s + 1))
    assert not older.state and not len(older.vectors) and len(gone) > 6


def test_a_story_is_stored_as_a_list_and_read_back_with_its_field_names() -> None:
    stories = Stories()
    _placements(stories, ITEMS[:4])
    stored = stories.state[f"s:{stories.state['i:a0']}"]
    assert isinstance(stored, list) and len(stored) == 11  # thread_only (null) left out
    assert stored[3] == int(T0) and isinstance(stored[3], int)  # whole seconds as an int
    assert stored[6][0] == ["a0", "article", "outlet0", int(T0), None, 1.0, "founder"]
    (story,) = [s for s in stories.stories() if s["story_id"] == stories.state["i:a0"]]
    assert story["members"][0] == {"id": "a0", "kind": "article", "source": "outlet0", "at": int(T0),
                                   "duplicate_of": None, "similarity": 1.0, "joined_by": "founder"}
    assert story["member_count"] == story["revision"] == 3 and story["thread_only"] is None

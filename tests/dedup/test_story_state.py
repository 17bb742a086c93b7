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


def _as_older_profiles(state: dict[str, Any], entities: dict[str, list[str]]) -> dict[str, Any]:
    """The state as the previous layout wrote it: ``[item_id, terms, entities, title_ids,
    base64 vector, group, n_terms]`` (entities kept for long texts too, the group always written)."""
    older = {}
    for key, value in state.items():
        if key.startswith("s:"):
            value = orjson.loads(orjson.dumps(value))
            profiles = []
            for stored in _profiles(value):
                prof = profile_of(stored)
                vector = None if prof.vector is None else base64.b64encode(prof.int8().tobytes()).decode()
                profiles.append([prof.item_id, list(prof.terms), entities[prof.item_id], list(prof.title_ids), vector,
                                 prof.group, prof.n_terms])
            _set_profiles(value, profiles)
        older[key] = value
    return older


def _profiles(record: Any) -> list[Any]:
    return record["profiles"]


def _set_profiles(record: Any, profiles: list[Any]) -> None:
    record["profiles"] = profiles


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
    profiles = {p[0]: p for k, v in stories.state.items() if k.startswith("s:") for p in _profiles(v)}
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


def test_a_state_in_the_older_layout_places_the_next_items_as_the_new_one_does() -> None:
    """A running deployment's changelog holds the older layout: it must go on as if nothing changed."""
    whole = Stories()
    expected = _placements(whole, ITEMS)

    before = Stories()
    assert _placements(before, ITEMS[:6]) == expected[:6]
    entities = {item["item_id"]: sorted(item["entities"]) for item in ITEMS}
    older = orjson.loads(orjson.dumps(_as_older_profiles(dict(before.state), entities)))
    assert older != orjson.loads(orjson.dumps(dict(before.state)))  # the test does test something
    restarted = Stories(StoryConfig(), older)
    assert restarted.rebuild_vectors() == before.rebuild_vectors()
    assert _placements(restarted, ITEMS[6:]) == expected[6:]
    # Re-delivered items are known whatever layout placed them.
    assert [restarted.assign(**item).joined_by for item in ITEMS[:6]] == ["known"] * 6

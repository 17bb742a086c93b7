"""Stories: items about one event, from any outlet, clustered in the stream. Pure: no Kafka here.

An item (article, ticker line) joins the story it is most similar to, if that
story was active less than ``window_s`` ago and the similarity reaches
``threshold``; otherwise it founds a story. Shortcuts come first: an exact or
near-duplicate joins the story of the item it copies, a ticker line joins the
story of its thread.

Similarity of an item to a story is the best :func:`pair_similarity` between
the item and the story's *profiles* (the term sets of its founding member and
its most recent members), scaled down linearly with the time since the story
was last active (``time_decay`` at the window's edge). :func:`pair_similarity`
is the mean of the Jaccard and the overlap coefficient of the two items'
*content terms* (normalised words of title and text without stop words, Arabic
article/conjunction prefixes stripped), each term weighted by its inverse
document frequency in the stream so far, plus ``entity_weight`` times the
(IDF-weighted) Jaccard of their entity keys when both have entities. The same
function scores ``newsstream eval pairs``. Short texts (ticker lines) need
``short_threshold``; two items with headlines must share a headline term.
Every default was measured: see ``docs/dedup.md``.

Candidate stories are found through an inverted index (term -> stories whose
profiles contain it); terms in more than ``max_postings`` stories are too
common to find candidates with.

With sentence vectors (``NEWSSTREAM_EMBEDDINGS``, the default) the meaning
decides: candidates come from the nearest story vectors
(:mod:`newsstream.dedup.vectors`), and an item joins the story whose
profiles it matches best by :func:`vector_similarity` — the probability of
one story from the cosine of the two items' language-centred vectors,
averaged over the story's profiles (the lines of one ticker thread counting
once) and decayed with the item's distance in time from the story — if that
reaches ``vector_threshold``. So the same event told in other words or
another language joins, and the headline gate (a word test) is not applied.
The words of long texts are then not kept at all (``lean_vectors``: no
postings, no document frequencies of terms or entities, no terms or entities
in the profile); a short text keeps its terms and entities, because two
short texts must share one. An item without a vector (embeddings off)
is placed by words as described above. ``docs/dedup.md`` has the
measurements of both.

State is one mapping with JSON-able values (a changelog-backed table in the
worker; ``docs/dedup.md`` explains why stories run on one partition):

* ``s:<story_id>`` -> the story: ``[revision, headline, headline_kind,
  first_seen, last_seen, member_count, members, sources, entities, topics,
  profiles, thread_only]`` (``thread_only`` left out when null), each member
  ``[id, kind, source, at, duplicate_of, similarity, joined_by]``, each
  profile as :func:`profile_of` reads it; times in whole seconds are ints.
  ``profiles`` and ``thread_only`` are internal, the rest is the public event
  (:class:`newsstream.contract.models.StoryEvent`). :meth:`Stories.stories`
  gives it as a dict with these names (and ``story_id``), members as dicts;
  an older state's story dicts are still read.
* ``w:<term>`` -> ``[[story_id, last_seen], ...]``
* ``d:<term>`` / ``e:<entity>`` -> ``[document frequency, last seen]``; ``n`` -> documents seen
* ``i:<item_id>`` -> story_id (idempotence: a re-processed item creates no story)
* ``h:<thread_id>`` -> story_id

The story id is derived from the founding item's id, so replaying the same
stream gives the same ids.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections import Counter
from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import numpy as np

from newsstream.contract.ids import stable_hash
from newsstream.contract.models import StoryEvent, StoryMember
from newsstream.dedup.compact import whole_seconds
from newsstream.dedup.vectors import VectorIndex, b85_text, int8_vector, int8_vector_b85, unit
from newsstream.text.normalize import normalize_text

__all__ = [
    "Profile",
    "Stories",
    "StoryConfig",
    "StoryEvent",
    "StoryMember",
    "content_terms",
    "hash_terms",
    "idf_weight",
    "pair_similarity",
    "profile_of",
]

_WORD_RE = re.compile(r"[^\W\d_]{3,}")

# Function words (Arabic, and the main languages of the shared pairs), written
# plainly and normalised like the text. Not a linguistic resource: a short list
# of the words that carry no topic and appear in almost every article.
_STOP_WORDS_RAW = """
في من على إلى الى عن مع أن إن ان كان كانت يكون قال وقال قالت وقالت التي الذي الذين اللذين هذا هذه ذلك تلك هناك هنا
بين بعد قبل حتى ثم أو او لا لم لن ما ماذا كما إلا الا عند منذ خلال حيث كل أي اي تم قد وقد لقد هو هي هم هن نحن انت
نحو ضد حول دون لدى غير أيضا ايضا وفي ومن وعلى والى وإلى وأن وان فإن فان بأن بان لأن لان كما وكان وكانت وهو وهي ولا
عام اليوم امس أمس يوم الى أكثر اكثر أقل اقل مثل بعض جميع عدد أول اول آخر اخر كلا مما عندما بينما إذا اذا لكن ولكن
أنه انه أنها انها إنه انه الذي وأضاف واضاف أضاف اضاف وأكد واكد أكد اكد وأشار واشار أشار اشار يذكر ويذكر وفق وفقا
خبر اخبار أخبار عربية عربي بي سي نيوز سكاي فرانس سي ان العربية
غدا غداً الآن الان صباح مساء الليلة الأسبوع الاسبوع الشهر المقبل المقبلة الماضي الماضية الجاري الحالي
the and for that with was were are this from have has had not but his her they their its which who will would been
said also after into over more than about when there what can one two new all out she him them our your you
today tomorrow yesterday week month year last next
der die das und den dem des ein eine einer eines nicht mit von auf ist sich auch als für wie bei aus nach
los las del que por con una para por como más sus les des une pour dans sur par est qui aux avec
ve bir bu ile için olarak daha gibi kadar ise nie się jest oraz jak ale tak przez dla
"""
STOP_WORDS: frozenset[str] = frozenset(normalize_text(_STOP_WORDS_RAW).split())

# Arabic proclitics before the article: "والحرب", "بالحرب", "للحرب" -> "حرب".
_AR_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")


@functools.lru_cache(maxsize=200_000)  # a stream's vocabulary repeats: most words are looked up, not stemmed
def _stem(word: str) -> str:
    for prefix in _AR_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            return word[len(prefix) :]
    return word


def content_terms(normalized_text: str) -> set[str]:
    """Topic-bearing words of an already normalised text (letters only, 3+ characters)."""
    return {_stem(w) for w in _WORD_RE.findall(normalized_text) if w not in STOP_WORDS}


def hash_terms(terms: Iterable[str]) -> list[int]:
    # crc32 is stable across processes (unlike hash()) and compact in the state.
    return sorted({zlib.crc32(t.encode("utf-8")) for t in terms})


# An overlap over fewer terms than this says little (two ticker lines sharing
# three words are not one story because of it).
_MIN_OVERLAP_DENOM = 8


def pair_similarity(
    a: set[Any] | Sequence[Any],
    b: set[Any] | Sequence[Any],
    a_entities: Iterable[str] = (),
    b_entities: Iterable[str] = (),
    entity_weight: float = 0.3,
    weight: Mapping[Any, float] | None = None,
    entity_idf: Mapping[str, float] | None = None,
) -> float:
    """Text similarity of two items' content terms (mean of Jaccard and overlap), plus shared entities.

    ``weight`` gives each term a weight (an inverse document frequency); without
    it every term counts 1.
    """
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    if weight is None:
        inter, wa, wb, floor = len(sa & sb), len(sa), len(sb), float(_MIN_OVERLAP_DENOM)
    else:
        w = weight.__getitem__
        inter = sum(map(w, sa & sb))
        wa, wb = sum(map(w, sa)), sum(map(w, sb))
        floor = _MIN_OVERLAP_DENOM * (wa / len(sa) + wb / len(sb)) / 2
    union = wa + wb - inter
    jac = inter / union if union else 0.0
    ovl = inter / max(min(wa, wb), floor)
    score = (jac + ovl) / 2
    ea, eb = set(a_entities), set(b_entities)
    if ea and eb and entity_weight:
        if entity_idf is None:
            score += entity_weight * len(ea & eb) / len(ea | eb)
        else:  # an entity every story names (a country at war) says little
            e = entity_idf.__getitem__
            score += entity_weight * sum(map(e, ea & eb)) / sum(map(e, ea | eb))
    return min(score, 1.0)


# Fitted by tools/fit_story_similarity.py (logistic regression of "same story",
# gold <= 2, on the shared SemEval-2022 Task 8 pairs; the command prints them).
COS_WEIGHT, LEX_WEIGHT, BIAS = 7.817, 0.0, -3.209


def same_story_probability(cos: float, lexical: float, weights: tuple[float, float, float]) -> float:
    """P(same story) of two items from the cosine of their vectors and their word similarity."""
    w_cos, w_lex, bias = weights
    z = w_cos * cos + w_lex * lexical + bias
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


def vector_similarity(cos: float, lexical: float, terms: tuple[int, int], config: StoryConfig) -> float:
    """Stage 3's similarity of two items that both have vectors, compared with ``vector_threshold``.

    The same-story probability; when either text is short (fewer than
    ``short_terms`` content terms: a ticker line, a one-line headline) it is
    scaled so that it must reach ``short_vector_threshold`` instead: the
    vector of a sentence says less than that of a lead paragraph (two
    unrelated one-line English sentences reach a probability of ~0.47), and
    the pairs it was fitted on are all article-length. Two short texts must
    also share a content word or an entity (``lexical`` > 0): on real
    breaking-news lines posted weeks apart, 4.6% of pairs reach 0.6 on the
    vector alone and 1.9% with a shared word (docs/dedup.md, "Lines, threads and late items").
    """
    probability = same_story_probability(cos, lexical, config.vector_weights)
    if min(terms) < config.short_terms:
        if max(terms) < config.short_terms and lexical <= 0.0:
            return 0.0
        probability *= config.vector_threshold / config.short_vector_threshold
    return probability


class Profile(NamedTuple):
    """One member's part of a story's similarity, as read from either stored layout (:func:`profile_of`)."""

    item_id: str
    vector: str | None  # the int8 vector as text (base85, or base64 in the older layout)
    n_terms: int  # content terms of the text (whether it is short)
    terms: Sequence[int]  # term ids, [] for a long text with lean vectors
    entities: Sequence[str]  # [] for a long text with lean vectors (never read: no terms to compare)
    title_ids: Sequence[int]
    group: str  # the ticker thread of a line, else the item id
    base85: bool

    def int8(self) -> np.ndarray:
        return _int8(self.vector or "", self.base85)


def _int8(encoded: str, base85: bool) -> np.ndarray:
    """A profile's int8 vector from its text: base85, or base64 in the older layout."""
    return (int8_vector_b85 if base85 else int8_vector)(encoded)


def profile_of(stored: Sequence[Any]) -> Profile:
    """A profile from the state: ``[item_id, vector, n_terms, terms, entities, title_ids, thread_id]``,
    base85 vector (null without one), the trailing empty fields left out; or the older layout
    ``[item_id, terms, entities, title_ids, base64 vector, group, n_terms]`` (its last three
    fields optional), which a running deployment's changelog still holds."""
    n = len(stored)
    if n > 1 and isinstance(stored[1], list):  # the older layout: terms second
        item_id, terms = stored[0], stored[1]
        return Profile(item_id, stored[4] if n > 4 else None, stored[6] if n > 6 else len(terms), terms,
                       stored[2], stored[3], stored[5] if n > 5 else item_id, False)
    item_id = stored[0]
    return Profile(item_id, stored[1], stored[2], stored[3] if n > 3 else (), stored[4] if n > 4 else (),
                   stored[5] if n > 5 else (), (stored[6] if n > 6 else None) or item_id, True)


# A story and a member in the state: a list of these fields (see the module docstring).
STORY_FIELDS = ("revision", "headline", "headline_kind", "first_seen", "last_seen", "member_count", "members",
                "sources", "entities", "topics", "profiles", "thread_only")
MEMBER_FIELDS = ("id", "kind", "source", "at", "duplicate_of", "similarity", "joined_by")
_FIRST_SEEN, _LAST_SEEN, _PROFILES = (STORY_FIELDS.index(f) for f in ("first_seen", "last_seen", "profiles"))


def _story_of(story_id: str, stored: Any) -> dict[str, Any]:
    """A story from the state, members as lists; reads the older dict form too (members as dicts)."""
    if isinstance(stored, dict):
        story = dict(stored)
        story["members"] = [[m.get(f) for f in MEMBER_FIELDS] for m in stored["members"]]
    else:
        story = dict(zip(STORY_FIELDS, stored))
    story["story_id"] = story_id
    story.setdefault("thread_only", None)
    return story


def _stored_story(story: dict[str, Any]) -> list[Any]:
    stored = [story[f] for f in STORY_FIELDS]
    stored[_FIRST_SEEN], stored[_LAST_SEEN] = whole_seconds(stored[_FIRST_SEEN]), whole_seconds(stored[_LAST_SEEN])
    if stored[-1] is None:
        stored.pop()
    return stored


def _member(member: Sequence[Any] | Mapping[str, Any]) -> StoryMember:
    fields = member if isinstance(member, Mapping) else dict(zip(MEMBER_FIELDS, member))
    # model_construct: the members come from our own state, already valid;
    # validating 500 of them per event cost ~1 ms.
    return StoryMember.model_construct(**{**fields, "at": _ts(fields["at"])})


def _stored_profile(item_id: str, vector: str | None, n_terms: int, terms: list[int], entities: list[str],
                    title_ids: list[int], thread_id: str | None) -> list[Any]:
    profile = [item_id, vector, n_terms, terms, entities, title_ids, thread_id]
    while len(profile) > 3 and not profile[-1]:
        profile.pop()
    return profile


def _scored(stored: Sequence[Any]) -> tuple[str | None, bool, Sequence[int], Sequence[str], int, str]:
    """What the vector similarity reads of a profile: (vector, base85, terms, entities, n_terms, group).

    The same as :func:`profile_of`, faster for the usual profile (a long text's
    ``[item_id, vector, n_terms]``): this runs for every profile of every candidate."""
    if len(stored) == 3:
        return stored[1], True, (), (), stored[2], stored[0]
    prof = profile_of(stored)
    return prof.vector, prof.base85, prof.terms, prof.entities, prof.n_terms, prof.group


# Cached: a live story's profiles are scored again for every item that finds it.
@functools.lru_cache(maxsize=50_000)
def _unit_vector(encoded: str, base85: bool) -> np.ndarray:
    """The unit vector of a profile's text (:func:`_int8`)."""
    vector = unit(_int8(encoded, base85))
    vector.flags.writeable = False  # shared by every caller
    return vector


class _Idf(dict):  # type: ignore[type-arg]
    """term -> weight, computed on first use."""

    def __init__(self, doc_freq: Callable[[Any], int], docs: int) -> None:
        super().__init__()
        self._doc_freq, self._docs = doc_freq, docs

    def __missing__(self, term: Any) -> float:
        w = self[term] = math.log(1.0 + self._docs / max(1, self._doc_freq(term)))
        return w


def idf_weight(doc_freq: Callable[[Any], int], docs: int) -> Mapping[Any, float]:
    """Smoothed inverse document frequency ``log(1 + docs / df)`` (df at least 1), as a lazy mapping."""
    return _Idf(doc_freq, docs)


@dataclass(frozen=True)
class StoryConfig:
    threshold: float = 0.2
    window_s: float = 24 * 3600.0  # a story silent for longer takes no new members
    time_decay: float = 0.25  # similarity is scaled by 1 - time_decay * (idle time / window)
    # A story silent for this many windows is forgotten (no more updates): later
    # copies of its members and re-deliveries still find it for a while, and
    # the state follows the window whatever NEWSSTREAM_STORY_WINDOW_HOURS says
    # (72 h with the default 24 h window).
    ttl_windows: float = 3.0
    profiles: int = 6  # term sets kept per story: the founder's and the most recent ones
    max_postings: int = 40  # a term in more stories than this does not find candidates
    max_candidates: int = 10  # candidates scored per item (most shared terms first)
    min_shared_terms: int = 2
    entity_weight: float = 0.1  # with the current NER, 0.2 and more chain stories (docs/dedup.md)
    # Members listed in the state and the event: the founder and the newest
    # ones (member_count keeps counting). Every event carries the list, so it
    # bounds the event size (~200 bytes a member) and the cost of an update.
    max_members: int = 100
    # Entities are weighted by inverse document frequency too (state "e:<key>").
    entity_idf: bool = True
    # Two items that both name entities join only if they name a common one.
    entity_gate: bool = False  # measured: no gain on the ANT stream, and NER misses on ticker lines split stories
    idf: bool = True  # weight terms by inverse document frequency over the stream seen so far
    # Items with fewer content terms than this (ticker lines) need short_threshold.
    short_terms: int = 15
    short_threshold: float = 0.3
    # Two items that both have a headline join only if their headlines share a
    # content term: keeps "football results of the weekend" apart. Not applied
    # when both have sentence vectors (the vector is the better gate, and the
    # same story in two languages shares no headline word).
    title_gate: bool = True
    # With sentence vectors (NEWSSTREAM_EMBEDDINGS=on) the similarity of two
    # items is the probability that they tell the same story, a logistic
    # function of the cosine of their language-centred vectors (the word
    # similarity has a weight too, 0 as fitted), fitted on the shared
    # same-story pairs (tools/fit_story_similarity.py); an item joins a story
    # when it reaches ``vector_threshold``, the pairs' best F1 in cross-validation.
    vector_weights: tuple[float, float, float] = (COS_WEIGHT, LEX_WEIGHT, BIAS)
    vector_threshold: float = 0.4
    short_vector_threshold: float = 0.6  # the probability two texts need when one is short (see vector_similarity)
    # A vector join decays faster with the story's idle time than a word join
    # (0.25): meaning alone also brings together the same topic's next event.
    vector_time_decay: float = 0.5
    vector_candidates: int = 10  # nearest stories by vector considered per item
    # With vectors, candidates come from the vector index alone and the words of a
    # long text are not kept (no postings, no document frequencies of terms or
    # entities, no term or entity list in its profile): the fitted similarity gives
    # them no weight, and they were most of stage 3's state. Short texts keep their
    # terms and entities for the shared-word test, which needs no weights.
    lean_vectors: bool = True

    def __post_init__(self) -> None:
        if self.ttl_windows < 1:
            raise ValueError("a story must be kept at least as long as its window (ttl_windows >= 1)")

    @property
    def ttl_s(self) -> float:
        """How long a silent story is kept, derived from the window."""
        return self.ttl_windows * self.window_s


class StoryUpdate(NamedTuple):
    story_id: str
    event: StoryEvent | None  # None when the item was already placed (re-processing)
    similarity: float
    joined_by: str


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class Stories:
    def __init__(self, config: StoryConfig = StoryConfig(), state: MutableMapping[str, Any] | None = None) -> None:
        self.config = config
        self.state: MutableMapping[str, Any] = {} if state is None else state
        # Derived from the profiles' vectors: rebuilt after a restart (rebuild_vectors), never changelogged.
        self.vectors = VectorIndex()

    def rebuild_vectors(self) -> int:
        """Index the vectors of every live story's profiles (after the state was recovered); returns how many."""
        self.vectors.clear()
        for key, stored in self.state.items():
            if key.startswith("s:"):
                self._index_profiles(_story_of(key[2:], stored))
        return len(self.vectors)

    def _story(self, story_id: str) -> dict[str, Any] | None:
        stored = self.state.get(f"s:{story_id}")
        return None if stored is None else _story_of(story_id, stored)

    def _index_profiles(self, story: dict[str, Any]) -> None:
        sid = story["story_id"]
        profiles = [profile_of(prof) for prof in story["profiles"]]
        self.vectors.keep_only(sid, (prof.item_id for prof in profiles))
        for prof in profiles:
            # Decoded only when new: the others are indexed already (this runs per placement).
            if prof.vector and not self.vectors.holds(sid, prof.item_id):
                self.vectors.add(sid, prof.item_id, prof.int8())

    # -- placement -------------------------------------------------------

    def assign(
        self,
        *,
        item_id: str,
        kind: Literal["article", "ticker"],
        source: str,
        at: float,
        title: str,
        normalized_text: str,
        duplicate_of: str | None = None,
        duplicate_similarity: float = 0.0,
        thread_id: str | None = None,
        thread_headline: str | None = None,
        entities: Iterable[str] = (),
        topics: Iterable[str] = (),
        vector: np.ndarray | None = None,
    ) -> StoryUpdate:
        """Place one item (in time order) in a story; returns the story event to publish.

        ``vector``: the item's sentence vector (int8), when the worker embeds items."""
        st, cfg = self.state, self.config
        known = st.get(f"i:{item_id}")
        if known is not None and f"s:{known}" in st:
            return StoryUpdate(known, None, 0.0, "known")

        entities = sorted(set(entities))
        story_id: str | None = None
        similarity, joined_by = 1.0, "founder"
        if duplicate_of is not None and (sid := st.get(f"i:{duplicate_of}")) and f"s:{sid}" in st:
            story_id, similarity, joined_by = sid, duplicate_similarity or 1.0, "duplicate"
        elif thread_id is not None and (sid := st.get(f"h:{thread_id}")) and f"s:{sid}" in st:
            story_id, similarity, joined_by = sid, 1.0, "thread"

        title_ids = hash_terms(content_terms(normalize_text(title))) if title else []
        term_ids = sorted(set(hash_terms(content_terms(normalized_text))) | set(title_ids))
        if story_id is None:
            best = self._best_candidate(term_ids, title_ids, entities, at, vector)
            if best is not None:
                story_id, similarity, joined_by = best[1], best[0], "similarity"
        elif joined_by == "thread" and self._story(story_id)["thread_only"] == thread_id:
            # The thread's story holds nothing but the thread: its first line to arrive
            # may have been a detail ("- the plant stores 200 MWh") that matched nothing,
            # while this line (often the headline) matches the story that covers the
            # event. The thread moves there; the lines already placed stay.
            best = self._best_candidate(term_ids, title_ids, entities, at, vector, exclude=story_id)
            if best is not None:
                story_id, similarity, joined_by = best[1], best[0], "similarity"

        created = story_id is None
        if story_id is None:
            story_id = "st_" + stable_hash("story", item_id)[:16]
            story: dict[str, Any] = {
                "story_id": story_id,
                "revision": 0,
                "headline": "",
                "headline_kind": None,
                "first_seen": at,
                "last_seen": at,
                "member_count": 0,
                "members": [],
                "sources": [],
                "entities": {},
                "topics": [],
                "profiles": [],
                # The thread that founded the story, while the story holds only its lines.
                "thread_only": thread_id,
            }
        else:
            story = self._story(story_id)

        member = [item_id, kind, source, whole_seconds(at), duplicate_of, round(similarity, 4), joined_by]  # MEMBER_FIELDS
        members = [*story["members"], member]
        if len(members) > cfg.max_members:
            members = [members[0], *members[-(cfg.max_members - 1) :]]
        story["members"] = members
        story["member_count"] += 1
        if story.get("thread_only") is not None and story["thread_only"] != thread_id:
            story["thread_only"] = None
        story["revision"] += 1
        story["first_seen"] = min(story["first_seen"], at)
        story["last_seen"] = max(story["last_seen"], at)
        if source not in story["sources"]:
            story["sources"] = sorted([*story["sources"], source])
        if entities:
            counts = Counter(story["entities"])
            counts.update(entities)
            story["entities"] = dict(counts.most_common(50))
        if topics:
            story["topics"] = sorted(set(story["topics"]) | set(topics))
        # Headline: the newest original article's title; a story of ticker lines only
        # takes its thread's headline (or the line).
        if kind == "article" and duplicate_of is None and title.strip():
            story["headline"], story["headline_kind"] = title.strip(), "article"
        elif story["headline_kind"] != "article" and (kind == "ticker" or not story["headline"]):
            story["headline"] = thread_headline or title.strip() or normalized_text[:120]
            story["headline_kind"] = kind if kind == "ticker" else story["headline_kind"]

        lean = vector is not None and cfg.lean_vectors
        if duplicate_of is None and term_ids:
            if cfg.idf and not lean:
                st["n"] = st.get("n", 0) + 1
                for term in term_ids:
                    df = st.get(f"d:{term}")
                    st[f"d:{term}"] = [(df[0] if df else 0) + 1, at]
            if cfg.entity_idf and not lean:
                for entity in entities:
                    df = st.get(f"e:{entity}")
                    st[f"e:{entity}"] = [(df[0] if df else 0) + 1, at]
            data = None if vector is None else vector.tobytes()
            # The number of terms: a lean profile of a long text keeps no term list, and
            # then no entities either (they are only compared when both have terms). The
            # thread groups the lines of one ticker thread (see _best_candidate).
            kept = [] if lean and len(term_ids) >= cfg.short_terms else term_ids
            profile = _stored_profile(
                item_id, None if data is None else b85_text(data), len(term_ids), kept,
                entities if kept or cfg.entity_gate else [], [] if lean else title_ids, thread_id,
            )
            if data is not None:  # indexed as it is, not decoded again from the profile
                self.vectors.add(story_id, item_id, np.frombuffer(data, dtype=np.int8))
            profiles = [*story["profiles"], profile]
            if len(profiles) > cfg.profiles:  # keep the founder and the newest ones
                profiles = [profiles[0], *profiles[-(cfg.profiles - 1) :]]
            story["profiles"] = profiles
            for term in () if lean else term_ids:
                key = f"w:{term}"
                postings = [p for p in (st.get(key) or ()) if p[0] != story_id and at - p[1] <= cfg.window_s]
                postings.append([story_id, at])
                # A term in more than max_postings stories finds no candidates, so
                # its newest max_postings + 1 entries say all there is to know;
                # without the cap a common word's list (and the cost of updating
                # it, and its changelog record) grew with every item of the window.
                st[key] = postings[-(cfg.max_postings + 1) :]
        st[f"s:{story_id}"] = _stored_story(story)
        self._index_profiles(story)
        st[f"i:{item_id}"] = story_id
        if thread_id is not None:
            st[f"h:{thread_id}"] = story_id
        return StoryUpdate(story_id, self.event_of(story, "created" if created else "updated", item_id), similarity, joined_by)

    def _best_candidate(
        self, term_ids: list[int], title_ids: list[int], entities: list[str], at: float,
        vector: np.ndarray | None = None, exclude: str | None = None,
    ) -> tuple[float, str] | None:
        st, cfg = self.state, self.config
        shared: Counter[str] = Counter()
        for term in () if vector is not None and cfg.lean_vectors else term_ids:
            postings = st.get(f"w:{term}")
            if not postings or len(postings) > cfg.max_postings:
                continue
            for sid, last in postings:
                if 0 <= at - last <= cfg.window_s or last > at:
                    shared[sid] += 1
        candidates = [sid for sid, count in shared.most_common(cfg.max_candidates) if count >= cfg.min_shared_terms]
        # The same event in other words or another language shares few terms: its vector finds it.
        if vector is not None:
            candidates += [sid for sid, _ in self.vectors.nearest(vector, cfg.vector_candidates) if sid not in candidates]
        best: tuple[float, str] | None = None
        weight = self._weight()
        entity_idf = self._entity_weight() if entities else None
        # A short text (a ticker line) shares few words with anything: it needs a closer match.
        threshold = cfg.threshold if len(term_ids) >= cfg.short_terms else cfg.short_threshold
        query = None if vector is None else unit(vector)
        lexical_weights = (None, None) if cfg.lean_vectors else (weight, entity_idf)
        for sid in candidates:
            stored = st.get(f"s:{sid}")
            if stored is None or sid == exclude:
                continue
            first_seen, last_seen, stored_profiles = (
                (stored["first_seen"], stored["last_seen"], stored["profiles"]) if isinstance(stored, dict)
                else (stored[_FIRST_SEEN], stored[_LAST_SEEN], stored[_PROFILES])
            )
            # How far the item lies from the story's time span: an item that arrives late
            # but happened hours before the story began is as far from it as one hours after.
            idle = max(0.0, at - last_seen, first_seen - at)
            if idle > cfg.window_s:
                continue
            with_vectors = [v for v in map(_scored, stored_profiles) if v[0]] if query is not None else []
            profiles = [] if with_vectors and not cfg.entity_gate else [profile_of(prof) for prof in stored_profiles]
            if cfg.entity_gate and entities:
                story_entities = {e for prof in profiles for e in prof.entities}
                if story_entities and story_entities.isdisjoint(entities):
                    continue
            if cfg.title_gate and title_ids and not with_vectors:
                story_titles = {t for prof in profiles for t in prof.title_ids}
                if story_titles and story_titles.isdisjoint(title_ids):
                    continue
            if with_vectors:
                # Both sides have vectors: the probability of one story, profile by profile.
                by_group: dict[str, float] = {}
                for encoded, base85, terms, prof_entities, n_terms, group in with_vectors:
                    p = vector_similarity(
                        float(query @ _unit_vector(encoded, base85)),
                        # Lean: no document frequencies kept (of terms or entities), and only
                        # "shares a word or an entity" matters here (the fitted weight of words is 0).
                        # A long text with lean vectors keeps no terms: it shares none.
                        pair_similarity(term_ids, terms, entities, prof_entities, cfg.entity_weight, *lexical_weights)
                        if terms else 0.0,
                        (len(term_ids), n_terms),
                        cfg,
                    )
                    by_group[group] = max(p, by_group.get(group, 0.0))
                # The mean over the story's profiles, not the best of them: with the best
                # one a story grows through its newest members into the next event of
                # the same topic (the weekend's football, a war's other fronts). The
                # lines of one ticker thread count once, by their best: the outlet said
                # they are one story, and its follow-up lines give details (figures, a
                # quote) that the article about the event need not resemble line by line.
                sim = sum(by_group.values()) / len(by_group) * (1.0 - cfg.vector_time_decay * idle / cfg.window_s)
                needed = cfg.vector_threshold
            else:
                sim = max(
                    pair_similarity(term_ids, prof.terms, entities, prof.entities, cfg.entity_weight, weight, entity_idf)
                    for prof in profiles
                ) * (1.0 - cfg.time_decay * idle / cfg.window_s)
                needed = threshold
            if sim >= needed and (best is None or sim > best[0] or (sim == best[0] and sid < best[1])):
                best = (sim, sid)
        return best

    def _entity_weight(self) -> Mapping[str, float] | None:
        return self._idf("e:") if self.config.entity_idf else None

    def _weight(self) -> Mapping[Any, float] | None:
        return self._idf("d:") if self.config.idf else None

    def _idf(self, prefix: str) -> Mapping[Any, float]:
        """IDF weights from the document frequencies kept under ``prefix`` (``d:`` terms, ``e:`` entities)."""
        state = self.state

        def doc_freq(key: Any) -> int:
            df = state.get(f"{prefix}{key}")
            return df[0] if df else 1

        return idf_weight(doc_freq, max(1, state.get("n", 0)))

    # -- events and upkeep -------------------------------------------------

    @staticmethod
    def event_of(story: dict[str, Any], event: Literal["created", "updated"], trigger_id: str) -> StoryEvent:
        return StoryEvent(
            story_id=story["story_id"],
            event=event,
            revision=story["revision"],
            headline=story["headline"],
            first_seen=_ts(story["first_seen"]),
            last_seen=_ts(story["last_seen"]),
            member_count=story["member_count"],
            members=[_member(m) for m in story["members"]],
            sources=story["sources"],
            entities=list(story["entities"])[:20],
            topics=story["topics"],
            trigger_id=trigger_id,
        )

    def current_event(self, story_id: str, trigger_id: str) -> StoryEvent | None:
        """The story's current state as an ``updated`` event (None if it is not held)."""
        story = self._story(story_id)
        return None if story is None else self.event_of(story, "updated", trigger_id)

    def stories(self) -> Iterator[dict[str, Any]]:
        """Every story held, as a dict with the event's field names (``story_id``, ``members`` as dicts, ...)."""
        for key, value in self.state.items():
            if key.startswith("s:"):
                story = _story_of(key[2:], value)
                story["members"] = [dict(zip(MEMBER_FIELDS, m)) for m in story["members"]]
                yield story

    @staticmethod
    def story_of_key(key: str) -> str | None:
        """The story id when ``key`` is a story's own record (``s:<story id>``), else None (an index entry)."""
        return key[2:] if key.startswith("s:") else None

    def expire(self, now: float) -> Iterator[str]:
        """Forget stories silent for ``ttl_s`` and their index entries; yields deleted keys."""
        cfg = self.config
        dead = {k[2:] for k, v in list(self.state.items())
                if k.startswith("s:") and now - _story_of(k[2:], v)["last_seen"] > cfg.ttl_s}
        for key, value in list(self.state.items()):
            if key.startswith("s:"):
                if key[2:] in dead:
                    del self.state[key]
                    self.vectors.remove_story(key[2:])
                    yield key
            elif key == "n":
                continue
            elif key.startswith(("d:", "e:")):
                if now - value[1] > cfg.ttl_s:
                    del self.state[key]
                    yield key
            elif key.startswith("w:"):
                kept = [p for p in value if p[0] not in dead and now - p[1] <= cfg.window_s]
                if not kept:
                    del self.state[key]
                    yield key
                elif len(kept) != len(value):
                    self.state[key] = kept
            elif value in dead:
                del self.state[key]
                yield key

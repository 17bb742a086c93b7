"""Ticker threads across fetches: which earlier line a ticker line continues. Pure: no Kafka here.

The page parser already groups the lines of one page (a "-" after the
attribution marks a continuation). A live ticker is fetched again and again,
so a thread grows across pages: this module follows it in the stream.

A ticker line joins the thread of the latest line of the **same source and the
same attribution** when

* it carries the continuation marker and that line is at most
  ``continuation_window_s`` older, or
* it is a follow-up without the marker and that line is at most
  ``followup_window_s`` older (outlets often drop the marker),

or when the parser already gave it the thread id of a known thread (its page
showed the lines together). Otherwise it opens a thread. Lines without an
attribution join only through the marker or the parser's thread id.

The thread's id is the raw ``thread_id`` of the line that opened it (the
parser derives it from the oldest line of its page thread, scoped by source),
so it does not change as lines arrive. Its lines are kept in time order, and
its headline is ``attribution: sentence`` of its newest line that is not a
continuation (a continuation rarely stands alone), else of its newest line.

State is one mapping with JSON-able values (a changelog-backed table in the
worker). Threads are per source, so the worker can partition it by source.

* ``a:<source>\\x1f<attribution>`` -> ``[thread_id, last published_at]``
* ``r:<raw thread id>`` -> thread_id
* ``t:<thread_id>`` -> thread dict (see :class:`Thread`)
* ``i:<item id>`` -> thread_id (idempotence: a re-processed line keeps its place)
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from newsstream.text.normalize import normalize_text

__all__ = ["ThreadConfig", "ThreadUpdate", "Threads"]

_SEP = "\x1f"
MAX_LINES = 200  # a thread longer than this keeps its newest lines (and its count)


# Attributions that name who *relays* the news rather than who says it: a
# correspondent or an agency posts one unrelated line after another, so a
# follow-up under such an attribution (without the continuation marker) must
# also share words with the thread. Matched on the normalised start.
RELAY_PREFIXES: tuple[str, ...] = tuple(
    normalize_text(p)
    for p in (
        "مراسل", "مراسلة", "مراسلنا", "مصادر", "مصدر", "وكالة", "وكالات", "وسائل إعلام", "إعلام", "رويترز",
        "فرانس برس", "أسوشيتد برس", "أسوشيتيد برس", "الأناضول", "سانا", "تلفزيون", "التلفزيون", "قناة",
        "صحيفة", "شبكة", "الجزيرة", "العربية", "سكاي نيوز", "بي بي سي", "سي إن إن",
    )
)


@dataclass(frozen=True)
class ThreadConfig:
    followup_window_s: float = 3600.0
    continuation_window_s: float = 6 * 3600.0
    ttl_s: float = 48 * 3600.0  # a thread silent for this long is forgotten
    relay_prefixes: tuple[str, ...] = RELAY_PREFIXES
    relay_min_shared_terms: int = 2  # with the thread's last 3 lines


class ThreadUpdate(NamedTuple):
    thread_id: str
    created: bool  # this line opened the thread
    position: int  # 0-based place of the line in time order (at the time it arrived)
    thread: dict[str, Any]  # the thread after the update


class Threads:
    def __init__(self, config: ThreadConfig = ThreadConfig(), state: MutableMapping[str, Any] | None = None) -> None:
        self.config = config
        self.state: MutableMapping[str, Any] = {} if state is None else state

    def assign(
        self,
        *,
        item_id: str,
        source: str,
        attribution: str | None,
        text: str,
        published_at: float,
        continues_previous: bool,
        raw_thread_id: str,
        time: str = "",
    ) -> ThreadUpdate:
        """Put one ticker line (processed in time order) into its thread."""
        st = self.state
        known = st.get(f"i:{item_id}")
        if known is not None and f"t:{known}" in st:
            thread = st[f"t:{known}"]
            position = next((i for i, line in enumerate(thread["lines"]) if line["id"] == item_id), 0)
            return ThreadUpdate(known, False, position, thread)

        attr_key = f"a:{source.strip()}{_SEP}{normalize_text(attribution or '')}"
        thread_id: str | None = st.get(f"r:{raw_thread_id}")
        if thread_id is not None and f"t:{thread_id}" not in st:
            thread_id = None
        if thread_id is None:
            last = st.get(attr_key)
            if last is not None and f"t:{last[0]}" in st:
                age = published_at - float(last[1])
                window = self.config.continuation_window_s if continues_previous else self.config.followup_window_s
                if -window <= age <= window and (
                    continues_previous or (attribution and self._follows(attribution, text, st[f"t:{last[0]}"]))
                ):
                    thread_id = last[0]

        created = thread_id is None
        if thread_id is None:
            thread_id = raw_thread_id
            thread: dict[str, Any] = {
                "thread_id": thread_id,
                "source": source,
                "attribution": attribution,
                "lines": [],
                "line_count": 0,
                "headline": "",
                "first_seen": published_at,
                "last_seen": published_at,
            }
        else:
            thread = dict(st[f"t:{thread_id}"])
            thread["lines"] = list(thread["lines"])

        line = {"id": item_id, "at": published_at, "time": time, "text": text, "continues": continues_previous}
        lines = thread["lines"]
        position = len(lines)
        while position > 0 and (lines[position - 1]["at"], lines[position - 1]["id"]) > (published_at, item_id):
            position -= 1
        lines.insert(position, line)
        thread["line_count"] += 1
        if len(lines) > MAX_LINES:
            del lines[: len(lines) - MAX_LINES]
        thread["first_seen"] = min(thread["first_seen"], published_at)
        thread["last_seen"] = max(thread["last_seen"], published_at)
        thread["headline"] = _headline(thread["attribution"], lines)

        st[f"t:{thread_id}"] = thread
        st[f"r:{raw_thread_id}"] = thread_id
        st[f"i:{item_id}"] = thread_id
        last = st.get(attr_key)
        if last is None or float(last[1]) <= published_at:
            st[attr_key] = [thread_id, published_at]
        return ThreadUpdate(thread_id, created, position, thread)

    def _follows(self, attribution: str, text: str, thread: dict[str, Any]) -> bool:
        """A follow-up without the marker: any line of a speaker; a relay's line only if on topic."""
        if not normalize_text(attribution).lstrip("#").startswith(self.config.relay_prefixes):
            return True
        from newsstream.dedup.stories import content_terms

        terms = content_terms(normalize_text(text))
        recent = set().union(*(content_terms(normalize_text(line["text"])) for line in thread["lines"][-3:]))
        return len(terms & recent) >= self.config.relay_min_shared_terms

    def expire(self, now: float) -> Iterator[str]:
        """Forget threads silent for ``ttl_s`` and the keys that point to them; yields deleted keys."""
        dead = {
            key[2:]
            for key, value in list(self.state.items())
            if key.startswith("t:") and now - float(value["last_seen"]) > self.config.ttl_s
        }
        if not dead:
            return
        for key, value in list(self.state.items()):
            target = key[2:] if key.startswith("t:") else value[0] if key.startswith("a:") else value
            if target in dead:
                del self.state[key]
                yield key


def _headline(attribution: str | None, lines: list[dict[str, Any]]) -> str:
    lead = next((line for line in reversed(lines) if not line["continues"]), lines[-1])
    return f"{attribution}: {lead['text']}" if attribution else lead["text"]

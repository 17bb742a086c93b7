"""Where stage 3's story changelog bytes go, table by table and field by field.

    .venv/bin/python tools/story_state_bytes.py [stream.jsonl] [--cache FILE] [--placements FILE]

Replays the stream as ``newsstream eval stream`` does (same pipeline, same
order) and breaks the JSON of the final story state (what the changelog
topic holds: ``story_changelog_bytes_per_item``) down by key kind (``s:``,
``i:``, ``h:``, ``w:``, ``d:``, ``e:``, ``n``), by story field and by profile
field, in bytes per item replayed, and the near-duplicate changelog's two
tables (``items``, ``common``). ``--placements`` writes each item's story
id, similarity, joined_by and near-duplicate verdict (one JSON line per item), to compare two code
versions item by item. Enrichment is most of the time: ``--cache`` keeps the
enriched items (pickle) so that the next replay runs stage 3 alone.
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from common import SHARED
from newsstream.dedup.stories import MEMBER_FIELDS, STORY_FIELDS
from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig, read_stream
from newsstream.platform.settings import load_settings

STREAM = SHARED / "ant_multisource_stream" / "stream.jsonl"


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


def _enriched(path: Path, cache: Path | None) -> list[tuple[Any, str | None]]:
    """(enriched item, exact-dedup verdict) per item, in stream order."""
    if cache is not None and cache.exists():
        return pickle.loads(cache.read_bytes())
    settings = load_settings()  # enriched as `newsstream eval stream` (and the worker) enrich
    pipeline = Pipeline(PipelineConfig(structured=settings.enrich_structured,
                                       ner_context_tokens=settings.ner_context_tokens))
    done = []
    for _number, raw, _record in read_stream(str(path)):
        processed = pipeline.process(raw)
        done.append((processed.enriched, processed.exact_of))
    if cache is not None:
        cache.write_bytes(pickle.dumps(done))
    return done


# Profile fields by position, in the layout profile_of reads and in the older one.
PROFILE_FIELDS = ("item_id", "vector", "n_terms", "terms", "entities", "title_ids", "thread")
OLDER_PROFILE_FIELDS = ("item_id", "terms", "entities", "title_ids", "vector (base64)", "group", "n_terms")


def _fields(record: Any, names: tuple[str, ...]) -> list[tuple[str, Any, int]]:
    """(name, value, bytes of the value with its separator, and its key in a dict) of a stored record."""
    if isinstance(record, dict):
        return [(k, v, _size(k) + _size(v) + 2) for k, v in record.items()]
    return [(names[i], v, _size(v) + 1) for i, v in enumerate(record)]


def breakdown(state: dict[str, Any], items: int) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    story_fields: Counter[str] = Counter()
    member_fields: Counter[str] = Counter()
    profile_fields: Counter[str] = Counter()
    profiles = members = 0
    for key, value in state.items():
        kind = key.split(":", 1)[0] if ":" in key else key
        by_kind[kind] += _size(key) + _size(value)
        keys[kind] += _size(key)
        if kind != "s":
            continue
        # Each field: its value and the comma (and its key and colon in a dict).
        for field, v, size in _fields(value, STORY_FIELDS):
            story_fields[field] += size
            if field == "members":
                for m in v:
                    members += 1
                    for name, _, msize in _fields(m, MEMBER_FIELDS):
                        member_fields[name] += msize
            elif field == "profiles":
                for prof in v:
                    profiles += 1
                    older = len(prof) > 1 and isinstance(prof[1], list)
                    for name, _, psize in _fields(prof, OLDER_PROFILE_FIELDS if older else PROFILE_FIELDS):
                        profile_fields[name] += psize
        story_fields["[] or {}"] += 1  # brackets, minus the last field's comma
    total = sum(by_kind.values())

    def per_item(counts: Counter[str]) -> dict[str, float]:
        return {k: round(v / items, 1) for k, v in counts.most_common()}

    return {
        "items": items,
        "total_per_item": round(total / items, 1),
        "by_key_kind": per_item(by_kind),
        "keys_alone": per_item(keys),
        "entries": dict(Counter(k.split(":", 1)[0] if ":" in k else k for k in state)),
        "story_fields": per_item(story_fields),
        "members": members,
        "member_fields": per_item(member_fields),
        "profiles": profiles,
        "profile_fields": per_item(profile_fields),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stream", nargs="?", default=str(STREAM))
    parser.add_argument("--cache", type=Path, help="pickle of the enriched items (written if missing)")
    parser.add_argument("--placements", type=Path, help="write each item's placement here (JSON lines)")
    parser.add_argument("--events", type=Path, help="write each item's story event here (JSON lines)")
    parser.add_argument("--state", type=Path, help="write the final story state here (JSON)")
    args = parser.parse_args()
    enriched = _enriched(Path(args.stream), args.cache)
    pipeline = Pipeline()
    lines, events = [], []
    for item, exact_of in enriched:
        placed = pipeline.placement.place(item, exact_of)
        story = placed.story
        lines.append(orjson.dumps({"id": item.raw.id, "story_id": story.story_id, "similarity": story.similarity,
                                   "joined_by": story.joined_by, "duplicate_of": placed.near.duplicate_of,
                                   "near_similarity": placed.near.similarity, "near_matched": placed.near.matched}))
        events.append(b"null" if story.event is None else story.event.model_dump_json().encode())
    if args.placements is not None:
        args.placements.write_bytes(b"\n".join(lines) + b"\n")
    if args.events is not None:
        args.events.write_bytes(b"\n".join(events) + b"\n")
    if args.state is not None:
        args.state.write_bytes(orjson.dumps(pipeline.stories.state))
    report = breakdown(pipeline.stories.state, len(enriched))
    near = pipeline.placement.near  # its band index is rebuilt after a restart, not changelogged
    report["near_dup_changelog_per_item"] = {name: round(sum(_size(k) + _size(v) for k, v in table.items()) / len(enriched), 1)
                                             for name, table in (("items", near.items), ("common", near.common))}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

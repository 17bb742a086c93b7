"""The committed JSON Schemas are the topics' public contract: they must match the models
and stay compatible with the last release (schemas/released/)."""

from __future__ import annotations

from pathlib import Path

import orjson

from newsstream.contract.compat import breaking_changes
from newsstream.contract.models import PUBLIC_MODELS
from newsstream.contract.schemas import drifted, schema_documents, write_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schemas_match_the_models() -> None:
    assert drifted(SCHEMAS) == [], "schemas/ drifted from the models: run `newsstream schemas export` and review the change"


def test_every_public_model_has_a_schema_file_and_nothing_else_does() -> None:
    assert {p.name for p in SCHEMAS.glob("*.json")} == {f"{stem}.json" for stem in PUBLIC_MODELS}


def test_the_drift_check_names_an_edited_and_a_missing_schema(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert drifted(tmp_path) == []
    edited = tmp_path / "raw_article.v1.json"
    edited.write_bytes(edited.read_bytes().replace(b'"title"', b'"headline"'))
    (tmp_path / "story.v1.json").unlink()
    assert drifted(tmp_path) == ["raw_article.v1.json", "story.v1.json"]


# The schemas of the last release: what deployed readers and producers of the v1 topics use.
RELEASED = SCHEMAS / "released" / "v1"


# Breaking changes reviewed and accepted against the release, each with why no reader breaks.
ACCEPTED = {
    # v1 published the reason as any string; it is now the closed set of codes
    # (contract/reasons.py), which holds every code v1 ever emitted
    # (git log -S'reason=' of the package), so no reader meets a value it refuses.
    ("dead_letter.v1.json", "reason", "narrowed_type"),
    # The sentence vector (issue 14), optional. Readers deployed with the v1
    # baseline refused unknown fields; this release's readers ignore them, so
    # the upgrade order is readers (the sink) first, then the worker that writes
    # the field (docs/contract.md, Versioning).
    ("enriched_article.v1.json", "enrichment.embedding", "field_added_to_closed_object"),
    ("enriched_ticker_item.v1.json", "enrichment.embedding", "field_added_to_closed_object"),
}


def test_the_schemas_stay_compatible_with_the_last_release() -> None:
    """A breaking change to a v1 topic (docs/contract.md, Versioning) needs a .v2 topic instead."""
    breaks = {
        name: [str(b) for b in breaking_changes(orjson.loads((RELEASED / name).read_bytes()), orjson.loads(body))
               if (name, b.path, b.kind) not in ACCEPTED]
        for name, body in schema_documents().items()
    }
    assert {name: found for name, found in breaks.items() if found} == {}


def test_every_public_schema_has_a_released_baseline() -> None:
    assert {p.name for p in RELEASED.glob("*.json")} == {f"{stem}.json" for stem in PUBLIC_MODELS}

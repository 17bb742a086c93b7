"""The committed JSON Schemas are the topics' public contract: they must match the models."""

from __future__ import annotations

from pathlib import Path

from newsstream.contract.models import PUBLIC_MODELS
from newsstream.contract.schemas import drifted, write_schemas

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

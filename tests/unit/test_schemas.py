"""The committed JSON Schemas are the topics' public contract: they must match the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsstream.contract.models import PUBLIC_MODELS
from newsstream.contract.schemas import schema_documents, write_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_committed_schema_matches_the_model(name: str) -> None:
    committed = SCHEMAS / name
    assert committed.exists(), f"{name} is missing: run `newsstream schemas export`"
    assert committed.read_bytes() == schema_documents()[name], (
        f"schemas/{name} drifted from the model: run `newsstream schemas export` and review the contract change"
    )


def test_every_public_model_has_a_schema_file_and_nothing_else_does() -> None:
    assert {p.name for p in SCHEMAS.glob("*.json")} == {f"{stem}.json" for stem in PUBLIC_MODELS}


def test_a_changed_model_is_detected_as_drift(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    edited = tmp_path / "raw_article.v1.json"
    edited.write_bytes(edited.read_bytes().replace(b'"title"', b'"headline"'))
    assert edited.read_bytes() != schema_documents()["raw_article.v1.json"]

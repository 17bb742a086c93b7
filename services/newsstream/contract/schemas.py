"""JSON Schema export of the public event models (the topics' contract)."""

from __future__ import annotations

from pathlib import Path

import orjson

from newsstream.contract.models import PUBLIC_MODELS


def schema_documents() -> dict[str, bytes]:
    """File name -> pretty JSON Schema bytes, deterministic so drift shows up in a diff."""
    docs: dict[str, bytes] = {}
    for stem, model in PUBLIC_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://newsstream.dev/schemas/{stem}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        docs[f"{stem}.json"] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return docs


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in schema_documents().items():
        path = directory / name
        path.write_bytes(body)
        written.append(path)
    return written


def drifted(directory: Path) -> list[str]:
    """Schema files in ``directory`` that are missing or differ from the models (sorted names)."""
    return sorted(name for name, body in schema_documents().items()
                  if not (directory / name).is_file() or (directory / name).read_bytes() != body)

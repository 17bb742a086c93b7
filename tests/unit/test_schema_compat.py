"""The schema compatibility checker (contract/compat.py): each kind of breaking change is caught,
additive changes pass. The check of the committed schemas against the release is in test_schemas.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from newsstream.contract.compat import BREAKING_KINDS, breaking_changes

# The shape pydantic generates: $defs and $ref, anyOf for optional values, enum and const for literals.
BASE: dict[str, Any] = {
    "$defs": {
        "Mention": {
            "properties": {
                "text": {"type": "string"},
                "type": {"enum": ["PERS", "LOC", "ORG"], "type": "string"},
                "start": {"minimum": 0, "type": "integer"},
            },
            "required": ["text", "type", "start"],
            "type": "object",
        },
    },
    "properties": {
        "schema_version": {"const": 1, "type": "integer"},
        "id": {"type": "string"},
        "title": {"default": "", "type": "string"},
        "url": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "score": {"type": "number"},
        "fetched_at": {"format": "date-time", "type": "string"},
        "mentions": {"anyOf": [{"items": {"$ref": "#/$defs/Mention"}, "type": "array"}, {"type": "null"}]},
        "versions": {"additionalProperties": {"type": "string"}, "type": "object"},
    },
    "required": ["schema_version", "id", "score", "fetched_at"],
    "type": "object",
}


def changed(edit: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    edit(new)
    return new


def kinds(new: dict[str, Any], old: dict[str, Any] = BASE) -> list[tuple[str, str]]:
    return [(b.path, b.kind) for b in breaking_changes(old, new)]


def test_an_unchanged_schema_is_compatible() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_additive_changes_pass() -> None:
    def add_optional_field(s: dict[str, Any]) -> None:
        s["properties"]["language"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
        s["$defs"]["Mention"]["properties"]["name"] = {"type": "string", "default": ""}

    def add_enum_value(s: dict[str, Any]) -> None:
        s["$defs"]["Mention"]["properties"]["type"]["enum"].append("EVENT")

    def widen(s: dict[str, Any]) -> None:
        s["properties"]["id"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}  # now nullable
        s["properties"]["score"] = {"type": "number"}
        s["$defs"]["Mention"]["properties"]["start"] = {"type": "number"}  # integer -> number, no bound
        s["required"].remove("score")  # required -> optional

    for edit in (add_optional_field, add_enum_value, widen):
        assert breaking_changes(BASE, changed(edit)) == [], edit.__name__


def test_a_removed_field_is_caught_at_any_depth() -> None:
    assert kinds(changed(lambda s: s["properties"].pop("title"))) == [("title", "removed_field")]
    assert kinds(changed(lambda s: s["$defs"]["Mention"]["properties"].pop("text"))) == [
        ("mentions[].text", "removed_field")
    ]


def test_a_renamed_field_is_a_removal_and_a_new_required_field() -> None:
    def rename(s: dict[str, Any]) -> None:
        s["properties"]["uid"] = s["properties"].pop("id")
        s["required"] = ["uid" if r == "id" else r for r in s["required"]]

    assert kinds(changed(rename)) == [("id", "removed_field"), ("uid", "new_required_field")]


def test_a_new_required_field_or_an_optional_one_made_required_is_caught() -> None:
    def add_required(s: dict[str, Any]) -> None:
        s["properties"]["source"] = {"type": "string"}
        s["required"].append("source")

    assert kinds(changed(add_required)) == [("source", "new_required_field")]
    assert kinds(changed(lambda s: s["required"].append("title"))) == [("title", "new_required_field")]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda s: s["properties"].__setitem__("url", {"type": "string"}), "url"),  # null no longer accepted
        (lambda s: s["properties"].__setitem__("score", {"type": "integer"}), "score"),  # number -> integer
        (lambda s: s["properties"]["title"].__setitem__("maxLength", 200), "title"),  # a new bound
        (lambda s: s["$defs"]["Mention"]["properties"]["start"].__setitem__("minimum", 1), "mentions[].start"),
        (lambda s: s["properties"]["id"].__setitem__("pattern", "^a_"), "id"),
        (lambda s: s["properties"]["fetched_at"].__setitem__("format", "date"), "fetched_at"),
        (lambda s: s["properties"]["title"].__setitem__("enum", ["a", "b"]), "title"),  # any string -> a closed set
        (lambda s: s["properties"]["versions"].__setitem__("additionalProperties", {"type": "integer"}), "versions{}"),
        (lambda s: s.__setitem__("additionalProperties", False), ""),  # unknown fields refused now
    ],
)
def test_a_narrowed_type_is_caught(edit: Any, path: str) -> None:
    assert kinds(changed(edit)) == [(path, "narrowed_type")]


def test_a_removed_enum_or_constant_value_is_caught() -> None:
    assert kinds(changed(lambda s: s["$defs"]["Mention"]["properties"]["type"]["enum"].remove("ORG"))) == [
        ("mentions[].type", "removed_enum_value")
    ]
    assert kinds(changed(lambda s: s["properties"]["schema_version"].__setitem__("const", 2))) == [
        ("schema_version", "removed_enum_value")
    ]


def test_a_field_added_to_a_closed_object_breaks_old_readers_that_refuse_unknown_fields() -> None:
    closed = changed(lambda s: s.__setitem__("additionalProperties", False))
    with_field = copy.deepcopy(closed)
    with_field["properties"]["language"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert kinds(with_field, closed) == [("language", "field_added_to_closed_object")]
    # Opening the object is compatible, and adding to the open object then is too.
    assert breaking_changes(closed, BASE) == []


def test_every_kind_the_checker_reports_is_documented() -> None:
    everything = changed(lambda s: (
        s["properties"].pop("title"), s["properties"].__setitem__("url", {"type": "string"}),
        s["required"].append("versions"), s["properties"]["schema_version"].__setitem__("const", 2),
    ))
    assert {b.kind for b in breaking_changes(BASE, everything)} <= set(BREAKING_KINDS)
    closed = changed(lambda s: s.__setitem__("additionalProperties", False))
    assert {b.kind for b in breaking_changes(closed, changed(lambda s: s["properties"].__setitem__("x", {})))} == {
        "field_added_to_closed_object"
    }

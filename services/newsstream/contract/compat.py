"""Is a new version of a JSON Schema compatible with the released one? Pure: two dicts in, a list out.

A topic's schema may change within a version only in ways that keep both
sides working during a rolling upgrade, in either order: a new reader
reading old records (a schema registry's BACKWARD mode) and an old reader
reading new records (FORWARD). :func:`breaking_changes` lists what breaks
either of them:

* ``removed_field``: a field of the old schema is gone (a rename is a removal
  and an addition): old readers that need it, and new readers of old
  records that carry it, can no longer agree on its meaning;
* ``new_required_field``: a field is required now that old records lack
  (new, or optional before);
* ``narrowed_type``: a value the old schema accepted is refused now (a type
  dropped from a union, ``null`` no longer allowed, ``number`` become
  ``integer``, an enum where any string was allowed, a tighter bound,
  length, pattern or format), or an object no longer admits unknown fields;
* ``removed_enum_value``: a value of an enum or constant is gone;
* ``field_added_to_closed_object``: a field was added to an object whose old
  schema refused unknown fields (``additionalProperties: false``): old
  readers refuse every new record.

Adding an optional field to an open object, adding an enum value and
widening a type are compatible. The schemas are the ones pydantic generates
(``$defs`` and local ``$ref``, ``anyOf`` for optional values, ``enum`` and
``const`` for literals); nothing else of JSON Schema is needed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

Schema = Mapping[str, Any]

BREAKING_KINDS = (
    "removed_field",
    "new_required_field",
    "narrowed_type",
    "removed_enum_value",
    "field_added_to_closed_object",
)

# Keywords that narrow a value when they appear or grow (lower bounds) or shrink (upper bounds).
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
# Keywords any change of which may refuse a value the old schema accepted.
_EXACT_CONSTRAINTS = ("pattern", "format", "multipleOf")


# Nesting compared at most: pydantic's schemas are not recursive, but a self-referencing one must end.
_MAX_DEPTH = 64


class Break(NamedTuple):
    path: str  # where, in field names: "enrichment.entities[].type" ("" for the root)
    kind: str  # one of BREAKING_KINDS
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.kind} ({self.detail})"


def breaking_changes(old: Schema, new: Schema) -> list[Break]:
    """Every change from ``old`` to ``new`` that breaks a reader of either version (empty: compatible)."""
    walk = _Walk(old, new)
    walk.compare(old, new, "")
    return walk.breaks


class _Walk:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.roots = (old_root, new_root)
        self.breaks: list[Break] = []

    def compare(self, old: Schema, new: Schema, path: str, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:  # a recursive schema ($ref to itself): compared deep enough
            return
        news = _alternatives(new, self.roots[1])
        for alt in _alternatives(old, self.roots[0]):
            kind = _type_of(alt)
            match = next((n for n in news if _type_of(n) in _ACCEPTING.get(kind, (kind, "any"))), None)
            if match is None:
                self.breaks.append(Break(path, "narrowed_type", f"{kind} no longer accepted"))
            else:
                self._compare_alike(alt, match, path, depth)

    def _compare_alike(self, old: Schema, new: Schema, path: str, depth: int) -> None:
        if _type_of(new) == "any":
            return  # accepts everything
        self._values(old, new, path)
        self._constraints(old, new, path)
        if _type_of(old) == "object":
            self._object(old, new, path, depth)
        elif _type_of(old) == "array" and "items" in old and "items" in new:
            self.compare(old["items"], new["items"], f"{path}[]", depth + 1)

    def _values(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _enum(old), _enum(new)
        if new_values is None:
            return
        if old_values is None:
            self.breaks.append(Break(path, "narrowed_type", f"limited to {sorted(map(str, new_values))}"))
            return
        removed = [v for v in old_values if v not in new_values]
        if removed:
            self.breaks.append(Break(path, "removed_enum_value", f"{sorted(map(str, removed))} removed"))

    def _constraints(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.breaks.append(Break(path, "narrowed_type", f"{key} {old.get(key)} -> {new[key]}"))
        for key in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.breaks.append(Break(path, "narrowed_type", f"{key} {old.get(key)} -> {new[key]}"))
        for key in _EXACT_CONSTRAINTS:
            if key in new and new.get(key) != old.get(key):
                self.breaks.append(Break(path, "narrowed_type", f"{key} {old.get(key)!r} -> {new[key]!r}"))

    def _object(self, old: Schema, new: Schema, path: str, depth: int) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        prefix = f"{path}." if path else ""
        for name, schema in old_props.items():
            if name not in new_props:
                self.breaks.append(Break(prefix + name, "removed_field", "no longer in the schema"))
            else:
                self.compare(schema, new_props[name], prefix + name, depth + 1)
        for name in sorted(new_required - old_required):
            was = "optional before" if name in old_props else "a new field"
            self.breaks.append(Break(prefix + name, "new_required_field", was))
        old_closed, new_closed = old.get("additionalProperties") is False, new.get("additionalProperties") is False
        if old_closed:
            for name in sorted(set(new_props) - set(old_props)):
                self.breaks.append(Break(prefix + name, "field_added_to_closed_object",
                                         "readers of the old schema refuse unknown fields"))
        elif new_closed:
            self.breaks.append(Break(path, "narrowed_type", "unknown fields no longer accepted"))
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):  # a map's values
            self.compare(old_extra, new_extra, f"{path}{{}}", depth + 1)


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, not {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _alternatives(schema: Schema, root: Schema) -> list[Schema]:
    """The schema as a flat union of alternatives, references resolved."""
    schema = _resolve(schema, root)
    union = schema.get("anyOf") or schema.get("oneOf")
    if union:
        return [alt for member in union for alt in _alternatives(member, root)]
    if isinstance(schema.get("type"), list):  # {"type": ["string", "null"]}
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _type_of(schema: Schema) -> str:
    if "type" in schema:
        return str(schema["type"])
    values = _enum(schema)
    if values:
        return _json_type(values[0])
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "any"


def _enum(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# Which new type accepts the values of an old one: every type itself, an integer also as a number.
_TYPES = ("string", "number", "integer", "boolean", "null", "object", "array", "any")
_ACCEPTING: dict[str, tuple[str, ...]] = {t: (t, "any") for t in _TYPES}
_ACCEPTING["integer"] = ("integer", "number", "any")

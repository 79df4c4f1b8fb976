"""pydantic JSON Schema -> Kubernetes structural schema (apiextensions.k8s.io/v1 JSONSchemaProps).

A structural schema has a `type` on every node, no `$ref`, and no `anyOf`/`oneOf` except the int-or-string form.
So: `$ref`s are inlined, `Optional[X]` becomes X (optional means "not in required"), `int | str` becomes
x-kubernetes-int-or-string, free-form maps become x-kubernetes-preserve-unknown-fields, draft-2020 numeric exclusive
bounds become the draft-4 booleans Kubernetes uses, and keys Kubernetes rejects or ignores are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

JsonSchema = dict[str, Any]

_NULL: JsonSchema = {"type": "null"}
# Keys of JSONSchemaProps this generator passes through unchanged; anything else pydantic emits is dropped or
# rewritten below, and an unexpected key fails loudly rather than producing a CRD the API server refuses.
_KEPT = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
_DROPPED = {"title", "$defs", "examples", "readOnly", "writeOnly", "deprecated"}
_FORMATS = {"date-time", "int32", "int64", "float", "double", "byte", "date"}
_INT_OR_STRING_ANY_OF = "__int_or_string_any_of__"


class SchemaError(ValueError):
    """The model uses a construct that has no structural equivalent."""


def structural(schema: JsonSchema) -> JsonSchema:
    """The structural form of a pydantic `model_json_schema()` result."""
    return _convert(schema, schema.get("$defs", {}), "")


def _resolve(node: JsonSchema, defs: JsonSchema) -> JsonSchema:
    # A field's own keys (its description, default) override those of the referenced definition (the class docstring).
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _convert(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    node = _resolve(node, defs)
    if "allOf" in node and len(node["allOf"]) == 1:  # older pydantic wraps a described $ref this way
        rest = {k: v for k, v in node.items() if k != "allOf"}
        node = {**_resolve(node["allOf"][0], defs), **rest}
    if "anyOf" in node:
        node = _collapse_any_of(node, defs, path)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}

    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == _INT_OR_STRING_ANY_OF:
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "format":
            if value in _FORMATS:
                out["format"] = value
        elif key == "default":
            if value is not None:
                out["default"] = _without_nulls(value)
        elif key == "properties":
            if value:  # an empty model (e.g. `pods: {}`) is just an object
                out["properties"] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "description":
            out["description"] = " ".join(value.split())  # docstrings wrap; CRD and docs want one paragraph
        elif key == "items":
            out["items"] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _convert(value, defs, f"{path}{{}}")
            # `false` (extra="forbid") is the structural default: unknown fields are pruned or, with
            # --validate=strict, rejected.
        elif key == "required":
            out["required"] = sorted(value)
        elif key in _KEPT:
            out[key] = value
        else:
            raise SchemaError(f"{path or '<root>'}: no structural equivalent for JSON Schema key {key!r}")

    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = "object"
    if "properties" in out and "additionalProperties" in out:
        raise SchemaError(f"{path}: properties and additionalProperties are mutually exclusive")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path or '<root>'}: a structural schema needs a type on every node")
    return out


def _collapse_any_of(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    branches = [_resolve(b, defs) for b in node["anyOf"] if b != _NULL]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(branches) == 1:
        return {**branches[0], **rest}
    types = {b.get("type") for b in branches}
    if types == {"integer", "string"} and len(branches) == 2:
        # The one anyOf a structural schema allows, spelled as controller-gen spells quantities.
        string = next(b for b in branches if b["type"] == "string")
        limits = {k: v for k, v in string.items() if k in ("pattern", "maxLength")}
        return {**limits, **rest, "x-kubernetes-int-or-string": True, _INT_OR_STRING_ANY_OF: True}
    raise SchemaError(f"{path}: a union of {sorted(map(str, types))} has no structural form")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def without_defaults(schema: JsonSchema) -> JsonSchema:
    """A copy with every `default` removed: the API server applies defaults even in status, which the operator owns."""
    out: JsonSchema = {}
    for key, value in schema.items():
        if key == "default":
            continue
        if key == "properties":
            out[key] = {name: without_defaults(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = without_defaults(value)
        else:
            out[key] = value
    return out


def walk(schema: JsonSchema, path: str = "") -> Iterator[tuple[str, JsonSchema]]:
    """Every node of a structural schema with its path (`.spec.rollout.canary.steps[].weight`), parents first."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")

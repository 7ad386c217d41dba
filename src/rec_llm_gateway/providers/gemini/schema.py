"""JSON Schema -> the OpenAPI subset Gemini's ``parameters`` and ``responseSchema`` take.

Used only with the provider setting ``tool_schema: openapi`` (the default sends the client's JSON
Schema untouched as ``parametersJsonSchema`` / ``responseJsonSchema``).
"""

from __future__ import annotations

from typing import Any, Final

from ...errors import InvalidRequestError

__all__ = ["openapi_schema"]

_OPENAPI_KEYS: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema rewritten into the OpenAPI subset Gemini's ``parameters``/``responseSchema``
    take: ``$ref`` inlined, ``type: [X, "null"]`` -> ``nullable``, ``const`` -> ``enum``, ``oneOf``
    -> ``anyOf``, unsupported keywords (``additionalProperties``, ``$schema``, ...) removed."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    sanitized: dict[str, Any] = _sanitize(schema, defs, ())
    return sanitized


def _sanitize(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            why = "is recursive" if name in seen else "cannot be resolved"
            raise InvalidRequestError(
                f"The JSON Schema reference {ref!r} {why}; Gemini's OpenAPI schemas cannot express it "
                "(use the provider setting tool_schema: json_schema).",
                code="unsupported_schema",
            )
        node = {**defs[name], **{key: value for key, value in node.items() if key != "$ref"}}
        seen = (*seen, name)
    out: dict[str, Any] = {key: value for key, value in node.items() if key in _OPENAPI_KEYS}
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [item for item in kind if item != "null"]
        if len(kinds) != len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": item} for item in kinds]
    if "const" in node:
        out["enum"] = [node["const"]]
    if isinstance(node.get("properties"), dict):
        out["properties"] = {key: _sanitize(value, defs, seen) for key, value in node["properties"].items()}
    if "items" in node:
        out["items"] = _sanitize(node["items"], defs, seen)
    variants = node.get("anyOf") or node.get("oneOf")
    if isinstance(variants, list):
        members = [item for item in variants if not (isinstance(item, dict) and item.get("type") == "null")]
        if len(members) != len(variants):
            out["nullable"] = True
        if len(members) == 1:
            out.update(_sanitize(members[0], defs, seen))
        else:
            out["anyOf"] = [_sanitize(item, defs, seen) for item in members]
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        for member in all_of:
            out.update(_sanitize(member, defs, seen))
    return out

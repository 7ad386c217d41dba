"""Request-side helpers every native provider needs, so that they agree with each other.

- ``parse_data_url``: ``data:`` URLs (base64 or percent-encoded) -> media type and base64 data;
- ``tool_arguments``: an assistant tool call's JSON ``arguments`` -> the object vendors want;
- ``json_tool`` / ``json_tool_name``: the forced tool that carries ``response_format`` output;
- ``claude_thinking``: ``reasoning_effort`` -> Claude's extended-thinking budget and ``max_tokens``
  (the same for Claude on Anthropic and on Bedrock).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from ..errors import InvalidRequestError
from ..schema import ChatCompletionRequest

__all__ = [
    "CLAUDE_THINKING_BUDGETS",
    "JSON_TOOL",
    "MIN_CLAUDE_THINKING_BUDGET",
    "DataURL",
    "JsonTool",
    "claude_thinking",
    "json_tool",
    "json_tool_name",
    "parse_data_url",
    "tool_arguments",
]


# -- data URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataURL:
    media_type: str
    """Lower case; ``text/plain`` when the URL names none (RFC 2397)."""
    data: str
    """The bytes, base64-encoded (what every vendor's JSON body wants)."""


def parse_data_url(url: str, param: str, default_type: str = "text/plain") -> DataURL:
    """Read ``data:<type>[;base64],<data>``. Percent-encoded (non-base64) data is encoded to base64,
    so every provider accepts both forms. Raises a 400 naming ``param`` for anything else."""
    header, comma, data = url[5:].partition(",") if url.startswith("data:") else ("", "", "")
    if not comma:
        raise InvalidRequestError(
            f"'{param}' is not a valid data URL (data:<type>;base64,<data>).",
            param=param,
            code="invalid_value",
        )
    if not data:
        raise InvalidRequestError(
            f"The data URL in '{param}' has no data.", param=param, code="invalid_value"
        )
    media_type, *options = header.split(";")
    media_type = media_type.strip().lower() or default_type
    if "base64" not in options:
        data = base64.b64encode(unquote_to_bytes(data)).decode("ascii")
    return DataURL(media_type, data)


# -- tool calls -----------------------------------------------------------------------------------


def tool_arguments(arguments: str, param: str) -> dict[str, Any]:
    """An assistant tool call's ``arguments`` (a JSON string) as the object vendors take; empty is
    ``{}``. Raises a 400 naming ``param`` when it is not a JSON object."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequestError(
            f"'{param}' must be a JSON object (the tool call's arguments, as a JSON string).",
            param=param,
            code="invalid_tool_arguments",
        )
    return parsed


# -- the JSON tool behind response_format ---------------------------------------------------------

JSON_TOOL: Final = "json_response"
"""Default name of the tool that carries ``response_format`` output."""
_JSON_TOOL_DESCRIPTION: Final = (
    "Give your complete final answer to the user by calling this tool; its input is the answer."
)


@dataclass(frozen=True, slots=True)
class JsonTool:
    """The forced tool standing in for ``response_format``: the schema is its input schema, and
    the call comes back as the message ``content`` (``translate.Reply`` does that)."""

    name: str
    description: str
    schema: dict[str, Any]
    strict: bool = False


def json_tool_name(request: ChatCompletionRequest, *, schema_name: bool = False) -> str | None:
    """The JSON tool's name for ``request``, or ``None`` without JSON output. It is ``json_response``
    (or, with ``schema_name``, the ``json_schema.name`` when given), suffixed ``_2``, ``_3``, ... when
    a client tool already has the name. Deterministic, so the response side recomputes it."""
    fmt = request.response_format
    if not fmt or fmt.get("type") not in ("json_schema", "json_object"):
        return None
    base = JSON_TOOL
    if schema_name:
        spec = fmt.get("json_schema")
        given = spec.get("name") if isinstance(spec, dict) else None
        if isinstance(given, str) and given:
            base = given
    taken = {tool.function.name for tool in request.tools or () if tool.function is not None}
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def json_tool(request: ChatCompletionRequest, *, schema_name: bool = False) -> JsonTool | None:
    """The JSON tool for ``request``'s ``response_format`` (``None`` for none or ``text``). Raises a
    400 for an unknown type or a schema whose root is not an object (tool inputs are objects)."""
    fmt = request.response_format
    kind = fmt.get("type") if fmt else None
    if fmt is None or kind in (None, "text"):
        return None
    if kind not in ("json_object", "json_schema"):
        raise InvalidRequestError(
            "response_format type must be 'text', 'json_object' or 'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    name = json_tool_name(request, schema_name=schema_name) or JSON_TOOL
    if kind == "json_object":
        return JsonTool(name, _JSON_TOOL_DESCRIPTION, {"type": "object"})
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequestError(
            "response_format of type json_schema needs a 'json_schema' object.",
            param="response_format.json_schema",
            code="invalid_value",
        )
    schema = spec.get("schema") or {"type": "object"}
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise InvalidRequestError(
            "JSON output through a tool needs a JSON schema whose root is an object.",
            param="response_format.json_schema.schema",
            code="invalid_value",
        )
    description = _JSON_TOOL_DESCRIPTION
    if isinstance(spec.get("description"), str):
        description = f"{description} {spec['description']}"
    return JsonTool(name, description, {"type": "object", **schema}, strict=spec.get("strict") is True)


# -- Claude's extended thinking -------------------------------------------------------------------

CLAUDE_THINKING_BUDGETS: Final[dict[str, int]] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
"""``reasoning_effort`` -> ``budget_tokens`` for Claude, wherever it runs (``none``: no thinking)."""
MIN_CLAUDE_THINKING_BUDGET: Final = 1024


def claude_thinking(
    effort: Any, max_tokens: int | None, *, answer_room: int, model_max_output: int | None = None
) -> tuple[dict[str, Any] | None, int | None]:
    """``(thinking, max_tokens)`` for ``reasoning_effort``: ``(None, max_tokens)`` without thinking.

    Claude counts the thinking inside ``max_tokens``: without a client value it becomes
    ``answer_room`` plus the budget (capped at the model's maximum); with one, the budget shrinks
    to fit below it, and a ``max_tokens`` too small for the smallest budget is a 400."""
    if effort is None or effort == "none":
        return None, max_tokens
    budget = CLAUDE_THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        allowed = ", ".join(["none", *CLAUDE_THINKING_BUDGETS])
        raise InvalidRequestError(
            f"Invalid value for 'reasoning_effort': expected one of {allowed}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    if max_tokens is None:
        max_tokens = answer_room + budget
        if model_max_output:
            max_tokens = min(max_tokens, model_max_output)
    budget = min(budget, max_tokens - 1)
    if budget < MIN_CLAUDE_THINKING_BUDGET:
        raise InvalidRequestError(
            f"With reasoning_effort, max_tokens must be above {MIN_CLAUDE_THINKING_BUDGET} "
            "(Claude's smallest thinking budget).",
            param="max_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}, max_tokens

"""OpenAI chat request -> Anthropic Messages request, as pure functions (no I/O, no provider state).

This module handles the parameters, tools and JSON output; ``messages`` the messages.

The parameter rule (the same for every field): an OpenAI parameter Anthropic has no equivalent for is
**dropped with a debug log** when ignoring it still gives the client an answer of the shape it asked
for (sampling hints such as ``seed`` or ``presence_penalty``, OpenAI-only bookkeeping such as
``store``), and **rejected with a 400** naming the parameter when dropping it would change what the
client gets back (``n > 1``, ``logprobs: true``, audio output, an unsupported content part).

JSON output (``response_format``) uses a forced tool: the schema becomes the input schema of an extra
tool the model must call, and that call comes back as the message ``content``. It works on every
Claude model and guarantees a JSON object that matches the schema's shape, which an instruction in
the prompt does not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from ...errors import InvalidRequestError
from ...schema import ChatCompletionRequest
from .messages import to_messages

__all__ = ["JSON_TOOL", "AnthropicRequest", "json_tool_name", "to_anthropic"]

logger = logging.getLogger("rec_llm_gateway.providers.anthropic")

JSON_TOOL: Final = "json_response"
"""Name of the tool that carries ``response_format`` output (suffixed if a client tool has the name)."""

UNKNOWN_MODEL_MAX_TOKENS: Final = 4096
"""``max_tokens`` when the client sent none and the catalog does not know the model."""
DEFAULT_MAX_TOKENS_CAP: Final = 8192
"""Cap on the catalog's max output used as a default: Anthropic counts ``max_tokens`` against the
output-tokens rate limit up front, so defaulting to a model's 64k maximum would throttle callers."""
MIN_THINKING_BUDGET: Final = 1024

THINKING_BUDGETS: Final[dict[str, int]] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
"""``reasoning_effort`` -> extended-thinking ``budget_tokens`` (``none`` switches thinking off)."""

NATIVE_EXTRAS: Final = frozenset(
    {"top_k", "thinking", "output_config", "context_management", "container", "mcp_servers"}
)
"""Unknown request fields that are Anthropic's own parameters: passed through untouched."""

HANDLED_EXTRAS: Final = frozenset({"reasoning_effort", "safety_identifier"})


@dataclass(slots=True)
class AnthropicRequest:
    """The translated request: the JSON body, and the name of the JSON-output tool (if any)."""

    payload: dict[str, Any]
    json_tool: str | None = None


def json_tool_name(request: ChatCompletionRequest) -> str | None:
    """The tool that carries ``response_format`` output for ``request``, or ``None`` (deterministic,
    so the response side can recompute it instead of keeping per-request state)."""
    fmt = request.response_format
    if not fmt or fmt.get("type") not in ("json_schema", "json_object"):
        return None
    taken = {tool.function.name for tool in request.tools or () if tool.function is not None}
    name, suffix = JSON_TOOL, 1
    while name in taken:
        suffix += 1
        name = f"{JSON_TOOL}_{suffix}"
    return name


def to_anthropic(
    request: ChatCompletionRequest,
    model: str,
    *,
    stream: bool = False,
    default_max_tokens: int | None = None,
    model_max_output: int | None = None,
) -> AnthropicRequest:
    """Translate a validated OpenAI request into an Anthropic ``/v1/messages`` body.

    Raises ``InvalidRequestError`` (400, naming the parameter) for what cannot be translated.
    """
    _reject_unsupported(request)
    system, messages = to_messages(request)
    payload: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        # One plain system text stays a string (the common form); several, or cache marks, stay blocks.
        single = len(system) == 1 and "cache_control" not in system[0]
        payload["system"] = system[0]["text"] if single else system

    extras = request.model_extra or {}
    thinking = extras.get("thinking")
    budget = _thinking_budget(extras.get("reasoning_effort")) if thinking is None else None
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is None:
        max_tokens = default_max_tokens or min(
            model_max_output or UNKNOWN_MODEL_MAX_TOKENS, DEFAULT_MAX_TOKENS_CAP
        )
        thinking_budget = budget if budget is not None else _budget_of(thinking)
        if thinking_budget:  # max_tokens includes the thinking: leave room for the answer too
            max_tokens += thinking_budget
            if model_max_output:
                max_tokens = min(max_tokens, model_max_output)
    payload["max_tokens"] = max_tokens
    if budget is not None:
        budget = min(budget, max_tokens - 1)
        if budget < MIN_THINKING_BUDGET:
            raise InvalidRequestError(
                f"With reasoning_effort, max_tokens must be above {MIN_THINKING_BUDGET} "
                "(Anthropic's smallest thinking budget).",
                param="max_tokens",
            )
        thinking = {"type": "enabled", "budget_tokens": budget}

    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    stop = request.stop
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = request.user or extras.get("safety_identifier")
    if user:
        payload["metadata"] = {"user_id": str(user)}
    for name, value in extras.items():
        if name in NATIVE_EXTRAS:
            payload[name] = value
        elif name not in HANDLED_EXTRAS:
            _drop(name)
    if thinking is not None:
        payload["thinking"] = thinking
    thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")

    json_tool = _add_tools(request, payload, thinking_on)
    if stream:
        payload["stream"] = True
    return AnthropicRequest(payload, json_tool)


# -- parameters -----------------------------------------------------------------------------------

_DROPPED_FIELDS: Final = (
    "seed",
    "presence_penalty",
    "frequency_penalty",
)


def _reject_unsupported(request: ChatCompletionRequest) -> None:
    if request.n is not None and request.n != 1:
        raise InvalidRequestError("Anthropic returns one choice per request; n must be 1.", param="n")
    if request.logprobs:
        raise InvalidRequestError("Anthropic does not return log probabilities.", param="logprobs")
    if request.top_logprobs:
        raise InvalidRequestError("Anthropic does not return log probabilities.", param="top_logprobs")
    fmt = request.response_format
    if fmt is not None and fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequestError(
            "response_format type must be 'text', 'json_object' or 'json_schema'.",
            param="response_format.type",
        )
    extras = request.model_extra or {}
    modalities = extras.get("modalities")
    if isinstance(modalities, list) and any(item != "text" for item in modalities):
        raise InvalidRequestError("Anthropic only answers with text.", param="modalities")
    if extras.get("audio") is not None:
        raise InvalidRequestError("Anthropic does not produce audio.", param="audio")
    if logger.isEnabledFor(logging.DEBUG):
        for name in _DROPPED_FIELDS:
            if getattr(request, name) is not None:
                _drop(name)


def _budget_of(thinking: Any) -> int:
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    return budget if isinstance(budget, int) and budget > 0 else 0


def _drop(name: str) -> None:
    logger.debug("anthropic: dropping request parameter %r (no Anthropic equivalent)", name)


def _thinking_budget(effort: Any) -> int | None:
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        allowed = ", ".join(["none", *THINKING_BUDGETS])
        raise InvalidRequestError(
            f"Invalid value for 'reasoning_effort': expected one of {allowed}.", param="reasoning_effort"
        )
    return budget


# -- tools and JSON output ----------------------------------------------------------------------


def _add_tools(request: ChatCompletionRequest, payload: dict[str, Any], thinking_on: bool) -> str | None:
    tools: list[dict[str, Any]] = []
    for position, tool in enumerate(request.tools or ()):
        function = tool.function
        if tool.type != "function" or function is None:
            raise InvalidRequestError(
                f"Anthropic only supports function tools, not {tool.type!r}.", param=f"tools[{position}].type"
            )
        schema = function.parameters or {"type": "object", "properties": {}}
        if "type" not in schema:
            schema = {"type": "object", **schema}
        entry: dict[str, Any] = {"name": function.name}
        if function.description is not None:
            entry["description"] = function.description
        entry["input_schema"] = schema
        cache_control = (tool.model_extra or {}).get("cache_control")
        if cache_control is not None:
            entry["cache_control"] = cache_control
        tools.append(entry)

    choice = _tool_choice(request.tool_choice) if tools else None
    json_tool = json_tool_name(request)
    if json_tool is not None:
        if tools and choice is None:
            choice = {"type": "auto"}  # OpenAI's default when tools are offered
        tools.append(_json_tool(request.response_format or {}, json_tool))
        if thinking_on:
            # Anthropic refuses a forced tool while thinking: ask for it instead.
            instruction = f"Give your final answer by calling the {json_tool} tool."
            system = payload.get("system")
            if isinstance(system, list):
                system.append({"type": "text", "text": instruction})
            else:
                payload["system"] = f"{system}\n\n{instruction}" if system else instruction
            if choice is None or choice["type"] == "none":
                choice = {"type": "auto"}
        elif choice is None or choice["type"] == "none":
            choice = {"type": "tool", "name": json_tool}
        elif choice["type"] == "auto":
            choice = {"type": "any"}  # a real tool call, or the answer through the JSON tool
    if not tools:
        return None
    if request.parallel_tool_calls is False:
        if choice is None:
            choice = {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    payload["tools"] = tools
    if choice is not None:
        payload["tool_choice"] = choice
    return json_tool


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise InvalidRequestError(
        "Invalid value for 'tool_choice': expected 'auto', 'none', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def _json_tool(response_format: dict[str, Any], name: str) -> dict[str, Any]:
    description = "Give your complete final answer to the user by calling this tool; its input is the answer."
    if response_format.get("type") == "json_object":
        return {"name": name, "description": description, "input_schema": {"type": "object"}}
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequestError(
            "response_format of type json_schema needs a 'json_schema' object.",
            param="response_format.json_schema",
        )
    schema = spec.get("schema") or {"type": "object"}
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise InvalidRequestError(
            "Anthropic structured output needs a JSON schema whose root is an object.",
            param="response_format.json_schema.schema",
        )
    if isinstance(spec.get("description"), str):
        description = f"{description} {spec['description']}"
    return {"name": name, "description": description, "input_schema": {"type": "object", **schema}}

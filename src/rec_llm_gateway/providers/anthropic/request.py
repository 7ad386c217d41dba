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
from ...translate.request import JsonTool, claude_thinking, json_tool, json_tool_name
from .messages import to_messages

__all__ = ["AnthropicRequest", "json_tool_name", "to_anthropic"]

logger = logging.getLogger("rec_llm_gateway.providers.anthropic")

UNKNOWN_MODEL_MAX_TOKENS: Final = 4096
"""``max_tokens`` when the client sent none and the catalog does not know the model."""
DEFAULT_MAX_TOKENS_CAP: Final = 8192
"""Cap on the catalog's max output used as a default: Anthropic counts ``max_tokens`` against the
output-tokens rate limit up front, so defaulting to a model's 64k maximum would throttle callers."""

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
    max_tokens = request.max_completion_tokens or request.max_tokens
    answer_room = default_max_tokens or min(
        model_max_output or UNKNOWN_MODEL_MAX_TOKENS, DEFAULT_MAX_TOKENS_CAP
    )
    if thinking is None:
        thinking, max_tokens = claude_thinking(
            extras.get("reasoning_effort"),
            max_tokens,
            answer_room=answer_room,
            model_max_output=model_max_output,
        )
    elif max_tokens is None and _budget_of(thinking):  # max_tokens includes the thinking: leave room
        max_tokens = answer_room + _budget_of(thinking)
        if model_max_output:
            max_tokens = min(max_tokens, model_max_output)
    payload["max_tokens"] = max_tokens if max_tokens is not None else answer_room

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
    answer = json_tool(request)
    if answer is not None:
        if tools and choice is None:
            choice = {"type": "auto"}  # OpenAI's default when tools are offered
        tools.append(_json_tool(answer))
        if thinking_on:
            # Anthropic refuses a forced tool while thinking: ask for it instead.
            instruction = f"Give your final answer by calling the {answer.name} tool."
            system = payload.get("system")
            if isinstance(system, list):
                system.append({"type": "text", "text": instruction})
            else:
                payload["system"] = f"{system}\n\n{instruction}" if system else instruction
            if choice is None or choice["type"] == "none":
                choice = {"type": "auto"}
        elif choice is None or choice["type"] == "none":
            choice = {"type": "tool", "name": answer.name}
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
    return answer.name if answer is not None else None


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


def _json_tool(tool: JsonTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.schema}

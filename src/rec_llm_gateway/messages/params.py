"""The parameters of an Anthropic Messages request in the gateway's OpenAI chat request (the
messages are ``to_chat``'s): sampling, tools and ``tool_choice``, thinking and ``output_config``,
and ``fit_to_model``, which adjusts the result to the model an attempt goes to.

- ``tools`` -> function tools (server tools, run by Anthropic, are refused); ``tool_choice``
  auto/any/tool/none -> auto/required/named/none, ``disable_parallel_tool_use`` ->
  ``parallel_tool_calls: false``;
- ``thinking`` with a budget -> ``reasoning_effort`` (the nearest effort of the Anthropic provider's
  own table); ``output_config.effort`` -> ``reasoning_effort``; ``output_config.format`` ->
  ``response_format``;
- ``max_tokens`` -> ``max_completion_tokens`` (what OpenAI's reasoning models require; every
  provider of the gateway reads it), ``stop_sequences`` -> ``stop``, ``metadata.user_id`` -> ``user``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidRequestError
from ..schema import ChatCompletionRequest
from ..translate.request import CLAUDE_THINKING_BUDGETS as THINKING_BUDGETS
from .wire import Block, CountTokensRequest, MessagesRequest, require_object

if TYPE_CHECKING:
    from ..catalog import ModelInfo

__all__ = ["ONLY_NATIVE", "add_parameters", "fit_to_model", "reasoning_effort_for"]

_EFFORTS: Final = ("low", "medium", "high")
"""The efforts a thinking budget maps to: the ones every reasoning provider of the gateway accepts."""

_OUTPUT_EFFORTS: Final = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}

_USER_MAX: Final = 64

ONLY_NATIVE: Final = "it has no equivalent outside Anthropic's API; route this model to Claude"


def add_parameters(request: MessagesRequest | CountTokensRequest, payload: dict[str, Any]) -> None:
    """Everything but the messages, into ``payload`` (a count_tokens request has no sampling)."""
    if isinstance(request, MessagesRequest):
        _sampling(request, payload)
    if request.tools:
        payload["tools"] = [_tool(tool, f"tools[{position}]") for position, tool in enumerate(request.tools)]
        if request.tool_choice is not None:
            _tool_choice(request.tool_choice, payload)
    effort = reasoning_effort_for(request.thinking)
    output = (request.model_extra or {}).get("output_config")
    if output is not None:
        effort = _output_config(require_object(output, "output_config"), payload) or effort
    if effort is not None:
        payload["reasoning_effort"] = effort


def _sampling(request: MessagesRequest, payload: dict[str, Any]) -> None:
    payload["max_completion_tokens"] = request.max_tokens
    if request.stream:
        # The usage chunk is how the answer learns its token counts (message_delta's usage).
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    if request.stop_sequences:
        payload["stop"] = request.stop_sequences
    user = (request.metadata or {}).get("user_id")
    if isinstance(user, str) and user:
        # OpenAI caps ``user`` at 64 characters; Claude Code sends a JSON object as its user id.
        payload["user"] = user if len(user) <= _USER_MAX else "sha256:" + _digest(user)


def fit_to_model(request: ChatCompletionRequest, provider_type: str, model: str) -> ChatCompletionRequest:
    """The translated request adjusted to what ``model`` accepts, as far as the catalog knows it:
    ``max_completion_tokens`` capped at its max output (Claude Code asks for 64,000; gpt-4o refuses
    more than 16,384) and ``reasoning_effort`` dropped for a model that does not reason (OpenAI
    refuses it there). A model the catalog does not know is left alone."""
    info = _catalogued(model, provider_type)
    if info is None:
        return request
    limit = request.max_completion_tokens
    too_long = limit is not None and limit > info.max_output
    extra = request.model_extra or {}
    no_reasoning = not info.reasoning and "reasoning_effort" in extra
    if not too_long and not no_reasoning:
        return request
    fitted = request.model_copy(update={"max_completion_tokens": info.max_output} if too_long else None)
    if no_reasoning:
        fitted.__pydantic_extra__ = {
            name: value for name, value in extra.items() if name != "reasoning_effort"
        }
    return fitted


@lru_cache(maxsize=512)
def _catalogued(model: str, provider_type: str) -> ModelInfo | None:
    from ..catalog import lookup  # the catalog's tables load on first use

    return lookup(model, provider_type)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def reasoning_effort_for(thinking: Block | None) -> str | None:
    """``thinking: {"type": "enabled", "budget_tokens": N}`` as the largest effort whose budget in
    the Anthropic provider's table fits in ``N`` (at least ``low``); adaptive or disabled: none."""
    if not thinking or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise InvalidRequestError(
            "'thinking.budget_tokens' must be an integer.", param="thinking.budget_tokens"
        )
    effort = _EFFORTS[0]
    for name in _EFFORTS:
        if THINKING_BUDGETS[name] <= budget:
            effort = name
    return effort


# -- tools and output ------------------------------------------------------------------------------


def _tool(tool: Block, path: str) -> dict[str, Any]:
    tool = require_object(tool, path)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequestError(
            f"Tools of type {kind!r} are run by Anthropic's servers ({ONLY_NATIVE}).", param=f"{path}.type"
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("A tool needs a 'name'.", param=f"{path}.name")
    schema = tool.get("input_schema")
    function: dict[str, Any] = {
        "name": name,
        "parameters": schema if isinstance(schema, dict) else {"type": "object", "properties": {}},
    }
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Block, payload: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        payload["tool_choice"] = "auto"
    elif kind == "any":
        payload["tool_choice"] = "required"
    elif kind == "none":
        payload["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        payload["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequestError(
            "Invalid value for 'tool_choice': expected type auto, any, tool (with a name) or none.",
            param="tool_choice",
        )
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        payload["parallel_tool_calls"] = False


def _output_config(config: Block, payload: dict[str, Any]) -> str | None:
    fmt = config.get("format")
    if fmt is not None:
        fmt = require_object(fmt, "output_config.format")
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequestError(
                '\'output_config.format\' must be {"type": "json_schema", "schema": {...}}.',
                param="output_config.format",
            )
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"]},
        }
    effort = config.get("effort")
    if effort is None:
        return None
    if effort not in _OUTPUT_EFFORTS:
        raise InvalidRequestError(
            f"Invalid value for 'output_config.effort': {effort!r}.", param="output_config.effort"
        )
    return _OUTPUT_EFFORTS[effort]

"""An OpenAI ``chat.completion`` -> an Anthropic ``message`` (pure functions).

Blocks come in Anthropic's order: thinking (``reasoning_content``), then text, then one ``tool_use``
per tool call. Stop reasons are the Anthropic provider's table read backwards, so the two directions
cannot drift apart. Usage: Anthropic counts cached input beside ``input_tokens``, OpenAI inside
``prompt_tokens``.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic_core

from ..errors import BadGatewayError
from ..providers.anthropic.response import FINISH_REASONS
from ..usage import TokenUsage

__all__ = ["STOP_REASONS", "anthropic_usage", "from_chat", "stop_reason_for", "tool_input"]

STOP_REASONS: Final[dict[str, str]] = {finish: stop for stop, finish in reversed(FINISH_REASONS.items())}
"""OpenAI ``finish_reason`` -> Anthropic ``stop_reason``: the first Anthropic reason that maps to it
(``stop`` -> ``end_turn``, ``length`` -> ``max_tokens``, ``tool_calls`` -> ``tool_use``,
``content_filter`` -> ``refusal``)."""


def stop_reason_for(finish_reason: Any) -> str:
    if finish_reason == "function_call":  # the deprecated form of a tool call
        return "tool_use"
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def anthropic_usage(usage: TokenUsage | None) -> dict[str, Any]:
    """``usage`` in Anthropic's terms (``input_tokens`` without the cache reads and writes)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    fresh = max(0, usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": fresh,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def tool_input(arguments: Any, name: str) -> dict[str, Any]:
    """A tool call's ``arguments`` string as the object Anthropic's ``input`` must be."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = pydantic_core.from_json(arguments)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadGatewayError(f"the upstream called tool {name!r} with arguments that are not a JSON object")
    return value


def from_chat(response: dict[str, Any], usage: TokenUsage | None, model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` dict as an Anthropic ``message`` dict; ``model`` is the name the
    client asked for, used when the upstream did not name one."""
    choices = response.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(part.get("text") or "" for part in text if isinstance(part, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal and not text:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name") or ""
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": name,
                "input": tool_input(function.get("arguments"), name),
            }
        )
    return {
        "id": response.get("id") or "",
        "type": "message",
        "role": "assistant",
        "model": response.get("model") or model,
        "content": content,
        "stop_reason": stop_reason_for(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }

"""An Anthropic ``message`` -> an OpenAI ``chat.completion`` and its usage (pure functions; the
stream is ``stream``, errors are ``errors``). Only what Anthropic says is read here; the shape of
the answer is ``translate.CompletionWriter``'s."""

from __future__ import annotations

from typing import Any, Final

from ...errors import BadGatewayError
from ...translate import CompletionWriter, Reply, arguments_json
from ...usage import TokenUsage
from ..base import ChatResult
from .errors import stream_error_from_anthropic

__all__ = ["FINISH_REASONS", "from_anthropic", "usage_from_anthropic"]

FINISH_REASONS: Final[dict[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_from_anthropic(usage: Any) -> TokenUsage | None:
    """Anthropic ``usage`` in OpenAI terms (``input_tokens`` excludes cache reads and writes)."""
    if not isinstance(usage, dict):
        return None
    return TokenUsage.from_uncached(
        usage.get("input_tokens"),
        usage.get("cache_read_input_tokens"),
        usage.get("cache_creation_input_tokens"),
        usage.get("output_tokens"),
    )


def from_anthropic(data: Any, json_tool: str | None = None) -> ChatResult:
    """An Anthropic ``message`` as an OpenAI ``chat.completion`` and its usage.

    A call of ``json_tool`` (the ``response_format`` carrier) becomes the message content.
    """
    if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("content"), list):
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise stream_error_from_anthropic(data["error"])
        raise BadGatewayError("the upstream returned a body that is not an Anthropic message")
    writer = CompletionWriter(data.get("id") or "", data.get("model") or "")
    reply = Reply(writer, json_tool)
    reply.begin()
    for position, block in enumerate(data["content"]):
        kind = block.get("type")
        if kind == "text":
            reply.text(block["text"])
        elif kind == "tool_use":
            reply.tool_call(position, block["id"], block["name"], arguments_json(block.get("input")))
        elif kind == "thinking":
            reply.reasoning(block.get("thinking") or "")
            reply.thinking_block(block)
        elif kind == "redacted_thinking":
            reply.thinking_block(block)
        # server tool blocks (web search and the like) have no OpenAI form; their text is in text blocks
    reply.finish(FINISH_REASONS.get(data.get("stop_reason") or "", "stop"))
    reply.add_usage(usage_from_anthropic(data.get("usage")))
    return ChatResult(response=writer.response(), usage=reply.usage)

"""A Converse answer -> an OpenAI ``chat.completion`` and its usage; stop reasons and usage (shared
with ``stream``). Only what Converse says is read here; the answer's shape is
``translate.CompletionWriter``'s.

Stop reasons: ``end_turn``/``stop_sequence`` -> ``stop``; ``max_tokens``/
``model_context_window_exceeded`` -> ``length``; ``tool_use`` -> ``tool_calls`` (``stop`` when the
only tool called is the ``response_format`` stand-in); ``guardrail_intervened``/``content_filtered``
-> ``content_filter``; ``malformed_model_output``/``malformed_tool_use`` -> a 502 (the answer is not
usable, and a 502 lets the router fail over); anything newer -> ``stop``.
"""

from __future__ import annotations

from typing import Any, Final

from ...errors import BadGatewayError
from ...translate import CompletionWriter, Reply, arguments_json
from ...usage import TokenUsage
from ..base import ChatResult

__all__ = ["finish_reason", "parse_converse_response", "usage_from"]

_FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED: Final = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(stop_reason: Any) -> str:
    reason = _FINISH_REASONS.get(stop_reason)
    if reason is not None:
        return reason
    if stop_reason in _MALFORMED:
        raise BadGatewayError(
            f"the Bedrock model produced an unusable answer (stopReason {stop_reason})", code=stop_reason
        )
    return "stop"


def usage_from(usage: Any) -> TokenUsage | None:
    """Converse ``usage`` in OpenAI terms (``inputTokens`` excludes cache reads and writes)."""
    if not isinstance(usage, dict):
        return None
    return TokenUsage.from_uncached(
        usage.get("inputTokens"),
        usage.get("cacheReadInputTokens"),
        usage.get("cacheWriteInputTokens"),
        usage.get("outputTokens"),
        usage.get("totalTokens"),
    )


def parse_converse_response(
    data: Any, *, model: str, response_id: str, created: int, json_tool: str | None
) -> ChatResult:
    """A Converse response body -> an OpenAI ``chat.completion`` and its usage."""
    if not isinstance(data, dict):
        raise BadGatewayError("Bedrock returned a response that is not a JSON object")
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        # Not a Converse answer: often an error body ({"message": ...}) that a proxy sent with 200.
        # An empty completion would pass it off as a success.
        error = data.get("message") or data.get("Message")
        detail = f": {str(error)[:300]}" if error else ""
        raise BadGatewayError(f"Bedrock returned a response without output.message{detail}")
    writer = CompletionWriter(response_id, model, created)
    reply = Reply(writer, json_tool)
    reply.begin()
    for position, block in enumerate(message.get("content") or ()):
        if "text" in block:
            reply.text(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            reply.tool_call(position, use["toolUseId"], use["name"], arguments_json(use.get("input")))
        elif "reasoningContent" in block:
            reply.reasoning((block["reasoningContent"].get("reasoningText") or {}).get("text") or "")
    reply.finish(finish_reason(data.get("stopReason")))
    reply.add_usage(usage_from(data.get("usage")))
    return ChatResult(response=writer.response(), usage=reply.usage)

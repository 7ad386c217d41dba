"""OpenAI ``chat.completion.chunk`` dicts -> a ``Reply``'s events: the other direction.

Every provider's stream reaches the gateway as OpenAI chunks; a route that answers in another shape
(Anthropic Messages, OpenAI Responses) reads them back into a ``Reply`` whose writer renders that
shape, so the bookkeeping (tool-call numbering, finish reasons, typed usage) stays in one place.
A tool call starts with the delta that carries its ``id``; later deltas with the same ``index``
add arguments.
"""

from __future__ import annotations

from typing import Any

from ..usage import TokenUsage
from .reply import Reply

__all__ = ["read_chunk"]


def read_chunk(reply: Reply, chunk: dict[str, Any]) -> None:
    """Tell ``reply`` what one OpenAI chunk says."""
    reply.identify(chunk.get("id") or None, chunk.get("model") or None)
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            _read_delta(reply, index, delta)
        logprobs = choice.get("logprobs")
        if logprobs is not None:
            reply.logprobs(logprobs, index)
        reason = choice.get("finish_reason")
        if reason:
            reply.finish(reason, index)
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        reply.add_usage(TokenUsage.from_openai(usage))


def _read_delta(reply: Reply, index: int, delta: dict[str, Any]) -> None:
    if delta.get("role"):
        reply.begin(index)
    for name, say in (
        ("reasoning_content", reply.reasoning),
        ("content", reply.text),
        ("refusal", reply.refusal),
    ):
        text = delta.get(name)
        if isinstance(text, str):
            say(text, index)
    for call in delta.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        key = (index, call.get("index", 0))
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else ""
        if call.get("id"):
            reply.tool_call(key, call["id"], function.get("name"), arguments, index)
        else:
            reply.tool_arguments(key, arguments, index)

"""The Anthropic stream -> OpenAI ``chat.completion.chunk`` dicts.

On the hot path: ``feed`` runs once per SSE event, so it parses the event with pydantic-core's JSON
parser (a real parser: Anthropic pads its JSON with spaces; ~3x faster than ``json.loads`` on these
small events, and already a dependency) and dispatches on the most frequent event type first. What
arrived goes to a ``translate.Reply``, which numbers the tool calls (by their own count, not
Anthropic's block index, which counts text and thinking blocks too), completes silent ones and
renders OpenAI chunks through a ``ChunkWriter``.

    message_start            -> a role chunk (``delta: {role, content: ""}``)
    content_block_start      -> tool_use: a ``tool_calls`` delta (index, id, name, arguments "")
    content_block_delta      -> text_delta: ``content``; input_json_delta: ``arguments`` fragments;
                                thinking_delta: ``reasoning_content``
    content_block_stop       -> a tool that sent no arguments gets "{}" (so its arguments parse)
    message_delta            -> the finish chunk, then ONE usage chunk (``choices: []``)
    message_stop             -> the end; ``ping`` and unknown events are ignored
    error                    -> a GatewayError (the gateway sends it as the final SSE error event)
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from ...errors import BadGatewayError
from ...translate import ChunkWriter, Reply, arguments_json
from ..base import StreamTranslator, UpstreamCall
from .errors import stream_error_from_anthropic
from .response import FINISH_REASONS, usage_from_anthropic

__all__ = ["AnthropicStreamTranslator"]


class AnthropicStreamTranslator(StreamTranslator):
    """Anthropic stream events -> OpenAI ``chat.completion.chunk`` dicts. One per stream."""

    __slots__ = (
        "_call",
        "_finished",
        "_provider",
        "_reply",
        "_started",
        "_text_event",
        "_usage",
        "_writer",
        "done",
        "usage",
    )

    def __init__(self, call: UpstreamCall, json_tool: str | None = None, provider: str = "anthropic") -> None:
        self._call = call
        self._provider = provider
        self._writer = ChunkWriter(model=call.model)
        self._reply = Reply(self._writer, json_tool)
        self._text_event = self._writer.text_event  # bound once: it runs per event
        self._usage: dict[str, Any] = {}
        self._started = False
        self._finished = False
        self.done = False
        self.usage = None

    def feed(self, data: Any) -> list[dict[str, Any]]:
        try:
            # Only keys are worth caching: text values are new in every event.
            event = from_json(data, cache_strings="keys")
        except ValueError:
            raise BadGatewayError("the upstream sent a stream event that is not valid JSON") from None
        try:
            kind = event["type"]
            if kind == "content_block_delta":  # by far the most frequent: first
                delta = event["delta"]
                kind = delta["type"]
                if kind == "text_delta":
                    return self._text_event(delta["text"]) or self._text(delta["text"])
                reply = self._reply
                if kind == "input_json_delta":
                    reply.tool_arguments(event["index"], delta["partial_json"])
                elif kind == "thinking_delta":
                    reply.reasoning(delta["thinking"])
                # signature_delta, citations_delta: no OpenAI form
            elif kind == "content_block_start":
                self._block_start(event["index"], event["content_block"])
            elif kind == "content_block_stop":
                self._reply.tool_end(event["index"])
            elif kind == "message_start":
                self._start(event["message"])
            elif kind == "message_delta":
                self._end(event.get("delta") or {}, event.get("usage"))
            elif kind == "message_stop":
                self.done = True
                self._end({}, None)
            elif kind == "error":
                raise stream_error_from_anthropic(event.get("error"), self._provider)
            # ping, and event types newer than this code: nothing to say
        except (KeyError, TypeError, AttributeError):
            raise BadGatewayError("the upstream sent a stream event the gateway cannot read") from None
        return self._writer.take()

    def _text(self, text: str) -> list[dict[str, Any]]:
        self._reply.text(text)
        return self._writer.take()

    def _start(self, message: dict[str, Any]) -> None:
        self._started = True
        model = message.get("model")
        if isinstance(model, str) and model:
            self._call.response_model = model
        self._reply.identify(message.get("id") or "", model if isinstance(model, str) else None)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self._reply.begin()

    def _block_start(self, index: int, block: dict[str, Any]) -> None:
        kind = block["type"]
        if kind == "tool_use":
            initial = block.get("input")
            self._reply.tool_call(
                index, block["id"], block["name"], arguments_json(initial) if initial else ""
            )
        elif kind == "text":
            self._reply.text(block.get("text") or "")
        elif kind == "thinking":
            self._reply.reasoning(block.get("thinking") or "")

    def _end(self, delta: dict[str, Any], usage: Any) -> None:
        if self._finished:
            return
        self._finished = True
        if isinstance(usage, dict):
            # Newer API versions repeat input and cache counts here; older ones send output only.
            self._usage.update({key: value for key, value in usage.items() if value is not None})
        self._reply.finish(FINISH_REASONS.get(delta.get("stop_reason") or "", "stop"))
        self.usage = usage_from_anthropic(self._usage)
        self._reply.add_usage(self.usage)

    def finish(self) -> list[dict[str, Any]]:
        if self._started and not self._finished:
            raise BadGatewayError(
                f"upstream '{self._provider}' ended the stream before the message was complete"
            )
        return []

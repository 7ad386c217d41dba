"""The Anthropic stream -> OpenAI ``chat.completion.chunk`` dicts.

On the hot path: ``feed`` runs once per SSE event, so it parses the event with pydantic-core's JSON
parser (a real parser: Anthropic pads its JSON with spaces; ~3x faster than ``json.loads`` on these
small events, and already a dependency), dispatches on the most frequent event type first, and builds
plain dicts; its state is a few slots.

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

import json
import time
from typing import Any

from pydantic_core import from_json

from ...errors import BadGatewayError
from ..base import StreamTranslator, UpstreamCall
from .response import FINISH_REASONS, stream_error_from_anthropic, usage_from_anthropic

__all__ = ["AnthropicStreamTranslator"]


class AnthropicStreamTranslator(StreamTranslator):
    """Anthropic stream events -> OpenAI ``chat.completion.chunk`` dicts. One per stream.

    Tool calls are numbered by their own count (``index`` 0, 1, ...), not by Anthropic's block index,
    which counts text and thinking blocks too.
    """

    __slots__ = (
        "_call",
        "_created",
        "_finished",
        "_id",
        "_json_block",
        "_json_tool",
        "_model",
        "_provider",
        "_silent",
        "_tools",
        "_usage",
        "done",
    )

    def __init__(self, call: UpstreamCall, json_tool: str | None = None, provider: str = "anthropic") -> None:
        self._call = call
        self._json_tool = json_tool
        self._provider = provider
        self._id = ""
        self._model = call.model
        self._created = int(time.time())
        self._tools: dict[int, int] = {}
        """Anthropic block index -> OpenAI tool call index."""
        self._json_block = -1
        self._silent: set[int] = set()
        """Tool blocks that have not sent an argument fragment yet."""
        self._usage: dict[str, Any] = {}
        self._finished = False
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def feed(self, data: Any) -> list[dict[str, Any]]:
        try:
            # Only keys are worth caching: text values are new in every event.
            event = from_json(data, cache_strings="keys")
        except ValueError:
            raise BadGatewayError("the upstream sent a stream event that is not valid JSON") from None
        try:
            kind = event["type"]
            if kind == "content_block_delta":  # by far the most frequent: first
                return self._delta(event["index"], event["delta"])
            if kind == "content_block_start":
                return self._block_start(event["index"], event["content_block"])
            if kind == "content_block_stop":
                return self._block_stop(event["index"])
            if kind == "message_start":
                return self._start(event["message"])
            if kind == "message_delta":
                return self._end(event.get("delta") or {}, event.get("usage"))
            if kind == "message_stop":
                self.done = True
                return [] if self._finished else self._end({}, None)
            if kind == "error":
                raise stream_error_from_anthropic(event.get("error"), self._provider)
            return []  # ping, and event types newer than this code
        except (KeyError, TypeError, AttributeError):
            raise BadGatewayError("the upstream sent a stream event the gateway cannot read") from None

    def _start(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        self._id = message.get("id") or ""
        model = message.get("model")
        if isinstance(model, str) and model:
            self._model = self._call.response_model = model
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta["type"]
        if kind == "text_delta":
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta":
            fragment = delta["partial_json"]
            if not fragment:
                return []  # Anthropic opens every tool input with an empty fragment
            self._silent.discard(index)
            if index == self._json_block:
                return [self._chunk({"content": fragment})]
            return [
                self._chunk(
                    {"tool_calls": [{"index": self._tools[index], "function": {"arguments": fragment}}]}
                )
            ]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []  # signature_delta, citations_delta: no OpenAI form

    def _block_start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind = block["type"]
        if kind == "tool_use":
            initial = block.get("input")
            arguments = json.dumps(initial, ensure_ascii=False) if initial else ""
            if not arguments:
                self._silent.add(index)
            if block["name"] == self._json_tool:
                self._json_block = index
                return [self._chunk({"content": arguments})] if arguments else []
            position = self._tools[index] = len(self._tools)
            call = {
                "index": position,
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": arguments},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        if index not in self._silent:
            return []
        # A tool called without arguments sends no fragment; "{}" keeps the arguments valid JSON.
        self._silent.discard(index)
        if index == self._json_block:
            return [self._chunk({"content": "{}"})]
        return [self._chunk({"tool_calls": [{"index": self._tools[index], "function": {"arguments": "{}"}}]})]

    def _end(self, delta: dict[str, Any], usage: Any) -> list[dict[str, Any]]:
        if self._finished:
            return []
        self._finished = True
        if isinstance(usage, dict):
            # Newer API versions repeat input and cache counts here; older ones send output only.
            self._usage.update({key: value for key, value in usage.items() if value is not None})
        finish = FINISH_REASONS.get(delta.get("stop_reason") or "", "stop")
        if finish == "tool_calls" and not self._tools:
            finish = "stop"  # only the JSON-output tool was called
        chunks = [self._chunk({}, finish)]
        totals = usage_from_anthropic(self._usage)
        if totals is not None:
            chunks.append(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": totals.to_openai(),
                }
            )
        return chunks

    def finish(self) -> list[dict[str, Any]]:
        if self._id and not self._finished:
            raise BadGatewayError(
                f"upstream '{self._provider}' ended the stream before the message was complete"
            )
        return []

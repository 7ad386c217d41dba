"""OpenAI ``chat.completion.chunk`` dicts -> Anthropic's named SSE events, as bytes.

A small state machine over content blocks. Anthropic's stream is a sequence of blocks, each opened
(``content_block_start``), filled with deltas of ONE kind and closed (``content_block_stop``), with
indexes counting up from 0; a block never reopens. So:

    reasoning_content delta  -> a ``thinking`` block (``thinking_delta``)
    content delta            -> a ``text`` block (``text_delta``)
    a new tool call          -> a ``tool_use`` block (``input_json_delta`` for its argument fragments)

and whenever the kind changes, the open block is closed before the next one opens: a thinking
delta never lands in a text block (the bug that breaks Claude Code behind other gateways). The
stream opens with ``message_start`` (and a ``ping``, as Anthropic's does) and ends, after the
upstream's last chunk (the usage chunk comes after the finish), with ``message_delta`` (stop reason
and usage) and ``message_stop``. A failure after the start is an ``error`` event.
"""

from __future__ import annotations

import os
from typing import Any, Final

import pydantic_core

from ..errors import BadGatewayError, GatewayError, UpstreamTruncatedError
from ..usage import TokenUsage
from .from_chat import anthropic_usage, stop_reason_for
from .wire import error_body

__all__ = ["EventWriter", "sse_frame"]

_PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'


def sse_frame(event: dict[str, Any]) -> bytes:
    """One named SSE event: ``event: <type>`` and its JSON."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + pydantic_core.to_json(event) + b"\n\n"


class EventWriter:
    """One translated stream. ``feed`` each OpenAI chunk, then ``finish`` (or ``error``)."""

    __slots__ = ("_index", "_kind", "_model", "_started", "_stop_reason", "_tool", "_tools_seen", "usage")

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._kind: str | None = None
        """The type of the open block, ``None`` between blocks."""
        self._index = -1
        """The index of the open (or last) block."""
        self._tool: Any = None
        """The OpenAI index of the tool call whose block is open."""
        self._tools_seen: set[Any] = set()
        self._stop_reason: str | None = None
        self.usage: TokenUsage | None = None

    @property
    def started(self) -> bool:
        return self._started

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self._started else self._start(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = TokenUsage.from_openai(usage)
        choices = chunk.get("choices")
        if not choices:
            return out
        choice = choices[0]
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out += self._delta({"type": "thinking_delta", "thinking": reasoning})
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += self._open("text", {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": text})
        for position, call in enumerate(delta.get("tool_calls") or ()):
            out += self._tool_delta(call, position)
        finish = choice.get("finish_reason")
        if finish:
            self._stop_reason = stop_reason_for(finish)
            out += self._close()
        return out

    def finish(self) -> bytes:
        """The end of the message: the open block closed, the stop reason and usage, ``message_stop``."""
        if self._stop_reason is None:
            raise UpstreamTruncatedError("the upstream ended the stream before its final chunk")
        out = b"" if self._started else self._start({})
        out += self._close()
        usage = anthropic_usage(self.usage)
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        out += sse_frame({"type": "message_delta", "delta": delta, "usage": usage})
        return out + sse_frame({"type": "message_stop"})

    def error(self, error: GatewayError, request_id: str | None = None) -> bytes:
        """The ``error`` event that ends a stream which has already started."""
        return sse_frame(error_body(error, request_id))

    # -- blocks ---------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": chunk.get("id") or "msg_" + os.urandom(12).hex(),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Translated upstreams report usage at the end: message_delta carries the real counts.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse_frame({"type": "message_start", "message": message}) + _PING

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._kind == kind and kind != "tool_use":
            return b""
        out = self._close()
        self._kind = kind
        self._index += 1
        return out + sse_frame({"type": "content_block_start", "index": self._index, "content_block": block})

    def _close(self) -> bytes:
        if self._kind is None:
            return b""
        self._kind = None
        self._tool = None
        return sse_frame({"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse_frame({"type": "content_block_delta", "index": self._index, "delta": delta})

    def _tool_delta(self, call: dict[str, Any], position: int) -> bytes:
        key = call.get("index", position)
        function = call.get("function") or {}
        out = b""
        if self._kind != "tool_use" or key != self._tool:
            if key in self._tools_seen:
                # Anthropic blocks cannot reopen; no provider of the gateway interleaves tool calls.
                raise BadGatewayError("the upstream interleaved the argument fragments of two tool calls")
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + os.urandom(12).hex(),
                "name": function.get("name") or "",
                "input": {},
            }
            out = self._open("tool_use", block)
            self._tool = key
            self._tools_seen.add(key)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

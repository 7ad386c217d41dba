"""OpenAI ``chat.completion.chunk`` dicts -> Anthropic's named SSE events, as bytes.

The chunks are read back into the shared translation core (``translate.Reply``, via ``read_chunk``),
which keeps the bookkeeping every output shape needs (tool calls numbered as they start, a tool that
sent no arguments completed with ``{}``, finish reasons, typed usage); ``AnthropicEvents`` is the
core's writer for Anthropic's stream. It is a small state machine over content blocks: Anthropic's
stream is a sequence of blocks, each opened (``content_block_start``), filled with deltas of ONE
kind and closed (``content_block_stop``), with indexes counting up from 0; a block never reopens:

    reasoning              -> a ``thinking`` block (``thinking_delta``)
    text (and a refusal)   -> a ``text`` block (``text_delta``)
    a tool call            -> a ``tool_use`` block (``input_json_delta`` for its argument fragments)
    a signed thinking block (Claude through another door) -> a ``thinking`` block with its signature

Whenever the kind changes, the open block is closed before the next one opens: a thinking delta never
lands in a text block (the bug that breaks Claude Code behind other gateways). The stream opens with
``message_start`` (and a ``ping``, as Anthropic's does) and ends, after the upstream's last chunk
(the usage chunk comes after the finish), with ``message_delta`` (stop reason and usage) and
``message_stop``. A failure after the start is an ``error`` event.
"""

from __future__ import annotations

import os
from typing import Any, Final

import pydantic_core

from ..errors import BadGatewayError, GatewayError, UpstreamTruncatedError
from ..translate.openai_chunks import read_chunk
from ..translate.reply import Reply
from ..usage import TokenUsage
from .from_chat import anthropic_usage, stop_reason_for
from .wire import error_body

__all__ = ["AnthropicEvents", "EventWriter", "sse_frame"]

_PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
_DELTAS: Final = {"thinking": "thinking_delta", "text": "text_delta", "tool_use": "input_json_delta"}


def sse_frame(event: dict[str, Any]) -> bytes:
    """One named SSE event: ``event: <type>`` and its JSON."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + pydantic_core.to_json(event) + b"\n\n"


class EventWriter:
    """One translated stream. ``feed`` each OpenAI chunk, then ``finish`` (or ``error``)."""

    __slots__ = ("_events", "_reply")

    def __init__(self, model: str) -> None:
        self._events = AnthropicEvents(model)
        self._reply = Reply(self._events)

    @property
    def started(self) -> bool:
        return self._events.started

    @property
    def usage(self) -> TokenUsage | None:
        return self._reply.usage

    def feed(self, chunk: dict[str, Any]) -> bytes:
        read_chunk(self._reply, chunk)
        return self._events.take()

    def finish(self) -> bytes:
        """The end of the message: the open block closed, the stop reason and usage, ``message_stop``."""
        return self._events.end(self._reply.usage)

    def error(self, error: GatewayError, request_id: str | None = None) -> bytes:
        """The ``error`` event that ends a stream which has already started."""
        return sse_frame(error_body(error, request_id))


class AnthropicEvents:
    """The core's writer for Anthropic's stream (one choice: Anthropic answers with one)."""

    __slots__ = ("_id", "_index", "_kind", "_model", "_out", "_stop_reason", "_tool", "started")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._out: list[bytes] = []
        self.started = False
        self._kind: str | None = None
        """The type of the open block, ``None`` between blocks."""
        self._index = -1
        """The index of the open (or last) block."""
        self._tool = -1
        """The number of the tool call whose block is open."""
        self._stop_reason: str | None = None

    def take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def end(self, usage: TokenUsage | None) -> bytes:
        if self._stop_reason is None:
            raise UpstreamTruncatedError("the upstream ended the stream before its final chunk")
        self.begin(0)
        self._close()
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        self._emit({"type": "message_delta", "delta": delta, "usage": anthropic_usage(usage)})
        self._emit({"type": "message_stop"})
        return self.take()

    # -- the core's events ------------------------------------------------------------------------

    def identify(self, response_id: str | None, model: str | None) -> None:
        if not self.started:
            self._id = response_id or self._id
            self._model = model or self._model

    def begin(self, choice: int) -> None:
        if self.started or choice:
            return
        self.started = True
        message: dict[str, Any] = {
            "id": self._id or "msg_" + os.urandom(12).hex(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Translated upstreams report usage at the end: message_delta carries the real counts.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        self._emit({"type": "message_start", "message": message})
        self._out.append(_PING)

    def text(self, choice: int, text: str) -> None:
        if not choice:
            self._open("text", {"type": "text", "text": ""})
            self._delta({"type": "text_delta", "text": text})

    refusal = text
    answer = text  # the response_format answer is the text (no JSON tool on this route)

    def reasoning(self, choice: int, text: str) -> None:
        if not choice:
            self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self._delta({"type": "thinking_delta", "thinking": text})

    def thinking_block(self, choice: int, block: dict[str, Any]) -> None:
        """A signed thinking block (or a redacted one) goes to the client whole, signature included."""
        if choice:
            return
        if block.get("type") == "redacted_thinking":
            self._open_new("redacted_thinking", block)
            return
        self._open_new("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if block.get("thinking"):
            self._delta({"type": "thinking_delta", "thinking": block["thinking"]})
        if block.get("signature"):
            self._delta({"type": "signature_delta", "signature": block["signature"]})
        self._close()

    def tool_call(
        self, choice: int, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> None:
        if choice:
            return
        block = {
            "type": "tool_use",
            "id": call_id or "toolu_" + os.urandom(12).hex(),
            "name": name or "",
            "input": {},
        }
        self._open_new("tool_use", block)
        self._tool = index
        if arguments:
            self._delta({"type": "input_json_delta", "partial_json": arguments})

    def tool_arguments(self, choice: int, index: int, fragment: str) -> None:
        if choice:
            return
        if self._kind == "tool_use" and index == self._tool:
            self._delta({"type": "input_json_delta", "partial_json": fragment})
        elif fragment != "{}":  # a closed block's input is already {} when it never got arguments
            # Anthropic blocks cannot reopen; no provider of the gateway interleaves tool calls.
            raise BadGatewayError("the upstream interleaved the argument fragments of two tool calls")

    def logprobs(self, choice: int, logprobs: Any) -> None:
        """Anthropic's stream has no log probabilities."""

    def finish(self, choice: int, reason: str) -> None:
        if not choice:
            self._stop_reason = stop_reason_for(reason)
            self._close()

    def usage(self, usage: TokenUsage) -> None:
        """Kept by the core (``Reply.usage``); written at the end, in ``message_delta``."""

    # -- blocks ---------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.append(sse_frame(event))

    def _open(self, kind: str, block: dict[str, Any]) -> None:
        if self._kind != kind:
            self._open_new(kind, block)

    def _open_new(self, kind: str, block: dict[str, Any]) -> None:
        self._close()
        self._kind = kind
        self._index += 1
        self._emit({"type": "content_block_start", "index": self._index, "content_block": block})

    def _close(self) -> None:
        if self._kind is not None:
            self._kind = None
            self._emit({"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> None:
        self._emit({"type": "content_block_delta", "index": self._index, "delta": delta})

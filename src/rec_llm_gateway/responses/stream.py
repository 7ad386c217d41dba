"""The client side of a Responses stream: SSE framing, the terminal event held for ``x_rec_llm``, a
failure reported as ``error`` + ``response.failed``, and what the stream amounted to.

The events come from ``ResponsesFlow.stream`` (translated or passed through), one dict each.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import GatewayError
from .events import sse_frame
from .native import TERMINAL_EVENTS
from .objects import failed_error, usage_from_responses

__all__ = ["ResponsesAssembler", "ResponsesEncoder"]


class ResponsesEncoder:
    """Sends each event at once except the terminal one, which waits for ``finish`` to carry the
    ``x_rec_llm`` extension."""

    __slots__ = ("_held", "_items", "_response", "_sequence")

    def __init__(self) -> None:
        self._held: dict[str, Any] | None = None
        self._sequence = -1
        self._response: dict[str, Any] | None = None  # the latest snapshot (response.created, ...)
        self._items: dict[int, dict[str, Any]] = {}  # output items done so far, by output_index

    def feed(self, event: dict[str, Any]) -> bytes:
        sequence = event.get("sequence_number")
        if isinstance(sequence, int):
            self._sequence = max(self._sequence, sequence)
        kind = event.get("type")
        if isinstance(event.get("response"), dict):
            self._response = event["response"]
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            self._items[event.get("output_index", len(self._items))] = event["item"]
        if kind in TERMINAL_EVENTS:
            self._held = event
            return b""
        return sse_frame(event)

    def finish(self, extension: dict[str, Any] | None) -> bytes:
        held, self._held = self._held, None
        if held is None:
            return b""
        if extension is not None and isinstance(held.get("response"), dict):
            held["response"]["x_rec_llm"] = extension
        return sse_frame(held)

    def flush(self) -> bytes:
        held, self._held = self._held, None
        return sse_frame(held) if held is not None else b""

    def fail(self, error: GatewayError) -> bytes:
        """``error`` and ``response.failed`` (with the output items finished so far)."""
        self._sequence += 1
        out = sse_frame(
            {
                "type": "error",
                "sequence_number": self._sequence,
                "code": error.code,
                "message": error.message,
                "param": error.param,
            }
        )
        if self._response is None:
            return out
        response = copy.copy(self._response)
        response["status"] = "failed"
        response["error"] = failed_error(error)
        response["output"] = [self._items[index] for index in sorted(self._items)]
        self._sequence += 1
        return out + sse_frame(
            {"type": "response.failed", "sequence_number": self._sequence, "response": response}
        )


class ResponsesAssembler:
    """What a Responses stream amounted to, in the pipeline's terms: the final Response, its status
    as the finish reason, and its usage as an OpenAI ``usage`` object (for pricing and limits)."""

    __slots__ = ("_response", "output_chars", "usage")

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.output_chars = 0
        """Characters of generated text and arguments (to estimate usage that never arrives)."""
        self._response: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        delta = event.get("delta")
        if isinstance(delta, str):  # output_text / reasoning / function_call_arguments deltas
            self.output_chars += len(delta)
        if event.get("type") in TERMINAL_EVENTS and isinstance(event.get("response"), dict):
            self._response = event["response"]
            usage = usage_from_responses(self._response.get("usage"))
            self.usage = usage.to_openai() if usage is not None else None
        elif event.get("type") == "response.created" and isinstance(event.get("response"), dict):
            self._response = event["response"]

    def finish_reasons(self) -> list[str]:
        response = self._response
        status = response.get("status") if response is not None else None
        return [status] if status in ("completed", "incomplete") else []

    def response(self) -> dict[str, Any]:
        return self._response if self._response is not None else {}

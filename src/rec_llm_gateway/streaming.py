"""Per-stream helpers: the SSE encoder that places usage and ``x_rec_llm``, and the assembler.

The encoder forwards every chunk as soon as it arrives, except the chunks that end a stream (a chunk
with a ``finish_reason``, the usage chunk): it holds the latest of those until the next chunk or the
end, so that ``x_rec_llm`` (which needs the usage and cost) can ride on the true final chunk without
adding a chunk with empty ``choices`` that the client did not ask for. Those end chunks normally
arrive together, so holding them costs nothing in latency.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

__all__ = ["SSEEncoder", "StreamAssembler", "sse_event"]

DONE = b"data: [DONE]\n\n"
_TEXT_DELTA = frozenset(("content", "role"))
"""A delta with nothing but text (the role is always the assistant's)."""


def sse_event(data: dict[str, Any]) -> bytes:
    return b"data: " + pydantic_core.to_json(data) + b"\n\n"


class SSEEncoder:
    """Turns OpenAI chunk dicts into SSE bytes for the client."""

    __slots__ = ("_held", "_wants_usage")

    def __init__(self, wants_usage: bool) -> None:
        self._wants_usage = wants_usage
        self._held: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """SSE bytes to send now for ``chunk`` (possibly empty)."""
        choices = chunk.get("choices")
        is_usage_chunk = not choices and chunk.get("usage") is not None
        if not self._wants_usage:
            if is_usage_chunk:
                return b""  # the gateway asked for it; the client did not
            chunk.pop("usage", None)
        ends = is_usage_chunk
        for choice in choices or ():  # a loop, not any(<generator>): this runs for every chunk
            if isinstance(choice, dict) and choice.get("finish_reason"):
                ends = True
                break
        out = b""
        if self._held is not None:
            out = sse_event(self._held)
            self._held = None
        if ends:
            self._held = chunk
            return out
        return out + sse_event(chunk)

    def finish(self, extension: dict[str, Any] | None) -> bytes:
        """The held final chunk (carrying ``x_rec_llm``) and ``[DONE]``."""
        out = b""
        if self._held is not None:
            if extension is not None:
                self._held["x_rec_llm"] = extension
            out = sse_event(self._held)
            self._held = None
        return out + DONE

    def flush(self) -> bytes:
        """Whatever is held, without an extension (before an error event)."""
        if self._held is None:
            return b""
        held, self._held = self._held, None
        return sse_event(held)


class StreamAssembler:
    """Builds the ``chat.completion`` a stream amounts to (for ``post_response`` and telemetry).

    With ``keep_text=False`` it keeps only what the gateway itself needs (ids, finish reasons, tool
    call names, usage) and drops the text: a stream nobody reads back then holds no more memory after
    two thousand tokens than after two, where every text piece would cost ~60 bytes.
    """

    __slots__ = (
        "_choices",
        "_keep_text",
        "created",
        "id",
        "model",
        "output_chars",
        "system_fingerprint",
        "usage",
    )

    def __init__(self, keep_text: bool = True) -> None:
        self._keep_text = keep_text
        self.id = ""
        self.model = ""
        self.created = 0
        self.system_fingerprint: Any = None
        self.usage: dict[str, Any] | None = None
        self.output_chars = 0
        """Characters of generated text and tool arguments (to estimate usage the upstream never sent)."""
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.id and isinstance(chunk.get("id"), str):
            self.id = chunk["id"]
        if not self.model and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if not self.created and isinstance(chunk.get("created"), int):
            self.created = chunk["created"]
        if chunk.get("system_fingerprint"):
            self.system_fingerprint = chunk["system_fingerprint"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = {
                    "role": "assistant",
                    "content": [],
                    "reasoning": [],
                    "refusal": [],
                    "tool_calls": {},
                    "finish_reason": None,
                }
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.keys() <= _TEXT_DELTA:  # the common chunk: one pass instead of two
                    content = delta.get("content")
                    if isinstance(content, str):
                        if self._keep_text:
                            state["content"].append(content)
                        self.output_chars += len(content)
                else:
                    self._add_delta(state, delta, self._keep_text)
                    self.output_chars += _delta_chars(delta)
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]

    @staticmethod
    def _add_delta(state: dict[str, Any], delta: dict[str, Any], keep_text: bool) -> None:
        if keep_text:
            if isinstance(delta.get("content"), str):
                state["content"].append(delta["content"])
            if isinstance(delta.get("reasoning_content"), str):
                state["reasoning"].append(delta["reasoning_content"])
            if isinstance(delta.get("refusal"), str):
                state["refusal"].append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            slot = state["tool_calls"].setdefault(
                call.get("index", 0),
                {"id": None, "type": "function", "function": {"name": "", "arguments": []}},
            )
            if call.get("id"):
                slot["id"] = call["id"]
            function = call.get("function")
            if isinstance(function, dict):
                if function.get("name"):
                    slot["function"]["name"] = function["name"]
                if keep_text and isinstance(function.get("arguments"), str):
                    slot["function"]["arguments"].append(function["arguments"])

    def finish_reasons(self) -> list[str]:
        return [state["finish_reason"] for state in self._choices.values() if state["finish_reason"]]

    def response(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {"role": state["role"], "content": "".join(state["content"]) or None}
            if state["reasoning"]:
                message["reasoning_content"] = "".join(state["reasoning"])
            if state["refusal"]:
                message["refusal"] = "".join(state["refusal"])
            if state["tool_calls"]:
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": call["type"],
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": "".join(call["function"]["arguments"]),
                        },
                    }
                    for _, call in sorted(state["tool_calls"].items())
                ]
            choices.append({"index": index, "message": message, "finish_reason": state["finish_reason"]})
        response: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage,
        }
        if self.system_fingerprint:
            response["system_fingerprint"] = self.system_fingerprint
        return response


def _delta_chars(delta: dict[str, Any]) -> int:
    chars = 0
    for name in ("content", "reasoning_content", "refusal"):
        text = delta.get(name)
        if isinstance(text, str):
            chars += len(text)
    for call in delta.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            chars += len(function["arguments"])
    return chars

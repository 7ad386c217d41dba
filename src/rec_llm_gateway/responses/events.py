"""Chat chunks -> Responses stream events: a small state machine, one per stream.

    first chunk          response.created, response.in_progress
    reasoning_content    output_item.added (reasoning), reasoning_summary_part.added,
                         reasoning_summary_text.delta ...
    content              output_item.added (message), content_part.added (output_text),
                         output_text.delta ...
    refusal              content_part.added (refusal), refusal.delta ...
    tool_calls[i]        output_item.added (function_call), function_call_arguments.delta ...
    finish               the open item's *.done events and output_item.done, then
                         response.completed, or response.incomplete (length, content_filter)
    failure              error, response.failed (written by ``stream.ResponsesEncoder``)

An item is closed (its ``done`` events sent) when an item of another kind or another tool call
begins, so items arrive one after another as OpenAI sends them. Every event carries a
``sequence_number`` counting from 0.
"""

from __future__ import annotations

import copy
from typing import Any

import pydantic_core

from ..usage import TokenUsage
from .objects import (
    INCOMPLETE_REASONS,
    apply_finish,
    as_dict,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    refusal_part,
    text_part,
)

__all__ = ["EventWriter", "sse_frame"]


def sse_frame(event: dict[str, Any]) -> bytes:
    """One Responses stream event as SSE (OpenAI names the event and repeats it as ``type``)."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + pydantic_core.to_json(event) + b"\n\n"


class _Item:
    """An output item being streamed."""

    __slots__ = ("call_id", "extra", "id", "index", "kind", "name", "part", "parts", "text")

    def __init__(self, kind: str, item_id: str, index: int) -> None:
        self.kind = kind
        self.id = item_id
        self.index = index
        self.text: list[str] = []  # reasoning summary, function arguments, or the open part's text
        self.part: str | None = None  # the message's open content part: output_text or refusal
        self.parts: list[dict[str, Any]] = []  # the message's closed parts
        self.name = ""
        self.call_id = ""
        self.extra: dict[str, Any] = {}


class EventWriter:
    """Turns one stream of chat chunks into Responses events; ``response`` is the finished object.

    Args:
        response: a Response ``skeleton`` (status ``in_progress``); filled in as the stream goes.
    """

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self._sequence = 0
        self._started = False
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self, kind: str, *, final: bool = False) -> dict[str, Any]:
        # Early snapshots are copied (the response grows after them); the final one is not.
        return self._event(kind, response=self.response if final else copy.deepcopy(self.response))

    # -- chunks in -------------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            if isinstance(chunk.get("model"), str) and chunk["model"]:
                self.response["model"] = chunk["model"]
            events += (self._snapshot("response.created"), self._snapshot("response.in_progress"))
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None:
            return events
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                events += self._reasoning(reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._message_text("output_text", content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events += self._message_text("refusal", refusal)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    events += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        return events

    def _begin(self, kind: str, item: dict[str, Any]) -> tuple[_Item, list[dict[str, Any]]]:
        events = self._close()
        state = _Item(kind, item["id"], len(self.response["output"]))
        self.response["output"].append(item)
        self._open = state
        events.append(self._event("response.output_item.added", output_index=state.index, item=item))
        return state, events

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        state = self._open
        if state is None or state.kind != "reasoning":
            item = {"id": new_id("rs"), "type": "reasoning", "summary": []}
            state, events = self._begin("reasoning", item)
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=state.id,
                    output_index=state.index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        state.text.append(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=state.id,
                output_index=state.index,
                summary_index=0,
                delta=text,
            )
        )
        return events

    def _message_text(self, part: str, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        state = self._open
        if state is None or state.kind != "message":
            state, events = self._begin("message", message_item(new_id("msg"), [], "in_progress"))
        if state.part != part:
            events += self._close_part(state)
            state.part = part
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=state.id,
                    output_index=state.index,
                    content_index=len(state.parts),
                    part=text_part("") if part == "output_text" else refusal_part(""),
                )
            )
        state.text.append(text)
        fields: dict[str, Any] = {"logprobs": []} if part == "output_text" else {}
        kind = "response.output_text.delta" if part == "output_text" else "response.refusal.delta"
        events.append(
            self._event(
                kind,
                item_id=state.id,
                output_index=state.index,
                content_index=len(state.parts),
                delta=text,
                **fields,
            )
        )
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        function = as_dict(call.get("function"))
        events: list[dict[str, Any]] = []
        state = self._calls.get(position)
        if state is None:
            call_id = str(call.get("id") or new_id("call"))
            name = str(function.get("name") or "")
            item = function_call_item(new_id("fc"), call_id, name, "", "in_progress")
            state, events = self._begin("function_call", item)
            state.name, state.call_id = name, call_id
            state.extra = {k: v for k, v in call.items() if k not in ("id", "type", "function", "index")}
            self._calls[position] = state
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            state.text.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=state.id,
                    output_index=state.index,
                    delta=arguments,
                )
            )
        return events

    # -- closing ---------------------------------------------------------------------------------

    def _close_part(self, state: _Item) -> list[dict[str, Any]]:
        if state.part is None:
            return []
        text = "".join(state.text)
        state.text = []
        index = len(state.parts)
        part = text_part(text) if state.part == "output_text" else refusal_part(text)
        state.parts.append(part)
        where = {"item_id": state.id, "output_index": state.index, "content_index": index}
        if state.part == "output_text":
            done = self._event("response.output_text.done", **where, text=text, logprobs=[])
        else:
            done = self._event("response.refusal.done", **where, refusal=text)
        state.part = None
        return [done, self._event("response.content_part.done", **where, part=part)]

    def _close(self, status: str = "completed") -> list[dict[str, Any]]:
        """The ``done`` events of the open item, which becomes final in ``response.output``."""
        state, self._open = self._open, None
        if state is None:
            return []
        events: list[dict[str, Any]] = []
        where = {"item_id": state.id, "output_index": state.index}
        if state.kind == "reasoning":
            text = "".join(state.text)
            item = reasoning_item(state.id, text)
            part = {"type": "summary_text", "text": text}
            events.append(
                self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            )
            events.append(
                self._event("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
            )
        elif state.kind == "message":
            events += self._close_part(state)
            item = message_item(state.id, state.parts, status)
        else:
            arguments = "".join(state.text)
            item = function_call_item(state.id, state.call_id, state.name, arguments, status, state.extra)
            events.append(
                self._event(
                    "response.function_call_arguments.done", **where, name=state.name, arguments=arguments
                )
            )
        self.response["output"][state.index] = item
        events.append(self._event("response.output_item.done", output_index=state.index, item=item))
        return events

    def finish(
        self, usage: TokenUsage | None, extension: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The last events: the open item closed, then ``response.completed`` or ``.incomplete``."""
        incomplete = self.finish_reason in INCOMPLETE_REASONS
        events = self._close("incomplete" if incomplete else "completed")
        apply_finish(self.response, self.finish_reason, usage)
        if extension is not None:
            self.response["x_rec_llm"] = extension
        events.append(
            self._snapshot("response.incomplete" if incomplete else "response.completed", final=True)
        )
        return events

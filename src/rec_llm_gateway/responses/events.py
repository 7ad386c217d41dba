"""What arrived -> Responses stream events: a ``ReplyWriter`` of the shared core, one per stream.

The provider's chat chunks are read back by ``translate.read_chunk`` into a ``Reply`` (one place for
tool-call numbering, silent calls and finish reasons); this writer renders its events:

    begin                response.created, response.in_progress
    reasoning            output_item.added (reasoning), reasoning_summary_part.added,
                         reasoning_summary_text.delta ...
    text / answer        output_item.added (message), content_part.added (output_text),
                         output_text.delta ...
    refusal              content_part.added (refusal), refusal.delta ...
    tool_call            output_item.added (function_call), function_call_arguments.delta ...
    ``complete()``       the open item's *.done events and output_item.done, then
                         response.completed, or response.incomplete (length, content_filter)
    failure              error, response.failed (written by ``stream.ResponsesEncoder``)

An item is closed (its ``done`` events sent) when an item of another kind or another tool call
begins, so items arrive one after another as OpenAI sends them. Every event carries a
``sequence_number`` counting from 0. Only the first choice is rendered (Responses has one).
"""

from __future__ import annotations

import copy
from typing import Any

import pydantic_core

from ..usage import TokenUsage
from .objects import (
    INCOMPLETE_REASONS,
    apply_finish,
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

    __slots__ = ("call_id", "id", "index", "kind", "name", "part", "parts", "text")

    def __init__(self, kind: str, item_id: str, index: int) -> None:
        self.kind = kind
        self.id = item_id
        self.index = index
        self.text: list[str] = []  # reasoning summary, function arguments, or the open part's text
        self.part: str | None = None  # the message's open content part: output_text or refusal
        self.parts: list[dict[str, Any]] = []  # the message's closed parts
        self.name = ""
        self.call_id = ""


class EventWriter:
    """Renders one answer as Responses events; ``take()`` hands over those written so far and
    ``response`` is the object they describe.

    Args:
        response: a Response ``skeleton`` (status ``in_progress``); filled in as the stream goes.
    """

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.finish_reason: str | None = None
        self.token_usage: TokenUsage | None = None
        self._out: list[dict[str, Any]] = []
        self._sequence = 0
        self._started = False
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}

    def take(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _event(self, kind: str, **fields: Any) -> None:
        self._out.append({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1

    def _snapshot(self, kind: str, *, final: bool = False) -> None:
        # Early snapshots are copied (the response grows after them); the final one is not.
        self._event(kind, response=self.response if final else copy.deepcopy(self.response))

    # -- ReplyWriter -------------------------------------------------------------------------------

    def identify(self, response_id: str | None, model: str | None) -> None:
        if model and not self._started:
            self.response["model"] = model

    def begin(self, choice: int) -> None:
        if not self._started:
            self._started = True
            self._snapshot("response.created")
            self._snapshot("response.in_progress")

    def text(self, choice: int, text: str) -> None:
        if choice == 0:
            self._message_text("output_text", text)

    def answer(self, choice: int, fragment: str) -> None:
        self.text(choice, fragment)  # the response_format answer is the message's text

    def refusal(self, choice: int, text: str) -> None:
        if choice == 0:
            self._message_text("refusal", text)

    def reasoning(self, choice: int, text: str) -> None:
        if choice != 0:
            return
        state = self._open
        if state is None or state.kind != "reasoning":
            state = self._begin("reasoning", {"id": new_id("rs"), "type": "reasoning", "summary": []})
            part = {"type": "summary_text", "text": ""}
            where = {"item_id": state.id, "output_index": state.index, "summary_index": 0}
            self._event("response.reasoning_summary_part.added", **where, part=part)
        state.text.append(text)
        where = {"item_id": state.id, "output_index": state.index, "summary_index": 0}
        self._event("response.reasoning_summary_text.delta", **where, delta=text)

    def tool_call(
        self, choice: int, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> None:
        if choice != 0:
            return
        call_id = call_id or new_id("call")
        item = function_call_item(new_id("fc"), call_id, name or "", "", "in_progress")
        state = self._calls[index] = self._begin("function_call", item)
        state.name, state.call_id = name or "", call_id
        self.tool_arguments(choice, index, arguments)

    def tool_arguments(self, choice: int, index: int, fragment: str) -> None:
        state = self._calls.get(index) if choice == 0 else None
        if state is None or not fragment:
            return
        state.text.append(fragment)
        where = {"item_id": state.id, "output_index": state.index}
        self._event("response.function_call_arguments.delta", **where, delta=fragment)

    def thinking_block(self, choice: int, block: dict[str, Any]) -> None:
        """Its text went out as reasoning already; a stream carries no signed blocks back."""

    def logprobs(self, choice: int, logprobs: Any) -> None:
        """Not rendered (``include: message.output_text.logprobs`` is not supported translated)."""

    def finish(self, choice: int, reason: str) -> None:
        if choice == 0:
            self.finish_reason = reason

    def usage(self, usage: TokenUsage) -> None:
        self.token_usage = usage

    # -- items ---------------------------------------------------------------------------------

    def _begin(self, kind: str, item: dict[str, Any]) -> _Item:
        self._close()
        state = _Item(kind, item["id"], len(self.response["output"]))
        self.response["output"].append(item)
        self._open = state
        self._event("response.output_item.added", output_index=state.index, item=item)
        return state

    def _message_text(self, part: str, text: str) -> None:
        state = self._open
        if state is not None and state.part == part == "output_text" and state.kind == "message":
            # Most events of a stream: one more delta of the open text part, built in one dict (the
            # same keys in the same order as ``_event`` below; ~1/8 of a translated chunk's CPU went
            # to the intermediate dicts and keyword expansion).
            state.text.append(text)
            self._out.append(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": self._sequence,
                    "item_id": state.id,
                    "output_index": state.index,
                    "content_index": len(state.parts),
                    "delta": text,
                    "logprobs": [],
                }
            )
            self._sequence += 1
            return
        if state is None or state.kind != "message":
            state = self._begin("message", message_item(new_id("msg"), [], "in_progress"))
        where = {"item_id": state.id, "output_index": state.index}
        if state.part != part:
            self._close_part(state)
            state.part = part
            empty = text_part("") if part == "output_text" else refusal_part("")
            self._event("response.content_part.added", **where, content_index=len(state.parts), part=empty)
        state.text.append(text)
        if part == "output_text":
            self._event(
                "response.output_text.delta", **where, content_index=len(state.parts), delta=text, logprobs=[]
            )
        else:
            self._event("response.refusal.delta", **where, content_index=len(state.parts), delta=text)

    def _close_part(self, state: _Item) -> None:
        if state.part is None:
            return
        text = "".join(state.text)
        state.text = []
        where = {"item_id": state.id, "output_index": state.index, "content_index": len(state.parts)}
        if state.part == "output_text":
            part = text_part(text)
            self._event("response.output_text.done", **where, text=text, logprobs=[])
        else:
            part = refusal_part(text)
            self._event("response.refusal.done", **where, refusal=text)
        state.parts.append(part)
        state.part = None
        self._event("response.content_part.done", **where, part=part)

    def _close(self, status: str = "completed") -> None:
        """The ``done`` events of the open item, which becomes final in ``response.output``."""
        state, self._open = self._open, None
        if state is None:
            return
        where = {"item_id": state.id, "output_index": state.index}
        if state.kind == "reasoning":
            text = "".join(state.text)
            item = reasoning_item(state.id, text)
            part = {"type": "summary_text", "text": text}
            self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            self._event("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
        elif state.kind == "message":
            self._close_part(state)
            item = message_item(state.id, state.parts, status)
        else:
            arguments = "".join(state.text)
            item = function_call_item(state.id, state.call_id, state.name, arguments, status)
            self._event(
                "response.function_call_arguments.done", **where, name=state.name, arguments=arguments
            )
        self.response["output"][state.index] = item
        self._event("response.output_item.done", output_index=state.index, item=item)

    def complete(self, usage: TokenUsage | None) -> list[dict[str, Any]]:
        """The last events: the open item closed, then ``response.completed`` or ``.incomplete``."""
        incomplete = self.finish_reason in INCOMPLETE_REASONS
        self._close("incomplete" if incomplete else "completed")
        apply_finish(self.response, self.finish_reason, usage)
        self._snapshot("response.incomplete" if incomplete else "response.completed", final=True)
        return self.take()

"""``ChunkWriter``: a ``Reply``'s events as OpenAI ``chat.completion.chunk`` dicts.

On the per-event hot path: plain dicts, a few slots, no models. What one upstream event says for
one choice goes out as one chunk (Gemini sends reasoning, text and whole tool calls in a single
event): a delta stays open for more keys until ``take`` collects the chunks of the event, or a key
it already has arrives. The role chunk, the finish chunk and the usage chunk (``choices: []``,
after the finish) always stand alone.
"""

from __future__ import annotations

from typing import Any

from ..usage import TokenUsage
from .head import ResponseHead

__all__ = ["ChunkWriter"]


class ChunkWriter(ResponseHead):
    """Collects chunks; ``take()`` hands over those of the current upstream event.

    Args:
        response_id, model: the chunks' ``id`` and ``model`` (``identify`` may set them later).
        created: the ``created`` timestamp (default: now).
    """

    __slots__ = ("_delta", "_flowing", "_index", "_out", "_role")

    def __init__(self, response_id: str = "", model: str = "", created: int | None = None) -> None:
        super().__init__(response_id, model, created)
        self._out: list[dict[str, Any]] = []
        self._delta: dict[str, Any] | None = None
        """The delta still open for more keys from the same event (always in the last chunk), and
        its choice index (``_index``)."""
        self._index = -1
        self._role: dict[str, Any] | None = None
        """The role delta just sent, open for a refusal only (a prompt refused before any answer)."""
        self._flowing = False
        """Choice 0 has begun and an event's chunks were taken since: ``text_event`` may answer."""

    def take(self) -> list[dict[str, Any]]:
        """The chunks since the last call (one upstream event's worth)."""
        out = self._out
        if out:
            self._out = []
            self._delta = self._role = None
            self._flowing = self._index == 0
        return out

    def text_event(self, text: str) -> list[dict[str, Any]] | None:
        """The chunks of an upstream event that says nothing but ``text`` for choice 0, or ``None``
        when that choice has not begun yet or ``text`` is empty (then: ``Reply.text`` and ``take``).
        Call it first for an event (nothing written since the last ``take``).

        The most frequent event of every stream, in one call where the general way takes three
        (``Reply.text``, ``text``, ``take``): after the first event of choice 0, its text needs none
        of ``Reply``'s bookkeeping and always makes one chunk of its own."""
        if self._flowing and text:
            return [
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [
                        {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
                    ],
                }
            ]
        return None

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        self._out.append(chunk)
        return chunk

    def _open(self, choice: int, key: str) -> dict[str, Any]:
        """The delta to put ``key`` in: the open one when it is for ``choice`` and lacks ``key``.
        (Written out rather than through ``_chunk``: it runs once per upstream event.)"""
        delta = self._delta
        if delta is not None and key not in delta and self._index == choice:
            return delta
        delta = self._delta = {}
        self._index = choice
        entry = {"index": choice, "delta": delta, "logprobs": None, "finish_reason": None}
        self._out.append(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [entry],
            }
        )
        return delta

    # -- ReplyWriter -----------------------------------------------------------------------------

    def begin(self, choice: int) -> None:
        self._delta = None
        role = self._role = {"role": "assistant", "content": ""}
        self._index = choice
        self._chunk({"index": choice, "delta": role, "logprobs": None, "finish_reason": None})

    def text(self, choice: int, text: str) -> None:
        # The most frequent event of all: ``_open`` written out once more.
        delta = self._delta
        if delta is not None and "content" not in delta and self._index == choice:
            delta["content"] = text
            return
        delta = self._delta = {"content": text}
        self._index = choice
        entry = {"index": choice, "delta": delta, "logprobs": None, "finish_reason": None}
        self._out.append(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [entry],
            }
        )

    answer = text  # the JSON answer is the message content

    def reasoning(self, choice: int, text: str) -> None:
        self._open(choice, "reasoning_content")["reasoning_content"] = text

    def refusal(self, choice: int, text: str) -> None:
        role = self._role
        if (
            role is not None
            and self._index == choice
            and self._out
            and self._out[-1]["choices"][0]["delta"] is role
        ):
            role["refusal"] = text
            self._role = None
            return
        self._open(choice, "refusal")["refusal"] = text

    def tool_call(
        self, choice: int, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> None:
        call: dict[str, Any] = {"index": index, "id": call_id, "type": "function"}
        call["function"] = {"name": name, "arguments": arguments}
        self._add_call(choice, call)

    def tool_arguments(self, choice: int, index: int, fragment: str) -> None:
        self._add_call(choice, {"index": index, "function": {"arguments": fragment}})

    def _add_call(self, choice: int, call: dict[str, Any]) -> None:
        delta = self._delta
        if delta is not None and self._index == choice and "tool_calls" in delta:
            delta["tool_calls"].append(call)
        else:
            self._open(choice, "tool_calls")["tool_calls"] = [call]

    def thinking_block(self, choice: int, block: dict[str, Any]) -> None:
        """Not part of a chunk: the blocks' text went out as ``reasoning_content`` already."""

    def logprobs(self, choice: int, logprobs: Any) -> None:
        if self._delta is not None and self._index == choice:
            self._out[-1]["choices"][0]["logprobs"] = logprobs

    def finish(self, choice: int, reason: str) -> None:
        self._delta = None
        self._chunk({"index": choice, "delta": {}, "logprobs": None, "finish_reason": reason})

    def usage(self, usage: TokenUsage) -> None:
        self._delta = None
        self._out.append(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage.to_openai(),
            }
        )

"""``CompletionWriter``: a ``Reply``'s events as one complete OpenAI ``chat.completion``.

Every message has the fields OpenAI's schema requires (``role``, ``content``, ``refusal``), and the
same rules hold for every provider: ``content`` is the text (``None`` when the turn only called
tools); with a ``response_format`` answer it is that answer alone (text around the JSON tool call
would make it invalid JSON); ``reasoning_content``, ``tool_calls`` and Anthropic's
``thinking_blocks`` appear only when there are some.
"""

from __future__ import annotations

from typing import Any

from ..usage import TokenUsage
from .head import ResponseHead

__all__ = ["CompletionWriter"]


class _Message:
    __slots__ = ("answer", "blocks", "calls", "finish", "logprobs", "reasoning", "refusal", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.blocks: list[dict[str, Any]] = []
        self.logprobs: Any = None
        self.finish = "stop"

    def render(self, index: int) -> dict[str, Any]:
        calls = [self.calls[position] for position in sorted(self.calls)]
        content = "".join(self.answer) if self.answer else "".join(self.texts)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content if content or not calls else None,
            "refusal": "".join(self.refusal) if self.refusal else None,
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if calls:
            for call in calls:
                function = call["function"]
                function["arguments"] = "".join(function["arguments"])
            message["tool_calls"] = calls
        if self.blocks:
            # Sent back on the next turn so that tool use with extended thinking keeps working.
            message["thinking_blocks"] = self.blocks
        return {"index": index, "message": message, "logprobs": self.logprobs, "finish_reason": self.finish}


class CompletionWriter(ResponseHead):
    """Collects one answer; ``response()`` renders it.

    Args:
        response_id, model: the response's ``id`` and ``model`` (``identify`` may set them later).
        created: the ``created`` timestamp (default: now).
    """

    __slots__ = ("_messages", "usage_seen")

    def __init__(self, response_id: str = "", model: str = "", created: int | None = None) -> None:
        super().__init__(response_id, model, created)
        self.usage_seen: TokenUsage | None = None
        self._messages: dict[int, _Message] = {}

    def response(self) -> dict[str, Any]:
        """The ``chat.completion`` (with ``usage`` when the upstream reported it)."""
        response: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [self._messages[index].render(index) for index in sorted(self._messages)],
        }
        if self.usage_seen is not None:
            response["usage"] = self.usage_seen.to_openai()
        return response

    def _message(self, choice: int) -> _Message:
        message = self._messages.get(choice)
        if message is None:
            message = self._messages[choice] = _Message()
        return message

    # -- ReplyWriter -----------------------------------------------------------------------------

    def begin(self, choice: int) -> None:
        self._message(choice)

    def text(self, choice: int, text: str) -> None:
        self._message(choice).texts.append(text)

    def answer(self, choice: int, fragment: str) -> None:
        self._message(choice).answer.append(fragment)

    def reasoning(self, choice: int, text: str) -> None:
        self._message(choice).reasoning.append(text)

    def refusal(self, choice: int, text: str) -> None:
        self._message(choice).refusal.append(text)

    def tool_call(
        self, choice: int, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> None:
        self._message(choice).calls[index] = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": [arguments]},
        }

    def tool_arguments(self, choice: int, index: int, fragment: str) -> None:
        self._message(choice).calls[index]["function"]["arguments"].append(fragment)

    def thinking_block(self, choice: int, block: dict[str, Any]) -> None:
        self._message(choice).blocks.append(block)

    def logprobs(self, choice: int, logprobs: Any) -> None:
        self._message(choice).logprobs = logprobs

    def finish(self, choice: int, reason: str) -> None:
        self._message(choice).finish = reason

    def usage(self, usage: TokenUsage) -> None:
        self.usage_seen = usage

"""``Reply``: the one state machine between a provider's answer and the shape a client reads.

A provider's translation says only *what arrived* (a choice began, text, reasoning, a tool call
under the vendor's own block key, argument fragments, a finish reason, usage); ``Reply`` keeps the
bookkeeping every provider needs and hands clean events to a ``ReplyWriter``, which renders them:
``ChunkWriter`` as OpenAI ``chat.completion.chunk`` dicts, ``CompletionWriter`` as one complete
``chat.completion``; writers for other output shapes (Anthropic Messages, OpenAI Responses) plug
in the same way.

The bookkeeping, once for every provider, stream or not:

- a choice begins once (the role), before anything else is said for it;
- tool calls are numbered per choice in the order they start (OpenAI ``index`` 0, 1, ...), whatever
  the vendor's block key is (Anthropic counts text blocks too; Gemini has no key at all);
- a tool call that never sends an argument gets ``"{}"``, so its arguments always parse;
- the forced "JSON tool" behind ``response_format`` is the answer, not a tool call: its first call
  becomes the message content (later calls of it are dropped), and a turn that only called it
  finishes with ``stop`` rather than ``tool_calls``;
- usage is kept as a typed ``TokenUsage`` for the gateway (nothing parses it back from a dict).

Modelled on pydantic-ai's ``_parts_manager``: vendor keys in, one numbering and one event
vocabulary out.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any, Protocol

from ..usage import TokenUsage

__all__ = ["Reply", "ReplyWriter", "arguments_json"]


class ReplyWriter(Protocol):
    """Renders what arrived. ``choice`` is the choice index; ``index`` a tool call's number."""

    def identify(self, response_id: str | None, model: str | None) -> None:
        """The upstream said which response this is and which model answers (either may be None)."""

    def begin(self, choice: int) -> None:
        """A choice begins: the assistant's turn."""

    def text(self, choice: int, text: str) -> None: ...

    def reasoning(self, choice: int, text: str) -> None: ...

    def refusal(self, choice: int, text: str) -> None: ...

    def answer(self, choice: int, fragment: str) -> None:
        """A piece of the ``response_format`` answer (JSON text from the forced JSON tool)."""

    def tool_call(
        self, choice: int, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> None:
        """Tool call ``index`` begins (``arguments`` may be its first fragment, or empty)."""

    def tool_arguments(self, choice: int, index: int, fragment: str) -> None: ...

    def thinking_block(self, choice: int, block: dict[str, Any]) -> None:
        """An opaque reasoning block the client must send back on its next turn (Anthropic's signed
        ``thinking`` / ``redacted_thinking`` blocks)."""

    def logprobs(self, choice: int, logprobs: Any) -> None:
        """Log probabilities for what was last said in ``choice``."""

    def finish(self, choice: int, reason: str) -> None:
        """The choice ended, with OpenAI's ``finish_reason``."""

    def usage(self, usage: TokenUsage) -> None: ...


class Reply:
    """One answer on its way through: vendor events in, writer events out. One per response.

    Args:
        writer: renders the events.
        json_tool: the name of the forced tool standing in for ``response_format`` (or None).
    """

    __slots__ = (
        "_answer_key",
        "_begun",
        "_counts",
        "_dropped",
        "_silent",
        "_tools",
        "json_tool",
        "usage",
        "writer",
    )

    def __init__(self, writer: ReplyWriter, json_tool: str | None = None) -> None:
        self.writer = writer
        self.json_tool = json_tool
        self.usage: TokenUsage | None = None
        self._begun: set[int] = set()
        self._counts: dict[int, int] = {}
        """choice -> tool calls started (the JSON tool not counted)."""
        self._tools: dict[Hashable, int] = {}
        """vendor block key -> OpenAI tool call index."""
        self._silent: dict[Hashable, int] = {}
        """Tool blocks that have sent no argument yet -> their choice."""
        self._answer_key: Hashable = _NO_KEY
        self._dropped: set[Hashable] = set()

    def identify(self, response_id: str | None, model: str | None) -> None:
        self.writer.identify(response_id, model)

    def begin(self, choice: int = 0) -> None:
        """The choice begins (said at most once; every other event begins it when needed)."""
        if choice not in self._begun:
            self._begun.add(choice)
            self.writer.begin(choice)

    def begun(self, choice: int = 0) -> bool:
        """Whether anything was said for ``choice`` yet."""
        return choice in self._begun

    def text(self, text: str, choice: int = 0) -> None:
        if choice not in self._begun:
            self.begin(choice)
        if text:
            self.writer.text(choice, text)

    def reasoning(self, text: str, choice: int = 0) -> None:
        if choice not in self._begun:
            self.begin(choice)
        if text:
            self.writer.reasoning(choice, text)

    def refusal(self, text: str, choice: int = 0) -> None:
        if choice not in self._begun:
            self.begin(choice)
        if text:
            self.writer.refusal(choice, text)

    def thinking_block(self, block: dict[str, Any], choice: int = 0) -> None:
        if choice not in self._begun:
            self.begin(choice)
        self.writer.thinking_block(choice, block)

    def tool_call(
        self, key: Hashable, call_id: str | None, name: str | None, arguments: str = "", choice: int = 0
    ) -> None:
        """A tool call starts in block ``key`` (``arguments``: all of them, a first fragment, or "")."""
        if choice not in self._begun:
            self.begin(choice)
        if name is not None and name == self.json_tool:
            if self._answer_key is not _NO_KEY:
                self._dropped.add(key)  # the answer was given already: one JSON document, not two
                return
            self._answer_key = key
            if arguments:
                self.writer.answer(choice, arguments)
            else:
                self._silent[key] = choice
            return
        index = self._tools[key] = self._counts.get(choice, 0)
        self._counts[choice] = index + 1
        if not arguments:
            self._silent[key] = choice
        self.writer.tool_call(choice, index, call_id, name, arguments)

    def tool_arguments(self, key: Hashable, fragment: str, choice: int = 0) -> None:
        """More of the arguments of the tool call in block ``key``."""
        if not fragment:
            return
        if self._silent:
            self._silent.pop(key, None)
        if key == self._answer_key:
            self.writer.answer(choice, fragment)
            return
        index = self._tools.get(key)
        if index is None:
            if key in self._dropped:
                return
            # Arguments for a block that never started: keep them, as a call of their own.
            self.tool_call(key, None, None, fragment, choice)
            return
        self.writer.tool_arguments(choice, index, fragment)

    def tool_end(self, key: Hashable) -> None:
        """The tool call in block ``key`` is complete: "{}" if it never sent arguments."""
        choice = self._silent.pop(key, None) if self._silent else None
        if choice is None:
            return
        if key == self._answer_key:
            self.writer.answer(choice, "{}")
        else:
            self.writer.tool_arguments(choice, self._tools[key], "{}")

    def logprobs(self, logprobs: Any, choice: int = 0) -> None:
        self.writer.logprobs(choice, logprobs)

    def tool_calls(self, choice: int = 0) -> int:
        """How many real tool calls ``choice`` has made so far."""
        return self._counts.get(choice, 0)

    def finish(self, reason: str, choice: int = 0) -> None:
        """The choice ends with OpenAI's ``reason``; ``tool_calls`` becomes ``stop`` when the only
        tool called was the JSON tool (that call is the answer)."""
        if choice not in self._begun:
            self.begin(choice)
        for key in [key for key, owner in self._silent.items() if owner == choice]:
            self.tool_end(key)
        if reason == "tool_calls" and not self._counts.get(choice):
            reason = "stop"
        self.writer.finish(choice, reason)

    def add_usage(self, usage: TokenUsage | None) -> None:
        """The call's usage (once, when known)."""
        if usage is not None:
            self.usage = usage
            self.writer.usage(usage)


def arguments_json(value: Any) -> str:
    """A vendor's tool input (an object) as OpenAI's ``arguments`` string: compact JSON, non-ASCII
    kept as is; a missing input is ``{}``."""
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


class _NoKey:
    """A block key no vendor uses (``None`` is a real key for some)."""

    __slots__ = ()


_NO_KEY: Any = _NoKey()

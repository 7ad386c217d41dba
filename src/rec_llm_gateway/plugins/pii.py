"""PII redaction: emails, phone numbers and card numbers are replaced before a request leaves.

Example::

    from rec_llm_gateway.plugins.pii import PIIRedactionPlugin

    gateway = Gateway(config, plugins=[PIIRedactionPlugin()])
    # or with extra patterns, in config:
    # plugins: [{path: "rec_llm_gateway.plugins.pii:PIIRedactionPlugin",
    #            options: {patterns: {employee_id: "EMP-\\d{6}"}}}]

Every message's text is redacted (system, user, assistant, tool; text parts; tool-call arguments),
for streaming and non-streaming requests alike; on ``/v1/responses`` the instructions and every
input item's text. The number of replacements per kind is put in
``context.metadata["pii_redactions"]``. Card numbers are only replaced when they pass the Luhn check,
so order numbers and timestamps survive.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..hooks import RequestContext, hookimpl
from ..responses.wire import ResponsesRequest
from ..schema import ChatCompletionRequest, TextPart

__all__ = ["DEFAULT_PATTERNS", "PIIRedactionPlugin"]

DEFAULT_PATTERNS: Final[dict[str, str]] = {
    # The lookbehind starts a match only where a run of local-part characters starts: without it a
    # long run with no "@" was rescanned from every position (quadratic: 0.6 s for 20 KB of letters
    # or digits, minutes for a megabyte, on the event loop; found by the fuzz suite). Same matches.
    "email": r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
    # 13-19 digits, optionally grouped by spaces or dashes (checked with Luhn before replacing).
    "card": r"\b(?:\d[ \-]?){12,18}\d\b",
    # International (+44 20 7946 0958) or national ((555) 123-4567, 555-123-4567) numbers.
    "phone": r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?|\d{2,4}[ .\-])\d{3,4}[ .\-]?\d{3,4}\b",
}


def _luhn_valid(text: str) -> bool:
    digits = [int(char) for char in text if char.isdigit()]
    checksum = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        checksum += digit
    return 13 <= len(digits) <= 19 and checksum % 10 == 0


class PIIRedactionPlugin:
    """Redacts PII from requests in ``pre_request`` (runs first, before other plugins see the text).

    Args:
        patterns: extra ``name -> regex`` patterns (added to the defaults).
        replace_defaults: use only ``patterns``, not the built-in email/card/phone ones.
        placeholder: replacement text; ``{name}`` becomes the pattern's name in upper case.
    """

    def __init__(
        self,
        patterns: Mapping[str, str] | None = None,
        *,
        replace_defaults: bool = False,
        placeholder: str = "[REDACTED_{name}]",
    ) -> None:
        chosen = {} if replace_defaults else dict(DEFAULT_PATTERNS)
        chosen.update(patterns or {})
        # Cards before phones: a card number also looks like a long phone number.
        order = sorted(chosen, key=lambda name: (name != "card", name != "email"))
        self._patterns = [(name, re.compile(chosen[name])) for name in order]
        self._placeholder = placeholder

    def redact(self, text: str, counts: Counter[str] | None = None) -> str:
        """``text`` with every match replaced; ``counts`` (if given) counts replacements per pattern."""
        for name, pattern in self._patterns:
            text = pattern.sub(self._replacer(name, counts), text)
        return text

    def _replacer(self, name: str, counts: Counter[str] | None) -> Callable[[re.Match[str]], str]:
        replacement = self._placeholder.format(name=name.upper())

        def replace(match: re.Match[str]) -> str:
            if name == "card" and not _luhn_valid(match.group(0)):
                return match.group(0)
            if counts is not None:
                counts[name] += 1
            return replacement

        return replace

    @hookimpl(tryfirst=True)
    def pre_request(self, request: Any, context: RequestContext) -> None:
        counts: Counter[str] = Counter()
        if isinstance(request, ResponsesRequest):
            self._redact_responses(request, counts)
        elif isinstance(request, ChatCompletionRequest):
            self._redact_messages(request, counts)
        else:  # Anthropic Messages (system, messages), embeddings (input), legacy completions (prompt)
            for name in ("system", "input", "prompt"):
                value = getattr(request, name, None)
                if value is not None:
                    setattr(request, name, self._redact_value(value, counts))
            for message in getattr(request, "messages", None) or ():
                message.content = self._redact_value(message.content, counts)
        if counts:
            context.metadata["pii_redactions"] = dict(counts)

    def _redact_value(self, value: Any, counts: Counter[str]) -> Any:
        """Text wherever a request keeps it: a string, a list of them, text blocks and the nested
        ``content`` of Anthropic's tool results. Token ids, images and documents are left alone."""
        if isinstance(value, str):
            return self.redact(value, counts)
        if isinstance(value, list):
            return [self._redact_value(item, counts) for item in value]
        if isinstance(value, dict):
            for key in ("text", "content"):
                if key in value:
                    value[key] = self._redact_value(value[key], counts)
        return value

    def _redact_messages(self, request: ChatCompletionRequest, counts: Counter[str]) -> None:
        for message in request.messages:
            content: Any = getattr(message, "content", None)
            if isinstance(content, str):
                message.content = self.redact(content, counts)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, TextPart):
                        part.text = self.redact(part.text, counts)
            for call in getattr(message, "tool_calls", None) or ():
                call.function.arguments = self.redact(call.function.arguments, counts)

    def _redact_responses(self, request: ResponsesRequest, counts: Counter[str]) -> None:
        """``/v1/responses``: instructions, and the text of every input item (message content, text
        parts, function call arguments and outputs). Earlier turns were redacted when they were sent."""
        if request.instructions:
            request.instructions = self.redact(request.instructions, counts)
        if isinstance(request.input, str):
            request.input = self.redact(request.input, counts)
            return
        for item in request.input or ():
            for key in ("content", "output", "arguments"):
                value = item.get(key)
                if isinstance(value, str):
                    item[key] = self.redact(value, counts)
                elif isinstance(value, list):
                    for part in value:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            part["text"] = self.redact(part["text"], counts)

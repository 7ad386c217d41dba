"""``echo``: a built-in provider with no network, for demos, tests and benchmarks.

It answers with the last user message (or the configured ``response``), streams it word by word,
honours ``n`` (that many identical choices) and ``max_tokens`` / ``max_completion_tokens`` (counting
words, ``finish_reason: length``), and reports token counts (one token per word, a rough but stable
rule). The answers are built by ``translate`` like every native provider's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from ..config import ProviderConfig
from ..pricing import FREE
from ..schema import content_text
from ..translate import ChunkWriter, CompletionWriter, Reply
from ..usage import TokenUsage
from .base import ChatResult, Provider, UpstreamCall

__all__ = ["EchoProvider", "EchoSettings"]

_WORD = re.compile(r"\S+\s*")


class EchoSettings(ProviderConfig):
    model_config = ConfigDict(extra="forbid")

    response: str | None = None
    """A fixed answer; by default the last user message is echoed."""
    delay: float = Field(0.0, ge=0)
    """Seconds to wait before answering (and between stream chunks), to imitate a real model."""


class EchoProvider(Provider):
    type_name = "echo"
    settings_model: ClassVar[type[ProviderConfig]] = EchoSettings
    otel_provider_name = "echo"
    price_provider = FREE

    settings: EchoSettings

    def catalog_models(self) -> list[str]:
        return ["echo-1"]

    def _answer(self, call: UpstreamCall) -> tuple[list[str], str, TokenUsage]:
        request = call.request
        text = self.settings.response
        if text is None:
            text = next(
                (
                    content_text(message.content)
                    for message in reversed(request.messages)
                    if message.role == "user"
                ),
                "",
            )
        words = _WORD.findall(text)
        limit = request.max_completion_tokens or request.max_tokens
        finish = "stop"
        if limit is not None and 0 <= limit < len(words):
            words, finish = words[:limit], "length"
        prompt = sum(
            len(content_text(getattr(message, "content", None)).split()) for message in request.messages
        )
        completion = len(words) * (request.n or 1)  # every choice is generated (and billed)
        usage = TokenUsage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
        return words, finish, usage

    async def complete(self, call: UpstreamCall) -> ChatResult:
        words, finish, usage = self._answer(call)
        if self.settings.delay:
            await asyncio.sleep(self.settings.delay)
            call.upstream_seconds += self.settings.delay
        call.response_model = call.model
        writer = CompletionWriter(f"chatcmpl-echo-{call.request_id}", call.model)
        reply = Reply(writer)
        answer = "".join(words)
        for choice in range(call.request.n or 1):
            reply.text(answer, choice)
            reply.finish(finish, choice)
        reply.add_usage(usage)
        return ChatResult(response=writer.response(), usage=usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        words, finish, usage = self._answer(call)
        call.response_model = call.model
        writer = ChunkWriter(f"chatcmpl-echo-{call.request_id}", call.model)
        reply = Reply(writer)
        choices = range(call.request.n or 1)
        for choice in choices:
            reply.begin(choice)
        for word in ["", *words]:  # "": the role chunks go out before the first wait
            if word and self.settings.delay:
                await asyncio.sleep(self.settings.delay)
                call.upstream_seconds += self.settings.delay
            for choice in choices:
                reply.text(word, choice)
            for chunk in writer.take():
                yield chunk
        for choice in choices:
            reply.finish(finish, choice)
        call.usage = usage
        reply.add_usage(usage)
        for chunk in writer.take():
            yield chunk

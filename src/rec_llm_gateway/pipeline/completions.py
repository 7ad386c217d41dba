"""``POST /v1/completions`` (OpenAI's legacy text completions): what the operation adds to the
shared pipeline.

A provider that serves ``/completions`` itself (``Provider.text_completions``: OpenAI, Azure and
every OpenAI-compatible server) gets the request as the client sent it. Any other is asked a
one-message chat (``completions_translate``) and its answer, or stream, comes back in the
``text_completion`` shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..completions_translate import TextChunks, chat_request, text_completion
from ..providers.base import ChatResult
from ..schema_completions import CompletionRequest, TextCompletion
from ..streaming import StreamAssembler
from .operation import Operation

if TYPE_CHECKING:
    from ..config import LimitsConfig
    from ..providers.base import Provider, UpstreamCall
    from .operation import Assembler

__all__ = ["COMPLETIONS", "CompletionsOperation"]


class CompletionsOperation(Operation):
    """Legacy text completions, JSON or SSE."""

    name: ClassVar[str] = "text_completion"
    request_model = CompletionRequest
    response_model = TextCompletion
    chunk_model = TextCompletion
    response_description: ClassVar[str] = "A text_completion; with stream: true, text_completion events."

    def parse(self, body: bytes, limits: LimitsConfig) -> CompletionRequest:
        return CompletionRequest.from_json(body)

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        if provider.text_completions:
            return await provider.complete(call)
        call.request = chat_request(call.request, provider.name)  # type: ignore[arg-type]
        result = await provider.complete(call)
        return ChatResult(response=text_completion(result.response), usage=result.usage)

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        if provider.text_completions:
            return provider.stream(call)
        call.request = chat_request(call.request, provider.name)  # type: ignore[arg-type]
        return _text_chunks(provider.stream(call))

    def assembler(self, keep_text: bool) -> Assembler:
        return TextAssembler(keep_text=keep_text)


async def _text_chunks(stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """A chat stream's chunks as text-completion chunks; closing this closes the chat stream."""
    converter = TextChunks()
    try:
        async for chunk in stream:
            converted = converter.convert(chunk)
            if converted is not None:
                yield converted
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()


class TextAssembler(StreamAssembler):
    """What a text-completion stream amounts to (the ``text_completion`` ``post_response`` sees)."""

    __slots__ = ()

    def add(self, chunk: dict[str, Any]) -> None:
        choices = chunk.get("choices")
        if choices:
            # A text chunk's ``text`` is a chat delta's ``content``: the chat assembler does the rest.
            chunk = {
                **chunk,
                "choices": [
                    {**choice, "delta": {"content": choice.get("text")}}
                    if isinstance(choice, dict)
                    else choice
                    for choice in choices
                ],
            }
        super().add(chunk)

    def response(self) -> dict[str, Any]:
        return text_completion(super().response())


COMPLETIONS = CompletionsOperation()

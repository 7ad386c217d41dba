"""``POST /v1/chat/completions``: what the chat operation adds to the shared pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InvalidRequestError
from ..schema import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from .operation import Operation

if TYPE_CHECKING:
    from ..config import LimitsConfig
    from ..providers.base import ChatResult, Provider, UpstreamCall

__all__ = ["CHAT", "ChatOperation"]


class ChatOperation(Operation):
    """OpenAI chat completions, JSON or SSE."""

    name: ClassVar[str] = "chat"
    request_model = ChatCompletionRequest
    response_model = ChatCompletion
    chunk_model = ChatCompletionChunk
    response_description = "A chat.completion; with stream: true, chat.completion.chunk events."

    def parse(self, body: bytes, limits: LimitsConfig) -> ChatCompletionRequest:
        request = ChatCompletionRequest.from_json(body)
        if len(request.messages) > limits.max_messages:
            raise InvalidRequestError(
                f"Too many messages: {len(request.messages)} (limit {limits.max_messages}).",
                param="messages",
                code="too_many_messages",
            )
        return request

    def streams(self, request: ChatCompletionRequest) -> bool:
        return bool(request.stream)

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        return await provider.complete(call)

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        return provider.stream(call)


CHAT = ChatOperation()

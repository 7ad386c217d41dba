"""A quick estimate of a request's tokens, for context-window checks, ``tokens_per_minute`` limits
and the ``cost`` strategy.

No tokenizer: tiktoken would download its vocabularies at runtime and costs far more than the
routing decision itself. About four characters per token holds for English text and JSON across
current OpenAI, Anthropic and Gemini tokenizers; text in other scripts takes more tokens per
character, so the estimate can fall short. That is safe here: a request that turns out too long
for a model is refused by the upstream (``context_length_exceeded``), and the gateway then takes
the context-window fallback anyway. Limits are settled with the real count from the upstream.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from ..responses.wire import ResponsesRequest
from ..schema import ChatCompletionRequest, TextPart
from ..usage import TokenUsage

__all__ = [
    "CHAT_ESTIMATES",
    "DEFAULT_COMPLETION_TOKENS",
    "TokenEstimates",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "estimate_usage",
    "stream_usage",
]

CHARS_PER_TOKEN: Final = 4
PER_MESSAGE: Final = 4  # role and separators, as OpenAI's chat format counts them
PER_REQUEST: Final = 3  # the primed assistant reply
IMAGE_TOKENS: Final = 765  # a high-detail 512x512 tile set; low detail is 85
OTHER_PART_TOKENS: Final = 256  # audio and file parts: unknown size, a modest guess
DEFAULT_COMPLETION_TOKENS: Final = 256
"""Completion length assumed by the ``cost`` strategy when the request sets no ``max_tokens``."""


def estimate_prompt_tokens(request: ChatCompletionRequest | ResponsesRequest) -> int:
    if isinstance(request, ResponsesRequest):
        return _responses_prompt_tokens(request)
    chars = 0
    tokens = PER_REQUEST
    for message in request.messages:
        tokens += PER_MESSAGE
        content = getattr(message, "content", None)
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif getattr(part, "type", None) == "image_url":
                    tokens += IMAGE_TOKENS
                else:
                    tokens += OTHER_PART_TOKENS
        tool_calls = getattr(message, "tool_calls", None)
        if tool_calls:
            for call in tool_calls:
                chars += len(call.function.name) + len(call.function.arguments)
    if request.tools:
        # Tool schemas count toward the prompt; their JSON size is a fair proxy.
        chars += sum(len(tool.model_dump_json(exclude_unset=True)) for tool in request.tools)
    return tokens + -(-chars // CHARS_PER_TOKEN)


def estimate_usage(request: Any, output_chars: int) -> TokenUsage:
    """Usage the upstream never reported (a stream cut off before its usage chunk): the prompt
    estimate and what was streamed, marked ``estimated``."""
    prompt = (
        estimate_prompt_tokens(request)
        if isinstance(request, ChatCompletionRequest | ResponsesRequest)
        else 0
    )
    completion = -(-output_chars // CHARS_PER_TOKEN)
    return TokenUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion, estimated=True
    )


def stream_usage(request: Any, reported: Any, output_chars: int) -> TokenUsage:
    """A stream's usage: what the upstream reported, else the estimate (never nothing: the
    provider bills the tokens it generated whether or not its usage chunk arrived)."""
    return TokenUsage.from_openai(reported) or estimate_usage(request, output_chars)


def estimate_completion_tokens(request: ChatCompletionRequest | ResponsesRequest) -> int:
    """What the client allows the answer to take (``max_completion_tokens`` / ``max_tokens``), or 0."""
    if isinstance(request, ResponsesRequest):
        return request.max_output_tokens or 0
    return request.max_completion_tokens or request.max_tokens or 0


def _responses_prompt_tokens(request: ResponsesRequest) -> int:
    """``/v1/responses``: the JSON size of the instructions, input items and tools (the history of a
    ``previous_response_id`` is not read yet when routing asks, so it is not counted)."""
    tokens = PER_REQUEST + PER_MESSAGE * len(request.input_items())
    chars = len(request.instructions or "")
    if request.input is not None:
        chars += len(request.input) if isinstance(request.input, str) else len(json.dumps(request.input))
    if request.tools:
        chars += len(json.dumps(request.tools))
    return tokens + -(-chars // CHARS_PER_TOKEN)


class TokenEstimates(Protocol):
    """How many tokens a request of one operation will take: what routing (context windows, the
    ``cost`` strategy) asks of it. Each operation has one (``Operation.estimates``)."""

    def prompt_tokens(self, request: Any) -> int: ...

    def completion_tokens(self, request: Any) -> int: ...


class _ChatEstimates:
    """``TokenEstimates`` of a chat completions request."""

    @staticmethod
    def prompt_tokens(request: Any) -> int:
        return estimate_prompt_tokens(request)

    @staticmethod
    def completion_tokens(request: Any) -> int:
        return estimate_completion_tokens(request)


CHAT_ESTIMATES: Final[TokenEstimates] = _ChatEstimates()

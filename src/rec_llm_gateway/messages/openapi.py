"""``/v1/messages`` and ``/v1/messages/count_tokens`` in the gateway's OpenAPI description (imported
by ``openapi.py`` only, through ``MessagesOperation.describe``).

The request is described as every upstream takes it: text, ``tool_use`` and ``tool_result`` blocks,
function tools, sampling and thinking. Claude gets more natively (images, documents, cache_control,
server tools, betas: the wire model keeps unknown fields and blocks for it), which a translated
upstream refuses with a 400 naming the field. Answers and errors are Anthropic's shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..schema import Temperature, TopP

__all__ = [
    "AnthropicError",
    "AnthropicMessage",
    "AnthropicStreamEvent",
    "CountTokensCreate",
    "MessagesCreate",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class AnthropicTextBlock(_Doc):
    type: Literal["text"]
    text: str = Field(min_length=1)


class AnthropicToolUseBlock(_Doc):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class AnthropicToolResultBlock(_Doc):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[AnthropicTextBlock] | None = None
    is_error: bool | None = None


_Text = Annotated[str, Field(min_length=1)]
_UserBlock = Annotated[AnthropicTextBlock | AnthropicToolResultBlock, Field(discriminator="type")]
_AssistantBlock = Annotated[AnthropicTextBlock | AnthropicToolUseBlock, Field(discriminator="type")]


class AnthropicUserMessage(_Doc):
    role: Literal["user"]
    content: _Text | Annotated[list[_UserBlock], Field(min_length=1)]


class AnthropicAssistantMessage(_Doc):
    role: Literal["assistant"]
    content: _Text | Annotated[list[_AssistantBlock], Field(min_length=1)]


class AnthropicTool(_Doc):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class AnthropicAnyTool(_Doc):
    type: Literal["auto", "any", "none"]
    disable_parallel_tool_use: bool | None = None


class AnthropicNamedTool(_Doc):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class AnthropicThinkingBudget(_Doc):
    type: Literal["enabled"]
    budget_tokens: int


class AnthropicThinkingOff(_Doc):
    type: Literal["disabled", "adaptive"]


class _MessagesInput(_Doc):
    model: str
    messages: Annotated[
        list[Annotated[AnthropicUserMessage | AnthropicAssistantMessage, Field(discriminator="role")]],
        Field(min_length=1),
    ]
    system: str | list[AnthropicTextBlock] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: Annotated[AnthropicAnyTool | AnthropicNamedTool, Field(discriminator="type")] | None = None
    thinking: (
        Annotated[AnthropicThinkingBudget | AnthropicThinkingOff, Field(discriminator="type")] | None
    ) = None


class MessagesCreate(_MessagesInput):
    """``POST /v1/messages``: Anthropic's Messages API, to any provider (Claude natively)."""

    max_tokens: int = Field(ge=1)
    stream: bool | None = None
    # The chat request's ranges: the translated request must pass them.
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None


class CountTokensCreate(_MessagesInput):
    """``POST /v1/messages/count_tokens``: the same input, nothing about the output."""


class AnthropicMessage(_Doc):
    """An answer: ``content`` holds ``thinking``, ``text`` and ``tool_use`` blocks."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: dict[str, Any]


class AnthropicStreamEvent(_Doc):
    """One event of a stream: message_start, content_block_start / delta / stop, message_delta,
    message_stop, ping, or error."""

    type: str


class AnthropicErrorDetail(_Doc):
    type: str
    message: str


class AnthropicError(_Doc):
    """Every failure on these routes: Anthropic's error envelope."""

    type: Literal["error"]
    error: AnthropicErrorDetail
    request_id: str | None = None

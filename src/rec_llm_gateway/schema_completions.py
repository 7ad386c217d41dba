"""OpenAI legacy text completions: the ``POST /v1/completions`` request.

OpenAI-compatible upstreams get it as the client sent it (unknown fields included). Native providers
have no text-completion API: ``completions_translate`` turns it into a one-message chat, and the
parameters that only make sense for raw text completion are refused there, by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field, PlainValidator, WithJsonSchema

from .schema import (
    MAX_MODEL_LENGTH,
    ChoiceCount,
    Completion,
    FastList,
    Penalty,
    StreamOptions,
    Temperature,
    TopP,
    _Open,
)
from .schema_embeddings import INPUT_SCHEMA, check_input

__all__ = ["MAX_PROMPTS", "CompletionRequest", "TextCompletion"]

MAX_PROMPTS: Final = 2048
"""Prompts one request may carry (OpenAI's own limit for a prompt list)."""


def _validated_prompt(value: Any) -> Any:
    # The same four shapes as embeddings' ``input``; "" is allowed (OpenAI reads it as the start of
    # a document), and so is null (the same).
    if value is not None and value != "":
        check_input(value, MAX_PROMPTS, "prompt")
    return value


class CompletionRequest(_Open):
    """``POST /v1/completions`` body. Unknown fields are kept (``request.model_extra``)."""

    model: Annotated[str, Field(max_length=MAX_MODEL_LENGTH)]
    prompt: Annotated[
        str | list[str] | list[int] | list[list[int]] | None,
        PlainValidator(_validated_prompt),
        # "" is a prompt too (the start of a document), unlike an empty embeddings input.
        WithJsonSchema({"anyOf": [{"type": "string"}, *INPUT_SCHEMA["anyOf"][1:], {"type": "null"}]}),
    ] = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: ChoiceCount | None = None
    stop: str | FastList[str] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: int | None = None
    user: str | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    best_of: Annotated[int, Field(ge=0, le=20)] | None = None
    logit_bias: dict[str, Any] | None = None

    @property
    def wants_stream_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def prompts(self) -> list[str] | list[list[int]]:
        """``prompt`` as a list of prompts (strings or token-id lists)."""
        value = self.prompt
        if value is None:
            return [""]
        if isinstance(value, str):
            return [value]
        if isinstance(value[0], int):
            return [value]  # one list of token ids is one prompt
        return value


class TextCompletion(Completion):
    """A ``text_completion`` response, as handed to ``post_response`` hooks."""

    object: str = "text_completion"

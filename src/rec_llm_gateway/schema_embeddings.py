"""OpenAI embeddings wire models: the ``POST /v1/embeddings`` request and what it may hold.

``input`` takes OpenAI's four shapes: a string, a list of strings, a list of token ids, or a list of
token-id lists. It is checked by hand rather than as a pydantic union: a union reports every branch
for every bad item (unreadable, and slow on long lists), while one pass over the list finds the first
bad item and names it. Unknown fields are kept (``task_type`` for Gemini, ``input_type`` for Cohere)
and reach providers that understand them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema

from .errors import InvalidRequestError
from .schema import MAX_MODEL_LENGTH, _Open

__all__ = [
    "INPUT_SCHEMA",
    "MAX_DIMENSIONS",
    "MAX_EMBEDDING_INPUTS",
    "EmbeddingRequest",
    "EmbeddingsResponse",
    "TokenIds",
    "check_input",
]

MAX_EMBEDDING_INPUTS: Final = 2048
"""Inputs one request may carry unless ``limits.max_embedding_inputs`` says otherwise: OpenAI's own
limit per request, so a client written against OpenAI never meets a lower one here."""

MAX_DIMENSIONS: Final = 8192
"""The largest ``dimensions`` the gateway accepts (no embedding model gives more; OpenAI's largest
gives 3,072): a bound on what one request can make ``echo`` compute."""

TokenIds = list[int]

INPUT_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}},
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
            },
        },
    ]
}
_SHAPES = "a string, a list of strings, a list of token ids, or a list of token-id lists"


def _validated_input(value: Any, info: ValidationInfo) -> Any:
    check_input(value, (info.context or {}).get("max_inputs", MAX_EMBEDDING_INPUTS))
    return value


def check_input(value: Any, limit: int, param: str = "input") -> None:
    """Raise a 400 naming ``param`` (and the first bad item) unless ``value`` is one of OpenAI's four
    shapes with at most ``limit`` items. Raised directly rather than as a pydantic error so that the
    client sees a code saying what is wrong (``too_many_inputs``, ``empty_input``)."""

    def invalid(message: str, code: str) -> InvalidRequestError:
        return InvalidRequestError(message, param=param, code=code)

    if isinstance(value, str):
        if not value:
            raise invalid(f"'{param}' must not be an empty string.", "empty_input")
        return
    if not isinstance(value, list):
        raise invalid(f"'{param}' must be {_SHAPES}.", "invalid_type")
    if not value:
        raise invalid(f"'{param}' must not be an empty list.", "empty_input")
    if len(value) > limit:
        raise invalid(
            f"'{param}' has {len(value)} items; at most {limit} are allowed in one request.",
            "too_many_inputs",
        )
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise invalid(f"'{param}[{index}]' must be a string, like the other items.", "invalid_type")
            if not item:
                raise invalid(f"'{param}[{index}]' must not be an empty string.", "empty_input")
    elif _is_token(first):
        where = _bad_token(value, param)
        if where:
            raise invalid(f"'{where}' must be a token id (a non-negative integer).", "invalid_type")
    elif isinstance(first, list):
        for index, item in enumerate(value):
            if not isinstance(item, list):
                raise invalid(f"'{param}[{index}]' must be a list of token ids.", "invalid_type")
            if not item:
                raise invalid(f"'{param}[{index}]' must not be an empty list.", "empty_input")
            where = _bad_token(item, f"{param}[{index}]")
            if where:
                raise invalid(f"'{where}' must be a token id (a non-negative integer).", "invalid_type")
    else:
        raise invalid(f"'{param}' must be {_SHAPES}; '{param}[0]' is none of these.", "invalid_type")


def _bad_token(tokens: list[Any], where: str) -> str | None:
    """The path of the first item of ``tokens`` that is not a token id."""
    for index, token in enumerate(tokens):
        if not _is_token(token):
            return f"{where}[{index}]"
    return None


def _is_token(value: Any) -> bool:
    # bool is an int subclass; JSON's true is not a token id.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


class EmbeddingRequest(_Open):
    """``POST /v1/embeddings`` body. Unknown fields are kept (``request.model_extra``).

    Validate with ``EmbeddingRequest.from_json(body, {"max_inputs": n})``; without a context the
    limit is ``MAX_EMBEDDING_INPUTS``.
    """

    model: Annotated[str, Field(max_length=MAX_MODEL_LENGTH)]
    input: Annotated[
        str | list[str] | list[int] | list[TokenIds],
        PlainValidator(_validated_input),
        WithJsonSchema(INPUT_SCHEMA),
    ]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1, le=MAX_DIMENSIONS)] | None = None
    user: str | None = None

    @property
    def inputs(self) -> list[str] | list[TokenIds]:
        """``input`` as a list of items: strings, or token-id lists."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if isinstance(value[0], int):
            return [value]  # one list of token ids is one input
        return value

    @property
    def is_tokens(self) -> bool:
        """Whether the inputs are token ids rather than text."""
        return not isinstance(self.input, str) and not isinstance(self.input[0], str)

    @property
    def wants_base64(self) -> bool:
        return self.encoding_format == "base64"


class EmbeddingsResponse(_Open):
    """An embeddings ``list`` response, as handed to ``post_response`` hooks."""

    model_config = ConfigDict(extra="allow", strict=False, defer_build=True)

    object: str = "list"
    data: list[dict[str, Any]]
    model: str
    usage: dict[str, Any] | None = None

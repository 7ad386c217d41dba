"""Anthropic Messages wire shapes: the request models and the error envelope.

The request is validated only where the gateway relies on a field (``model``, ``max_tokens``,
``messages`` and their roles, ``stream``); content blocks, tools and everything else stay plain JSON
(``extra="allow"``), because a native pass-through must forward block types and parameters newer
than this code, and the translation checks each block it converts (naming the path of a bad one).

Errors are Anthropic's envelope ``{"type": "error", "error": {"type", "message"}, "request_id"}``
with the gateway's status; the error ``type`` follows the status as Anthropic's own API does.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import GatewayError, InvalidRequestError
from ..schema import MAX_MODEL_LENGTH, _as_invalid_request

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "CountTokensRequest",
    "InputMessage",
    "MessagesRequest",
    "error_body",
    "error_type_for",
]


class _Open(BaseModel):
    """A wire object: unknown fields are kept (and passed on to Anthropic)."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True, allow_inf_nan=False)


Block = dict[str, Any]


class InputMessage(_Open):
    # "system" too: Claude Code sends system turns mid-conversation (a beta of Anthropic's API).
    role: Literal["user", "assistant", "system"]
    content: str | Annotated[list[Block], Field(fail_fast=True)]


class _Base(_Open):
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_LENGTH)]
    messages: Annotated[list[InputMessage], Field(fail_fast=True)]
    system: str | Annotated[list[Block], Field(fail_fast=True)] | None = None
    tools: Annotated[list[Block], Field(fail_fast=True)] | None = None
    tool_choice: Block | None = None
    thinking: Block | None = None

    @classmethod
    def from_json(cls, body: bytes) -> Any:
        """Validate a body; every problem becomes a 400 naming the first bad field."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise _as_invalid_request(exc) from None


class MessagesRequest(_Base):
    """``POST /v1/messages``. Unknown fields are kept (``model_extra``) for the native path."""

    max_tokens: Annotated[int, Field(ge=0)]
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: Annotated[list[str], Field(fail_fast=True)] | None = None
    metadata: Block | None = None

    @classmethod
    def from_json(cls, body: bytes) -> MessagesRequest:
        request: MessagesRequest = super().from_json(body)
        return request


class CountTokensRequest(_Base):
    """``POST /v1/messages/count_tokens``: the same input, nothing about the output."""

    @classmethod
    def from_json(cls, body: bytes) -> CountTokensRequest:
        request: CountTokensRequest = super().from_json(body)
        return request


# -- errors ---------------------------------------------------------------------------------------

ANTHROPIC_ERROR_TYPES: Final = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)

_TYPE_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # no healthy deployment: "try again later", as Anthropic's 529 says
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(error: GatewayError) -> str:
    """Anthropic's error type for ``error``. For a 4xx, the one Anthropic gives the status (the
    gateway's own 404 says ``invalid_request_error`` in OpenAI's terms, Anthropic's ``not_found_error``);
    for a 5xx, the error's own when it is one of Anthropic's (an upstream ``overloaded_error`` stays
    one), else the status's."""
    status = error.status_code
    if status < 500 and status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    if error.error_type in ANTHROPIC_ERROR_TYPES:
        return error.error_type
    return _TYPE_BY_STATUS.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(error: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """``error`` in Anthropic's envelope (the SDK reads ``error.type`` and ``error.message``)."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type_for(error), "message": error.message},
    }
    if request_id:
        body["request_id"] = request_id
    return body


def error_json(error: GatewayError, request_id: str | None = None) -> bytes:
    return pydantic_core.to_json(error_body(error, request_id))


def require_object(value: Any, param: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else a 400 naming ``param``."""
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    return value

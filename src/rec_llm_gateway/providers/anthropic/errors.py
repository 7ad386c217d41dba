"""Anthropic errors -> gateway errors: error responses (``{"type": "error", "error": {"type",
"message"}}``) and ``error`` events inside a stream."""

from __future__ import annotations

from typing import Any, Final

import httpx

from ...errors import BadGatewayError, GatewayError
from ...translate.errors import ErrorBody
from ..upstream_errors import upstream_status_error

__all__ = ["STATUS_BY_ERROR_TYPE", "error_from_anthropic", "stream_error_from_anthropic"]

# For errors inside a stream (no HTTP status of their own): the status Anthropic uses for each type.
STATUS_BY_ERROR_TYPE: Final[dict[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_from_anthropic(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """An Anthropic error response (``{"type": "error", "error": {"type", "message"}}``) as the error
    the client sees: the status kept (5xx -> 502, 529 -> 503), Anthropic's message and error type."""
    parsed = ErrorBody(status, body, provider)
    kind = parsed.field("error", "type")
    error_type = str(kind) if kind else None
    message = parsed.message(parsed.field("error", "message"))
    result = upstream_status_error(
        status, message, provider=provider, error_type=error_type, retry_after=headers.get("retry-after")
    )
    if error_type:
        result.error_type = error_type  # for 5xx too: "overloaded_error" tells more than "upstream_error"
    return result


def stream_error_from_anthropic(error: Any, provider: str = "anthropic") -> GatewayError:
    """An ``error`` event inside a stream, mapped with the status Anthropic gives its type."""
    if not isinstance(error, dict):
        return BadGatewayError("the upstream reported an error mid-stream")
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "the upstream reported an error mid-stream")
    status = STATUS_BY_ERROR_TYPE.get(error_type, 500)
    result = upstream_status_error(status, message, provider=provider, error_type=error_type)
    result.error_type = error_type
    return result

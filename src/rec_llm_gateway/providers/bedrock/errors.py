"""Bedrock errors -> gateway errors: error responses (``{"message": ...}`` plus the
``x-amzn-ErrorType`` header) and ``exception`` / ``error`` frames inside a ConverseStream."""

from __future__ import annotations

from typing import Any, Final

import httpx
import pydantic_core

from ...errors import BadGatewayError, GatewayError, ServiceUnavailableError
from ...translate.errors import ErrorBody
from ..upstream_errors import upstream_status_error

__all__ = ["error_from_bedrock", "stream_exception"]

# In-stream exception -> the HTTP status Bedrock gives the same error outside a stream.
_EXCEPTION_STATUS: Final = {
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 502,
}


def error_from_bedrock(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """``{"message": ...}`` plus ``x-amzn-ErrorType: ValidationException:...`` -> the OpenAI envelope
    with the same status, the message kept and the AWS error type as ``type``."""
    parsed = ErrorBody(status, body, provider)
    error_type = headers.get("x-amzn-errortype", "").split(":", 1)[0] or None
    aws_type = parsed.field("__type")
    if error_type is None and isinstance(aws_type, str):
        error_type = aws_type.rsplit("#", 1)[-1] or None
    message = parsed.message(parsed.field("message") or parsed.field("Message"))
    return upstream_status_error(
        status, message, provider=provider, error_type=error_type, retry_after=headers.get("retry-after")
    )


def stream_exception(headers: dict[str, Any], payload: bytes, provider: str) -> GatewayError:
    """The gateway error for an ``exception`` or ``error`` frame inside a ConverseStream."""
    if headers.get(":message-type") == "exception":
        kind = str(headers.get(":exception-type") or "unknownException")
        try:
            body = pydantic_core.from_json(payload) if payload else {}
        except ValueError:
            body = {}
        message = str((body.get("message") if isinstance(body, dict) else None) or kind)
        status = _EXCEPTION_STATUS.get(kind, 502)
        error_type = kind[:1].upper() + kind[1:]  # the same spelling as x-amzn-ErrorType
        if status == 503:
            return ServiceUnavailableError(
                f"Bedrock: {message}", error_type=error_type, code="service_unavailable"
            )
        return upstream_status_error(status, message, provider=provider, error_type=error_type)
    code = headers.get(":error-code") or "unknown"
    message = headers.get(":error-message") or "the stream failed"
    return BadGatewayError(
        f"upstream '{provider}' stream error {code}: {message}", code="upstream_stream_error"
    )

"""Gemini / Vertex errors -> gateway errors.

Google answers errors as google.rpc.Status: ``{"error": {"code": 404, "message": "...",
"status": "NOT_FOUND", "details": [...]}}``. The client gets OpenAI's envelope with the same HTTP
status (5xx become 502, as for every provider), the message kept, ``status`` as the error ``type``
and an ``ErrorInfo.reason`` (``API_KEY_INVALID``) as ``code``. A 429 keeps ``Retry-After``, or
takes the wait from the ``RetryInfo`` detail Gemini sends instead (``"retryDelay": "37s"``).
"""

from __future__ import annotations

from typing import Any

import httpx

from ...errors import BadGatewayError, GatewayError
from ...translate.errors import ErrorBody
from ..upstream_errors import error_from_openai_body, upstream_status_error

__all__ = ["google_error", "google_stream_error"]


def google_error(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """The gateway error for an upstream error response in google.rpc shape (or anything else)."""
    # ErrorBody unwraps the array streamGenerateContent without alt=sse wraps errors in.
    error = ErrorBody(status, body, provider).field("error")
    if not isinstance(error, dict) or ("status" not in error and "code" not in error):
        return error_from_openai_body(status, headers, body, provider)
    return _rpc_error(status, error, provider, headers.get("retry-after"))


def google_stream_error(error: Any, provider: str) -> GatewayError:
    """An error object inside a stream event."""
    if not isinstance(error, dict):
        return BadGatewayError(f"upstream '{provider}' reported an error mid-stream: {str(error)[:200]}")
    code = error.get("code")
    return _rpc_error(code if isinstance(code, int) and code >= 400 else 502, error, provider, None)


def _rpc_error(status: int, error: dict[str, Any], provider: str, retry_after: str | None) -> GatewayError:
    message = str(error.get("message") or f"upstream '{provider}' returned HTTP {status}")
    rpc_status = error.get("status")
    details = [item for item in error.get("details") or () if isinstance(item, dict)]
    reason = next(
        (
            str(item["reason"])
            for item in details
            if str(item.get("@type", "")).endswith("ErrorInfo") and item.get("reason")
        ),
        None,
    )
    if retry_after is None:  # Gemini puts the wait in a RetryInfo detail ("retryDelay": "37s")
        delay = next((item.get("retryDelay") for item in details if "retryDelay" in item), None)
        if isinstance(delay, str) and delay.endswith("s"):
            retry_after = delay[:-1]
    return upstream_status_error(
        status,
        message,
        provider=provider,
        error_type=rpc_status if isinstance(rpc_status, str) and rpc_status else None,
        code=reason,
        retry_after=retry_after,
    )

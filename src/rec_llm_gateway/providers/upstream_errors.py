"""Upstream error statuses and bodies -> the gateway error the client sees (shared by every provider).

4xx keep their status, message, type and code; 429 keeps ``Retry-After``; 5xx become 502 (529,
"overloaded", becomes 503).
"""

from __future__ import annotations

import json

import httpx

from ..errors import (
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamStatusError,
    parse_retry_after,
)

__all__ = ["error_from_openai_body", "upstream_status_error"]


def error_from_openai_body(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """Map an upstream error in OpenAI's envelope (or anything else) to the error the client sees.

    4xx keep their status, message, type and code; 429 keeps ``Retry-After``; 5xx become 502 (529,
    "overloaded", becomes 503).
    """
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        error_type = error.get("type")
        code = error.get("code")
        param = error.get("param")
    else:
        message = error if isinstance(error, str) else ""
        error_type = code = param = None
    if not message:
        text = body[:300].decode("utf-8", "replace").strip() if data is None else ""
        message = f"upstream '{provider}' returned HTTP {status}" + (f": {text}" if text else "")
    return upstream_status_error(
        status,
        message,
        provider=provider,
        error_type=str(error_type) if error_type else None,
        code=str(code) if code is not None else None,
        param=str(param) if param is not None else None,
        retry_after=headers.get("retry-after"),
    )


def upstream_status_error(
    status: int,
    message: str,
    *,
    provider: str,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: str | None = None,
) -> GatewayError:
    """The gateway error for an upstream HTTP error status (shared by every provider)."""
    if status == 429:
        return RateLimitError(
            message,
            retry_after=parse_retry_after(retry_after),
            error_type=error_type or "rate_limit_error",
            code=code,
        )
    if status == 529:
        # Anthropic's "overloaded": the upstream works but sheds load, so 503 (try later or elsewhere).
        return UpstreamOverloadedError(
            f"upstream '{provider}' is overloaded: {message}",
            error_type=error_type,
            code=code,
            retry_after=parse_retry_after(retry_after),
        )
    if 400 <= status < 500:
        return UpstreamError(
            message,
            status_code=status,
            provider=provider,
            error_type=error_type or "invalid_request_error",
            code=code,
            param=param,
        )
    if not message.startswith(f"upstream '{provider}' "):  # a body without a message already says so
        message = f"upstream '{provider}' failed with HTTP {status}: {message}"
    return UpstreamStatusError(message, upstream_status=status, code=code)

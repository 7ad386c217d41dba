"""Exceptions raised by the gateway, and how they render as OpenAI error envelopes.

Every failure a client can meet is one of these, rendered as
``{"error": {"message", "type", "param", "code"}}`` with the status below. Routing tells failures
apart by class (``isinstance``), never by ``code`` strings; ``upstream_status`` (declared on the
class, or the upstream's own status for the two classes that carry one) is what
``routing.retry_codes`` and the fallback rules match::

    GatewayError                       base; status_code, error_type, code, param, headers, retry_after
    ├── InvalidRequestError            400 invalid_request_error (malformed JSON, wrong types, ...)
    │   └── InvalidModelError          400 code=invalid_model (``invalid::model``, ``openai:``, ...)
    ├── AuthenticationError            401 bad or missing gateway key
    ├── PermissionDeniedError          403 a valid key that may not use the route (admin routes)
    ├── RequestRejected                403 by default: raised by a ``pre_request`` hook
    ├── NotFoundError                  404 unknown route, model or provider
    ├── MethodNotAllowedError          405 with ``Allow``
    ├── RequestTimeoutError            408 body not received within ``limits.body_timeout_seconds``
    ├── PayloadTooLargeError           413 body over ``limits.max_body_bytes``
    ├── RateLimitError                 429 with ``Retry-After``
    ├── ClientDisconnectedError        499 the client went away (reported to on_error, never sent)
    ├── UpstreamError                  the upstream's own 4xx status and message (scrubbed)
    ├── InternalError                  500 a bug in the gateway or a plugin
    ├── BadGatewayError                502 the upstream answered garbage
    │   ├── UpstreamStatusError        502 the upstream answered 5xx        upstream_status: that 5xx
    │   └── UpstreamConnectionError    502 the connection failed mid-answer upstream_status: connection_error
    │       ├── UpstreamUnreachableError   502 could not connect at all
    │       └── UpstreamTruncatedError     502 a stream ended before its final event
    ├── ServiceUnavailableError        503 no healthy provider
    │   └── UpstreamOverloadedError    503 the upstream sheds load (529)   upstream_status: 529
    └── UpstreamTimeoutError           504 upstream too slow                upstream_status: timeout

    ConfigError (ValueError)           a configuration problem; names the path and the fix

``retry_after_header`` and ``parse_retry_after`` are the one place ``Retry-After`` is written and read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pydantic_core

__all__ = [
    "CONNECTION_ERROR",
    "TIMEOUT",
    "AuthenticationError",
    "BadGatewayError",
    "ClientDisconnectedError",
    "ConfigError",
    "GatewayError",
    "InternalError",
    "InvalidModelError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestRejected",
    "RequestTimeoutError",
    "ServiceUnavailableError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamOverloadedError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "UpstreamTruncatedError",
    "UpstreamUnreachableError",
    "parse_retry_after",
    "retry_after_header",
    "scrub_secrets",
]

CONNECTION_ERROR: Final = "connection_error"
"""``upstream_status`` of a failure where no usable answer came back (refused, reset, cut off)."""
TIMEOUT: Final = "timeout"
"""``upstream_status`` of an upstream that was too slow."""


class ConfigError(ValueError):
    """The configuration is invalid. The message names the path and the fix."""

    @classmethod
    def listing(cls, problems: list[str]) -> ConfigError:
        """One error for several problems, one per line: a config is reported whole, not one
        mistake per run."""
        return cls(problems[0] if len(problems) == 1 else "\n  ".join(["invalid configuration:", *problems]))


class GatewayError(Exception):
    """Base of every error that ends a request with an OpenAI-style error response."""

    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None
    upstream_status: int | str | None = None
    """What the upstream did, as ``routing.retry_codes`` names it (``None``: the gateway's own error;
    routing then reads ``status_code``)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})
        self.retry_after = retry_after
        """Seconds the client (and routing) should wait before trying again, when known."""
        if retry_after is not None:
            self.headers.setdefault("retry-after", retry_after_header(retry_after))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return pydantic_core.to_json(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code}, {self.message!r}, code={self.code!r})"


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class InvalidModelError(InvalidRequestError):
    default_code = "invalid_model"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    """A valid gateway key that may not use this route (an admin route, when admin keys exist)."""

    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class RequestRejected(GatewayError):
    """Raise from a ``pre_request`` hook to refuse a request.

    Example::

        @hookimpl
        def pre_request(request, context):
            if "forbidden" in str(request.messages[-1].content):
                raise RequestRejected("topic not allowed", status_code=403, code="policy_violation")

    Args:
        message: shown to the client in ``error.message``.
        status_code: the HTTP status (default 403).
        code: ``error.code`` (default ``"request_rejected"``).
        error_type: ``error.type`` (default ``"permission_error"``, or ``"invalid_request_error"`` for 400).
    """

    status_code = 403
    error_type = "permission_error"
    default_code = "request_rejected"

    def __init__(
        self,
        message: str,
        status_code: int = 403,
        code: str | None = None,
        *,
        error_type: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 400 <= status_code <= 599:
            raise ValueError(f"RequestRejected status_code must be 4xx or 5xx, got {status_code}")
        if error_type is None and status_code == 400:
            error_type = "invalid_request_error"
        super().__init__(
            message, status_code=status_code, error_type=error_type, code=code, param=param, headers=headers
        )


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class RequestTimeoutError(GatewayError):
    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class MethodNotAllowedError(GatewayError):
    """The route exists but not for this method; ``Allow`` names the ones it takes."""

    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"

    def __init__(self, method: str, allowed: str) -> None:
        super().__init__(f"Method {method} not allowed; use {allowed}.", headers={"allow": allowed})


class RateLimitError(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ClientDisconnectedError(GatewayError):
    """The client went away before its response was complete. Never sent; reported to hooks."""

    status_code = 499
    error_type = "client_disconnected"
    default_code = "client_disconnected"


class UpstreamError(GatewayError):
    """The upstream refused the request with a 4xx; its status and (scrubbed) message are kept."""

    error_type = "upstream_error"

    def __init__(self, message: str, *, status_code: int, provider: str = "", **kwargs: Any) -> None:
        super().__init__(message, status_code=status_code, **kwargs)
        self.provider = provider
        self.upstream_status = status_code


class InternalError(GatewayError):
    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"


class BadGatewayError(GatewayError):
    """The upstream answered something unusable (not JSON, an error event, over the size cap)."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "bad_gateway"


class UpstreamStatusError(BadGatewayError):
    """The upstream answered with a 5xx (other than 529): the client gets 502, routing the 5xx."""

    default_code = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


class UpstreamConnectionError(BadGatewayError):
    """No usable answer came back over the connection (reset, cut off mid-body)."""

    default_code = "upstream_connection_error"
    upstream_status = CONNECTION_ERROR


class UpstreamUnreachableError(UpstreamConnectionError):
    """The upstream could not be reached at all (the connection was refused or never made)."""

    default_code = "upstream_unreachable"


class UpstreamTruncatedError(UpstreamConnectionError):
    """A stream ended before the event that says it is complete: a cut-off answer."""

    default_code = "upstream_stream_truncated"


class ServiceUnavailableError(GatewayError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class UpstreamOverloadedError(ServiceUnavailableError):
    """The upstream works but sheds load (Anthropic's 529 ``overloaded``): try later or elsewhere."""

    error_type = "overloaded_error"
    default_code = "upstream_overloaded"
    upstream_status = 529


class UpstreamTimeoutError(GatewayError):
    status_code = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"
    upstream_status = TIMEOUT


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` for a wait of ``seconds``: whole seconds, rounded up (a client that waits
    exactly this long must not be refused again), at least 1."""
    return str(max(1, int(-(-seconds // 1))))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from an upstream's ``Retry-After`` (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


# Shapes of credentials that upstreams sometimes echo back in error text ("Incorrect API key provided:
# sk-abc...xyz"). Known configured keys are scrubbed exactly; these catch keys we were never told about.
_SECRET_PATTERNS = re.compile(
    r"(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{8,}"  # OpenAI / Anthropic style, also their masked forms
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|ya29\.[0-9A-Za-z_\-.]{8,}"  # Google OAuth access tokens (Vertex AI's bearer token)
    r"|(?:AKIA|ASIA)[0-9A-Z]{12,}"  # AWS access key ids
    r"|(?i:bearer)\s+[A-Za-z0-9_\-.=:+/]{8,}"  # bearer tokens
    r"|(?i:(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9_\-.]{8,}"
)


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove every known secret and anything shaped like a credential from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[redacted]")
    return _SECRET_PATTERNS.sub("[redacted]", text)

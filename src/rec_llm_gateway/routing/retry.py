"""What an attempt's error means for routing, and how long to wait before trying a deployment again.

- ``RETRY``: the status is in ``routing.retry_codes`` (default 429, 500, 502, 503, 504, 529, connection
  errors and timeouts): move on to the next attempt.
- ``POLICY``: the provider refused on content policy: only ``content_policy_fallbacks`` may help.
- ``CONTEXT``: the request is too long for the model: only ``context_window_fallbacks`` may help.
- ``FATAL``: anything else (an upstream 400, 401, 404, ...): the client gets it as it is.

Waits use exponential backoff with full jitter (``uniform(0, min(max, initial * 2**n))``, AWS's
recommendation: it spreads retries of many clients best) and are never shorter than what an
upstream asked for in ``Retry-After``.
"""

from __future__ import annotations

import random
from typing import Final

from ..errors import GatewayError, UpstreamConnectionError, UpstreamUnreachableError
from .settings import RoutingConfig

__all__ = [
    "CONTEXT",
    "FATAL",
    "POLICY",
    "RETRY",
    "RetryPolicy",
    "is_connection_error",
    "is_server_failure",
    "is_unreachable",
    "retry_after",
    "upstream_status",
]

RETRY: Final = "retry"
FATAL: Final = "fatal"
POLICY: Final = "policy"
CONTEXT: Final = "context"

_CONTEXT_CODES: Final = frozenset({"context_length_exceeded", "string_above_max_length"})
# How providers word "too long" when they give no code (OpenAI-compatible servers, Anthropic, Gemini).
_CONTEXT_PHRASES: Final = (
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "input token count",
)


def is_connection_error(error: GatewayError) -> bool:
    """No usable answer came back over the connection (refused, reset, cut off): worth a retry."""
    return isinstance(error, UpstreamConnectionError)


def is_unreachable(error: GatewayError) -> bool:
    """The upstream could not be reached at all (connect failed), as opposed to a broken answer."""
    return isinstance(error, UpstreamUnreachableError)


def upstream_status(error: GatewayError) -> int | str:
    """What ``routing.retry_codes`` matches: the upstream's own status (a 5xx became a 502 for the
    client), ``connection_error`` or ``timeout`` (declared by the error's class), else the status
    the client gets."""
    status = error.upstream_status
    return error.status_code if status is None else status


class RetryPolicy:
    """Built once from ``routing:``; consulted after every failed attempt."""

    def __init__(self, config: RoutingConfig) -> None:
        self.retry_codes = frozenset(config.retry_codes)
        self.policy_codes = frozenset(config.content_policy_codes)
        self.backoff_initial = config.backoff.initial
        self.backoff_max = config.backoff.max
        self.max_wait = config.max_retry_wait

    def classify(self, error: GatewayError) -> str:
        status = upstream_status(error)
        if status in self.retry_codes:
            return RETRY
        if isinstance(status, int) and 400 <= status < 500 and status != 429:
            if (error.code and error.code in self.policy_codes) or error.error_type in self.policy_codes:
                return POLICY
            if error.code in _CONTEXT_CODES or (
                status in (400, 413) and any(phrase in error.message.lower() for phrase in _CONTEXT_PHRASES)
            ):
                return CONTEXT
        return FATAL

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before the ``retry``-th revisit (0-based) of a deployment."""
        ceiling = min(self.backoff_max, self.backoff_initial * (2.0**retry))
        return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


def retry_after(error: GatewayError) -> float | None:
    """Seconds an upstream asked us to wait (``Retry-After`` of a 429 or a 529)."""
    return error.retry_after


def is_server_failure(error: GatewayError) -> bool:
    """Whether the error says the deployment is unwell (it counts against its circuit breaker):
    5xx answers, garbage, connection errors and timeouts, but not 429s or the client's own 4xx."""
    return error.status_code >= 500

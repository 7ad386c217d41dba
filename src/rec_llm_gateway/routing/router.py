"""The router: which deployments a request may go to, in order, and what a failure means.

A request resolves to one route; a failure that says "try elsewhere" (429, 502, 503, 504,
connection errors) moves on to the next candidate, if there is one.
"""

from __future__ import annotations

from ..errors import GatewayError
from ..schema import ChatCompletionRequest
from .resolve import ModelResolver, Route

__all__ = ["FAILOVER_STATUSES", "Router"]

FAILOVER_STATUSES = frozenset({429, 500, 502, 503, 504})


class Router:
    """Plans the deployments for a request and learns from their outcomes."""

    def __init__(self, resolver: ModelResolver) -> None:
        self.resolver = resolver

    def candidates(self, request: ChatCompletionRequest) -> list[Route]:
        """The routes to try, best first."""
        return [self.resolver.resolve(request.model)]

    def should_failover(self, error: GatewayError) -> bool:
        return error.status_code in FAILOVER_STATUSES

    def record_success(self, route: Route) -> None:
        """An attempt on ``route`` succeeded."""

    def record_failure(self, route: Route, error: GatewayError) -> None:
        """An attempt on ``route`` failed with ``error``."""

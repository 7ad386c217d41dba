"""What a gateway offers the code that serves its routes (the pipeline, the admin routes).

A ``Protocol`` that ``Gateway`` satisfies: route handlers depend on this, not on ``gateway.py``,
so the gateway can import them without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from .asgi.auth import GatewayAuth
    from .config import GatewayConfig
    from .hooks import HookRunner
    from .providers.base import Provider
    from .responses.store import Conversations
    from .routing.health import HealthMonitor
    from .routing.key_limits import KeyGuard
    from .routing.resolve import ModelResolver
    from .routing.router import Router
    from .runtime import Runtime
    from .state.ledger import Ledger
    from .telemetry import Telemetry
    from .usage import TokenUsage, UsageTracker

__all__ = ["GatewayParts"]


class GatewayParts(Protocol):
    """The parts of a ``Gateway`` its route handlers use."""

    config: GatewayConfig
    auth: GatewayAuth
    keys: KeyGuard
    ledger: Ledger
    hooks: HookRunner
    telemetry: Telemetry
    usage: UsageTracker
    router: Router
    resolver: ModelResolver
    health: HealthMonitor
    providers: dict[str, Provider]
    disabled_providers: dict[str, str]
    conversations: Conversations

    def runtime(self) -> Runtime:
        """What is open on the running event loop (opened on first use)."""

    def http_client(self) -> httpx.AsyncClient:
        """The shared upstream client of the running event loop."""

    def price(self, provider: Provider, model: str, usage: TokenUsage | None) -> float | None:
        """The cost in USD of ``usage`` on ``provider``'s ``model``."""

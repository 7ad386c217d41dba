"""What routing shares through a shared store: circuit breakers, 429 cooldowns and provider health.

Published when they change (with the next flush) and read by every process every
``state.sync_seconds``, so a breaker opened by one worker is honoured by the others within about a
second, while the routing hot path keeps reading local attributes only. Times travel as Unix time
and are mapped onto each process's monotonic routing clock. Latency samples stay per process: they
describe this process's connections, and the ``latency`` strategy needs them on the hot path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..routing.breaker import OPEN
from ..routing.deployment import UNHEALTHY, Deployment, HealthStatus

if TYPE_CHECKING:
    from ..routing.health import HealthMonitor
    from ..routing.router import Router
    from .ledger import Ledger

__all__ = ["RoutingSync"]


class RoutingSync:
    """Publishes this process's routing changes and applies the other processes' ones."""

    def __init__(self, ledger: Ledger, router: Router) -> None:
        self.ledger = ledger
        self.router = router
        self._seen: dict[str, float] = {}
        self._applying = False

    @classmethod
    def connect(cls, ledger: Ledger, router: Router, health: HealthMonitor) -> RoutingSync | None:
        """Share ``router``'s breakers, cooldowns and ``health``'s results (shared stores only)."""
        if not ledger.shared:
            return None
        sync = cls(ledger, router)
        router.on_cooldown = sync.cooled
        health.on_record = sync.health_recorded
        ledger.on_signals = sync.apply
        return sync

    def _publish(self, name: str, value: dict[str, Any]) -> None:
        if self._applying:  # an echo of what another process published
            return
        value["at"] = time.time()
        self._seen[name] = value["at"]
        self.ledger.signal(name, value)

    # -- publishing (called by routing) ---------------------------------------------------------

    def breaker_changed(self, deployment: str, state: str) -> None:
        until = time.time() + self.router.settings.breaker.timeout
        self._publish(f"breaker:{deployment}", {"state": state, "until": until})

    def cooled(self, deployment: Deployment, seconds: float) -> None:
        self._publish(f"cooldown:{deployment.name}", {"until": time.time() + seconds})

    def health_recorded(self, provider: str, status: HealthStatus) -> None:
        self._publish(f"health:{provider}", status.to_dict(provider))

    # -- applying (the sync loop) ---------------------------------------------------------------

    def apply(self, signals: dict[str, dict[str, Any]]) -> None:
        wall, now = time.time(), self.router.clock()
        deployments: dict[str, list[Deployment]] | None = None
        self._applying = True
        try:
            for name, value in signals.items():
                at = value.get("at", 0.0)
                if at <= self._seen.get(name, 0.0):
                    continue
                kind, _, target = name.partition(":")
                if kind == "health":
                    self._seen[name] = at
                    self._apply_health(target, value, now)
                    continue
                if deployments is None:
                    deployments = self._deployments()
                if target not in deployments:
                    continue  # not routed to here yet (a direct route): applied once it exists
                self._seen[name] = at
                remaining = float(value.get("until", 0.0)) - wall
                for deployment in deployments.get(target, ()):
                    if kind == "breaker" and value.get("state") == OPEN and remaining > 0:
                        deployment.breaker.adopt_open(now, remaining)
                    elif kind == "cooldown" and remaining > 0:
                        deployment.cooldown_until = max(deployment.cooldown_until, now + remaining)
        finally:
            self._applying = False

    def _deployments(self) -> dict[str, list[Deployment]]:
        found: dict[str, list[Deployment]] = {}
        for provider in self.router.providers.values():
            for deployment in provider.deployments:
                found.setdefault(deployment.name, []).append(deployment)
        return found

    def _apply_health(self, provider: str, value: dict[str, Any], now: float) -> None:
        state = self.router.providers.get(provider)
        if state is None:
            return
        state.health = HealthStatus(
            str(value.get("status")),
            value.get("latency_ms"),
            value.get("last_check"),
            value.get("error"),
            value.get("source"),
        )
        unhealthy = state.health.status == UNHEALTHY
        if unhealthy != state.unhealthy:
            state.unhealthy = unhealthy
            for deployment in list(state.deployments):
                if unhealthy:
                    deployment.breaker.force_open(now)
                else:
                    deployment.breaker.allow_probe(now)

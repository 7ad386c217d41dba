"""Deployments (a provider and one of its models, with the state routing keeps about it) and the
per-provider state they share.

Each entry under ``models:`` is its own deployment (own breaker, limits and latencies); a request
that names ``provider:model`` directly uses one deployment per provider and model, created on first
use. State is shared across event loops: see ``breaker.py`` and ``limits.py`` for how.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..state.base import BucketTake
from .breaker import ADMIT, CLOSED, PROBE, REFUSE, CircuitBreaker
from .limits import Limiter, Ticket
from .window import LatencyWindow

if TYPE_CHECKING:
    from .resolve import Route

__all__ = ["Deployment", "HealthStatus", "Lease", "ProviderState"]

HEALTHY: Final = "healthy"
UNHEALTHY: Final = "unhealthy"
UNKNOWN: Final = "unknown"


@dataclass(slots=True)
class HealthStatus:
    """The last health check of a provider."""

    status: str = UNKNOWN
    latency_ms: float | None = None
    last_check: float | None = None
    """Unix time of the check."""
    error: str | None = None
    source: str | None = None
    """``background`` (a periodic check) or ``on_demand`` (``GET /providers/{name}/health``)."""

    def to_dict(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "last_check": self.last_check,
            "error": self.error,
            "source": self.source,
        }


class ProviderState:
    """What every deployment of one provider shares: its limits and its health."""

    __slots__ = (
        "bucket",
        "deployments",
        "failed_checks",
        "health",
        "limiter",
        "name",
        "passed_checks",
        "unhealthy",
    )

    def __init__(self, name: str, limiter: Limiter | None, bucket: BucketTake | None = None) -> None:
        self.name = name
        self.limiter = limiter
        self.bucket = bucket
        """The provider's ``rate_limits`` in a shared state store (then ``limiter`` is ``None``)."""
        self.health = HealthStatus()
        self.deployments: list[Deployment] = []
        self.failed_checks = 0
        self.passed_checks = 0
        self.unhealthy = False
        """``health.status == "unhealthy"``, kept as a flag for the routing hot path."""


class Deployment:
    """A provider and model that can serve requests, with its routing state."""

    __slots__ = (
        "_lock",
        "breaker",
        "buckets",
        "context_window",
        "cooldown_until",
        "counts_tokens",
        "in_flight",
        "index",
        "latency",
        "limiter",
        "name",
        "price",
        "priority",
        "provider",
        "route",
        "timeout",
        "track_in_flight",
        "weight",
    )

    def __init__(
        self,
        route: Route,
        provider: ProviderState,
        breaker: CircuitBreaker,
        latency: LatencyWindow,
        *,
        limiter: Limiter | None = None,
        weight: float = 1.0,
        priority: int = 0,
        index: int = 0,
        context_window: int | None = None,
    ) -> None:
        self.route = route
        self.name = f"{route.provider.name}:{route.model}"
        self.timeout = route.provider.total_timeout
        self.provider = provider
        self.breaker = breaker
        self.latency = latency
        self.limiter = limiter
        self.weight = weight
        self.priority = priority
        self.index = index
        self.context_window = context_window
        self.cooldown_until = 0.0
        """Set from an upstream 429's ``Retry-After``: skipped until then."""
        self.in_flight = 0
        self.track_in_flight = False
        """Counted only when a ``least_busy`` group uses this deployment (it costs a lock)."""
        self.counts_tokens = False
        """Whether admission needs the request's token estimate (a ``tokens_per_minute`` limit)."""
        self.buckets: tuple[BucketTake, ...] = ()
        """Its own and its provider's limits when they live in a shared state store (taken by the
        pipeline in the request's one store round trip; ``limiter`` is then ``None``)."""
        self.price: tuple[float, float] | None = None
        """USD per (input, output) token, looked up on first use by the ``cost`` strategy."""
        self._lock = threading.Lock()
        provider.deployments.append(self)

    def __repr__(self) -> str:
        return f"Deployment({self.name!r})"

    def available(self, now: float) -> bool:
        """Whether this deployment could take a call now (breaker, health, cooldown); no side effects."""
        if self.cooldown_until > now or self.provider.unhealthy:
            return False
        breaker = self.breaker
        return breaker.state is CLOSED or breaker.available(now)

    def unavailable_reason(self, now: float) -> tuple[str, float]:
        """Why ``available`` says no, and the seconds until that may change (0: unknown)."""
        if self.provider.unhealthy:
            return "unhealthy", 0.0
        if self.cooldown_until > now:
            return "cooling_down", self.cooldown_until - now
        return "circuit_open", self.breaker.retry_in(now)

    def admit(self, now: float, tokens: int) -> Lease | tuple[str, float]:
        """Take capacity for one call: a ``Lease``, or (reason, seconds until it may fit)."""
        breaker = self.breaker
        admission = ADMIT if breaker.state is CLOSED else breaker.acquire(now)
        if admission == REFUSE:
            return "circuit_open", breaker.retry_in(now)
        ticket = None
        if self.limiter is not None:
            ticket = self.limiter.try_acquire(now, tokens)
            if ticket is None:
                self.breaker.neutral(admission)
                return self._refused(self.limiter, now, tokens)
        provider_ticket = None
        limiter = self.provider.limiter
        if limiter is not None:
            provider_ticket = limiter.try_acquire(now, tokens)
            if provider_ticket is None:
                if ticket is not None:
                    ticket.limiter.cancel(ticket)
                self.breaker.neutral(admission)
                return self._refused(limiter, now, tokens)
        if self.track_in_flight:
            with self._lock:
                self.in_flight += 1
        return Lease(self, admission, ticket, provider_ticket, now)

    @staticmethod
    def _refused(limiter: Limiter, now: float, tokens: int) -> tuple[str, float]:
        limit, wait = limiter.refusal(now, tokens)
        return f"rate_limited ({limiter.name} {limit})", wait

    def describe(self, now: float) -> dict[str, Any]:
        data: dict[str, Any] = {
            "deployment": self.name,
            "breaker": self.breaker.snapshot(now),
            "latency": self.latency.summary(now),
        }
        if self.track_in_flight:
            data["in_flight"] = self.in_flight
        if self.cooldown_until > now:
            data["cooling_down_s"] = round(self.cooldown_until - now, 3)
        if self.limiter is not None:
            data["limits"] = self.limiter.headroom(now)
        return data


class Lease:
    """One admitted call on a deployment. ``release`` it exactly once when the call ends."""

    __slots__ = (
        "admission",
        "deployment",
        "on_release",
        "provider_ticket",
        "released",
        "started",
        "ticket",
        "timeout",
    )

    def __init__(
        self,
        deployment: Deployment,
        admission: int,
        ticket: Ticket | None,
        provider_ticket: Ticket | None,
        started: float,
    ) -> None:
        self.deployment = deployment
        self.admission = admission
        self.ticket = ticket
        self.provider_ticket = provider_ticket
        self.started = started
        self.released = False
        self.on_release: Callable[[int | None], None] | None = None
        """Settles what the state store holds for this call (its deployment's shared buckets)."""
        self.timeout: float = deployment.timeout
        """Seconds this attempt may take (the provider's ``timeout.total``, or less near a deadline)."""

    @property
    def route(self) -> Route:
        return self.deployment.route

    @property
    def probe(self) -> bool:
        return self.admission == PROBE

    def succeeded(self, now: float) -> None:
        """The call answered (a complete response, or a stream's first chunk) at ``now``."""
        deployment = self.deployment
        breaker = deployment.breaker
        if self.admission != ADMIT or breaker.failures or breaker.failure_rate is not None:
            breaker.success(now, self.admission)  # (a healthy closed breaker has nothing to record)
        deployment.latency.add(now, now - self.started)

    def broke_off(self, now: float) -> None:
        """A stream that had started failed (too late to fail over; its breaker still counts it)."""
        self.deployment.breaker.failure(now)

    def release(self, tokens: int | None = None, *, cancelled: bool = False) -> None:
        """Free the call's slots; ``tokens`` (the real count, when known) settles reservations.
        ``cancelled``: the call never started (the state store refused it): give everything back."""
        if self.released:
            return
        self.released = True
        for ticket in (self.ticket, self.provider_ticket):
            if ticket is not None:
                if cancelled:
                    ticket.limiter.cancel(ticket)
                else:
                    ticket.limiter.release(ticket, tokens)
        self.ticket = self.provider_ticket = None
        if self.on_release is not None:
            self.on_release(tokens)
        deployment = self.deployment
        if deployment.track_in_flight:
            with deployment._lock:
                deployment.in_flight -= 1

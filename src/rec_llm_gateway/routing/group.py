"""Groups and plans: what a model name routes to.

A ``Group`` is the deployments serving one model name, in priority tiers, with the strategy that
orders them and the attempts it may make. A ``Plan`` is a group plus the model names to fall back to.
Both are built once (``router.py``) and shared by every request; ``walk.py`` has the per-request part.
"""

from __future__ import annotations

from typing import Final, Protocol

from .breaker import CLOSED
from .deployment import Deployment
from .retry import CONTEXT
from .strategies import DecisionContext, Strategy

__all__ = ["ERRORS", "Group", "OrderingContext", "Plan"]

ERRORS: Final = "errors"
"""The kind of ``fallbacks`` (the others are ``retry.CONTEXT`` and ``retry.POLICY``)."""


class OrderingContext(DecisionContext, Protocol):
    """What ordering a group asks of the request's walk (``walk.Walk`` is one)."""

    def skip(self, deployment: Deployment, reason: str, wait: float) -> None:
        """Record that ``deployment`` was passed over, and why."""


class Group:
    """Deployments serving one model name, in priority tiers, with the strategy that orders them."""

    __slots__ = (
        "_single_order",
        "budget",
        "deployments",
        "max_retries",
        "name",
        "single",
        "strategy",
        "tiers",
    )

    def __init__(
        self, name: str, deployments: list[Deployment], strategy: Strategy, max_retries: int | None
    ) -> None:
        self.name = name
        self.deployments = tuple(deployments)
        self.strategy = strategy
        self.max_retries = max_retries
        # Attempts this group may make: each deployment once, or 1 + max_retries when set.
        self.budget = len(deployments) if max_retries is None else max_retries + 1
        levels = sorted({deployment.priority for deployment in deployments})
        self.tiers = tuple(
            [deployment for deployment in deployments if deployment.priority == level] for level in levels
        )
        self.single = deployments[0] if len(deployments) == 1 else None
        self._single_order = [self.single] if self.single is not None else []

    def order(self, walk: OrderingContext) -> list[Deployment]:
        """The available deployments, best first; unavailable ones are recorded as skipped.
        The list returned is the walk's to read, never to change (it may be shared)."""
        now = walk.now
        single = self.single
        if single is not None and single.available(now):
            return self._single_order
        ordered: list[Deployment] = []
        for tier in self.tiers:
            available = []
            for deployment in tier:
                # Deployment.available, inlined: this loop is most of a decision for a large group.
                breaker = deployment.breaker
                if (
                    deployment.cooldown_until <= now
                    and not deployment.provider.unhealthy
                    and (breaker.state is CLOSED or breaker.available(now))
                ):
                    available.append(deployment)
                else:
                    walk.skip(deployment, *deployment.unavailable_reason(now))
            if len(available) > 1:
                available = self.strategy.order(available, walk)
            ordered += available
        return ordered


class Plan:
    """What a model name routes to: a group, and the names to fall back to."""

    __slots__ = ("check_context", "fallbacks", "fast", "group", "name")

    def __init__(self, name: str, group: Group, fallbacks: dict[str, tuple[str, ...]]) -> None:
        self.name = name
        self.group = group
        self.fallbacks = fallbacks
        """``errors`` / ``context`` / ``policy`` -> model names."""
        self.check_context = bool(fallbacks.get(CONTEXT))
        """Only with context-window fallbacks is the request's size estimated against windows."""
        single = group.single
        simple = (
            single is not None
            and not fallbacks
            and group.budget == 1
            and single.limiter is None
            and single.provider.limiter is None
            and not single.track_in_flight
        )
        self.fast = single if simple else None
        """The deployment of a plan with nothing to decide (one deployment, one attempt, no limits, no
        fallbacks): ``Router.fast_lease`` admits it without a ``Walk``."""

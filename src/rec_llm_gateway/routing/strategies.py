"""Routing strategies: in which order a group's available deployments are tried for one request.

A strategy orders the deployments of one priority tier that are available right now (breaker,
health and cooldown already checked); the first is tried first, the rest are the failover order.
Each group has its own strategy instance (round-robin counters and weights are per group).

- ``priority``: the configured order.
- ``round_robin``: the configured order, rotated by one per request.
- ``weighted``: smooth weighted round robin (nginx's): over any run of requests each deployment's
  share follows its ``weight``, interleaved rather than in bursts.
- ``cost``: cheapest first for this request's estimated input and output tokens (price table).
- ``latency``: lowest recent latency first (``routing.latency.percentile`` over a sliding window);
  a deployment without recent samples goes first so that it gets measured.
- ``least_busy``: fewest requests in flight first; ties rotate.
"""

from __future__ import annotations

import itertools
import math
import threading
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from .tokens import DEFAULT_COMPLETION_TOKENS

if TYPE_CHECKING:
    from .deployment import Deployment

__all__ = ["DecisionContext", "Strategy", "make_strategy"]


class DecisionContext(Protocol):
    """What a strategy may ask about the request being routed."""

    now: float

    def prompt_tokens(self) -> int:
        """The request's estimated input tokens (computed once, on first use)."""

    def completion_tokens(self) -> int:
        """The output tokens the request allows (``max_tokens``), or 0."""

    def price(self, deployment: Deployment) -> tuple[float, float] | None:
        """USD per input and output token on ``deployment``; ``None`` when unknown."""


class Strategy(Protocol):
    name: str

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        """``candidates`` (configured order, at least two) best first. May return the same list."""


class Priority:
    name = "priority"

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        return candidates


class RoundRobin:
    name = "round_robin"

    def __init__(self) -> None:
        self._turn = itertools.count()  # next() on a count is atomic in CPython: no lock needed

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        start = next(self._turn) % len(candidates)
        return candidates[start:] + candidates[:start]


class Weighted:
    """Smooth weighted round robin: every pick adds each weight to its deployment's running value,
    takes the highest, and subtracts the total from the winner."""

    name = "weighted"

    def __init__(self, size: int) -> None:
        self._current = [0.0] * size
        self._lock = threading.Lock()

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        current = self._current
        with self._lock:  # the running values are read-modify-write across event loops
            total = 0.0
            best = candidates[0]
            best_value = -math.inf
            for deployment in candidates:
                value = current[deployment.index] + deployment.weight
                current[deployment.index] = value
                total += deployment.weight
                if value > best_value:
                    best, best_value = deployment, value
            current[best.index] -= total
        if best is candidates[0]:
            return candidates
        return [best, *(deployment for deployment in candidates if deployment is not best)]


class Cost:
    name = "cost"

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        prompt = context.prompt_tokens()
        completion = context.completion_tokens() or DEFAULT_COMPLETION_TOKENS

        def cost(deployment: Deployment) -> float:
            price = deployment.price  # cached per deployment after the first lookup
            if price is None:
                price = context.price(deployment)
                if price is None:
                    return math.inf
            return price[0] * prompt + price[1] * completion

        return sorted(candidates, key=cost)


class Latency:
    name = "latency"

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        now = context.now
        return sorted(candidates, key=lambda deployment: deployment.latency.score(now))


class LeastBusy:
    name = "least_busy"

    def __init__(self) -> None:
        self._turn = itertools.count()

    def order(self, candidates: list[Deployment], context: DecisionContext) -> list[Deployment]:
        start = next(self._turn) % len(candidates)
        return sorted(candidates[start:] + candidates[:start], key=_IN_FLIGHT)


_IN_FLIGHT = attrgetter("in_flight")


def make_strategy(name: str, size: int) -> Strategy:
    """A fresh strategy for a group of ``size`` deployments."""
    if name == "priority":
        return Priority()
    if name == "round_robin":
        return RoundRobin()
    if name == "weighted":
        return Weighted(size)
    if name == "cost":
        return Cost()
    if name == "latency":
        return Latency()
    if name == "least_busy":
        return LeastBusy()
    raise ValueError(f"unknown routing strategy {name!r}")

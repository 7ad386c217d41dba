"""One request's walk through its plan (``group.py``): which deployment to try next, and when.

1. The group's available deployments are ordered by priority tier, then by the strategy. Each is
   admitted in turn (breaker, health, cooldown, context window, rate limits) and tried once; a
   deployment that cannot take the request is skipped and the reason kept.
2. A retryable failure moves on to the next deployment at once. When every deployment has had its
   turn and ``max_retries`` allows more attempts, deployments are revisited in the same order after
   a backoff (full jitter, never less than an upstream's ``Retry-After``).
3. When the group is done: ``context_window_fallbacks`` if the request did not fit, otherwise
   ``fallbacks``; a content-policy refusal goes to ``content_policy_fallbacks`` at once. Each
   fallback model is walked the same way (its own fallbacks are not followed).
4. ``routing.timeout`` bounds the whole walk; each attempt gets what is left of it.

Nothing here awaits: the pipeline asks ``next()`` for a lease (or a number of seconds to sleep
first), runs the attempt, and reports ``failed`` / ``abandoned`` (a success is the lease's own
``succeeded``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from ..errors import (
    GatewayError,
    InvalidRequestError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamTimeoutError,
)
from .deployment import Deployment, Lease
from .group import ERRORS, Group, Plan
from .retry import CONTEXT, POLICY, RETRY, is_connection_error, is_server_failure, is_unreachable, retry_after
from .tokens import CHAT_ESTIMATES, TokenEstimates

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from .retry import RetryPolicy

__all__ = ["Walk", "WalkRouter"]

_RATE_REASONS: Final = ("rate_limited", "cooling_down")
_BUDGET_SPENT: Final = "max_retries"
"""The skip reason of a deployment left untried because the group's attempts were used up."""
_NO_SKIPS: Final[list[tuple[str, str, float]]] = []  # shared and never appended to (see Walk.skip)


class WalkRouter(Protocol):
    """What a walk asks of the router that started it (``router.Router`` is one)."""

    timeout: float | None
    policy: RetryPolicy
    random: random.Random
    clock: Callable[[], float]
    on_cooldown: Callable[[Deployment, float], None] | None

    def price_of(self, deployment: Deployment) -> tuple[float, float] | None:
        """USD per input and output token on ``deployment``; ``None`` when unknown."""

    def group_for(self, name: str) -> Group:
        """The group a (fallback) model name routes to."""


class Walk:
    """One request's way through a plan. Not shared: one per request."""

    __slots__ = (
        "_answered",
        "_completion",
        "_context_hit",
        "_estimates",
        "_fallbacks",
        "_group",
        "_in_group",
        "_kind",
        "_order",
        "_pending",
        "_position",
        "_prompt",
        "_revisits",
        "deadline",
        "last_error",
        "now",
        "plan",
        "request",
        "router",
        "skipped",
    )

    def __init__(
        self,
        router: WalkRouter,
        plan: Plan,
        request: Any,
        tried: Lease | None = None,
        estimates: TokenEstimates = CHAT_ESTIMATES,
    ) -> None:
        self.router = router
        self.plan = plan
        self.request = request
        self._estimates = estimates
        self.now = 0.0  # set by next()
        timeout = router.timeout
        self.deadline = None if timeout is None else router.clock() + timeout
        self.skipped: list[tuple[str, str, float]] = _NO_SKIPS  # a list of its own on the first skip
        self.last_error: GatewayError | None = None
        self._answered: GatewayError | None = None  # the last error from an upstream that answered
        self._group: Group | None = plan.group
        self._fallbacks: list[Group] | None = None
        self._kind: str | None = None
        self._order: list[Deployment] | None = None
        self._position = self._in_group = self._revisits = 0
        self._pending: Deployment | None = None
        self._prompt = self._completion = -1
        self._context_hit = False
        if tried is not None:  # the fast path already made the first attempt (Router.fast_lease)
            self._order = [tried.deployment]
            self._position = self._in_group = 1

    # -- what strategies may ask (DecisionContext) ----------------------------------------------

    def prompt_tokens(self) -> int:
        if self._prompt < 0:
            self._prompt = self._estimates.prompt_tokens(self.request)
        return self._prompt

    def completion_tokens(self) -> int:
        if self._completion < 0:
            self._completion = self._estimates.completion_tokens(self.request)
        return self._completion

    def price(self, deployment: Deployment) -> tuple[float, float] | None:
        return self.router.price_of(deployment)

    # -- the walk -------------------------------------------------------------------------------

    def next(self) -> Lease | float:
        """The next attempt's lease, or seconds to sleep before asking again. Raises the error the
        client gets when nothing is left to try."""
        now = self.now = self.router.clock()
        if self.deadline is not None and now >= self.deadline:
            raise self._deadline_error()
        pending = self._pending
        if pending is not None:
            self._pending = None
            lease = self._admit(pending, now)
            if lease is not None:
                return lease
        while (group := self._group) is not None:
            order = self._order
            fresh = order is None  # ordering checks availability: no need to check it twice
            if order is None:
                order = self._order = group.order(self)
                self._position = self._in_group = self._revisits = 0
            while self._in_group < group.budget and self._position < len(order):
                deployment = order[self._position]
                self._position += 1
                lease = self._admit(deployment, now, checked=fresh)
                if lease is not None:
                    self._in_group += 1
                    return lease
            if group.max_retries is not None and order:
                while self._in_group < group.budget:
                    step = self._revisit(order, now)
                    if step is not None:
                        return step
            # max_retries counts every attempt in the group after the first, failovers to other
            # deployments included: deployments it leaves untried are named (errors, x_rec_llm).
            for untried in order[self._position :]:
                self.skip(untried, _BUDGET_SPENT, 0.0)
            self._leave_group()
        raise self._exhausted()

    def _revisit(self, order: list[Deployment], now: float) -> Lease | float | None:
        router = self.router
        deployment = order[self._revisits % len(order)]
        wait = max(router.policy.backoff(self._revisits, router.random), deployment.cooldown_until - now)
        self._revisits += 1
        self._in_group += 1  # a revisit uses up a retry even when it cannot happen
        if wait > router.policy.max_wait or (self.deadline is not None and now + wait >= self.deadline):
            self.skip(deployment, "retry_wait_too_long", wait)
            return None
        if wait > 0:
            self._pending = deployment
            return wait
        return self._admit(deployment, now)

    def _admit(self, deployment: Deployment, now: float, checked: bool = False) -> Lease | None:
        if not checked and not deployment.available(now):
            self.skip(deployment, *deployment.unavailable_reason(now))
            return None
        window = deployment.context_window
        if (
            self.plan.check_context
            and window is not None
            and self.prompt_tokens() + self.completion_tokens() > window
        ):
            self._context_hit = True
            self.skip(deployment, "context_window", 0.0)
            return None
        # A tokens_per_minute limit reserves the prompt estimate plus the completion the client allows;
        # the reservation is settled with the real count when the call ends.
        tokens = self.prompt_tokens() + self.completion_tokens() if deployment.counts_tokens else 0
        admitted = deployment.admit(now, tokens)
        if isinstance(admitted, tuple):
            self.skip(deployment, *admitted)
            return None
        if self.deadline is not None:
            admitted.timeout = min(admitted.timeout, self.deadline - now)
        return admitted

    def skip(self, deployment: Deployment, reason: str, wait: float) -> None:
        if self.skipped is _NO_SKIPS:
            self.skipped = []
        self.skipped.append((deployment.name, reason, wait))

    def _leave_group(self) -> None:
        self._order = None
        if self._fallbacks is None:
            kind = CONTEXT if self._context_hit and self.plan.check_context else ERRORS
            self._choose_fallbacks(kind)
        self._group = self._fallbacks.pop(0) if self._fallbacks else None

    def _choose_fallbacks(self, kind: str) -> None:
        self._kind = kind
        self._fallbacks = [self.router.group_for(name) for name in self.plan.fallbacks.get(kind, ())]

    # -- outcomes -------------------------------------------------------------------------------

    def failed(self, lease: Lease, error: GatewayError) -> None:
        """The attempt failed with ``error``. Returns when the walk goes on; raises the error the
        client gets when it must not (an upstream 4xx)."""
        now = self.router.clock()
        deployment = lease.deployment
        if is_server_failure(error):
            deployment.breaker.failure(now, lease.admission)
        else:
            deployment.breaker.neutral(lease.admission)
        wait = retry_after(error)
        if wait:
            deployment.cooldown_until = max(deployment.cooldown_until, now + wait)
            if self.router.on_cooldown is not None:  # shared with other processes (state store)
                self.router.on_cooldown(deployment, wait)
        self.last_error = error
        if not is_connection_error(error):
            self._answered = error
        kind = self.router.policy.classify(error)
        if kind == RETRY:
            return
        if kind in (CONTEXT, POLICY):
            self._context_hit = self._context_hit or kind == CONTEXT
            if self._kind is None and self.plan.fallbacks.get(kind):
                self._choose_fallbacks(kind)
                self._order = None
                self._group = self._fallbacks.pop(0) if self._fallbacks else None
                return
            if self._kind == kind and self._fallbacks:
                self._order = None
                self._group = self._fallbacks.pop(0)
                return
        raise error

    def abandoned(self, lease: Lease) -> None:
        """The attempt ended without an outcome (the client went away, the task was cancelled)."""
        lease.deployment.breaker.neutral(lease.admission)

    # -- the error when nothing is left ---------------------------------------------------------

    def _exhausted(self) -> GatewayError:
        name = self.plan.name
        last = self.last_error
        if last is not None:
            if not is_unreachable(last):  # a broken answer is reported as itself (502), not as a 503
                return self._explain_budget(last)
            if self._answered is not None:  # report what an upstream said, not a refused connection
                return self._explain_budget(self._answered)
            return ServiceUnavailableError(
                f"No deployment of '{name}' could be reached; the last said: {last.message}"
                + self._skips_text()
            )
        if not self.skipped:
            return ServiceUnavailableError(
                f"No deployment is available for '{name}' (its providers are disabled or not built)."
            )
        reasons = [reason for _, reason, _ in self.skipped]
        if all(reason == "context_window" for reason in reasons):
            return InvalidRequestError(
                f"The request (about {self.prompt_tokens() + self.completion_tokens()} tokens) does not "
                f"fit the context window of any deployment of '{name}' or its context_window_fallbacks.",
                param="messages",
                code="context_length_exceeded",
            )
        waits = [wait for _, reason, wait in self.skipped if wait > 0]
        if any(reason.startswith(_RATE_REASONS) for reason in reasons):
            limited = [wait for _, reason, wait in self.skipped if reason.startswith(_RATE_REASONS)]
            return RateLimitError(
                f"Every deployment of '{name}' is at its rate limit." + self._skips_text(),
                retry_after=min((wait for wait in limited if wait > 0), default=1.0),
            )
        return ServiceUnavailableError(
            f"No healthy deployment for '{name}'." + self._skips_text(),
            retry_after=min(waits) if waits else None,
        )

    def _explain_budget(self, error: GatewayError) -> GatewayError:
        """Say so when ``max_retries`` left deployments untried (it bounds failover too)."""
        untried = [deployment for deployment, reason, _ in self.skipped if reason == _BUDGET_SPENT]
        if untried and "routing.max_retries" not in error.message:
            error.message += (
                f" (not tried: {', '.join(untried[:5])}: routing.max_retries allows 1 + max_retries "
                "attempts per model group, failovers to other deployments included)"
            )
        return error

    def _skips_text(self) -> str:
        if not self.skipped:
            return ""
        parts = []
        for deployment, reason, wait in self.skipped[:10]:
            parts.append(f"{deployment}: {reason}" + (f", retry in {wait:.1f}s" if wait > 0 else ""))
        return " Skipped: " + "; ".join(parts) + "."

    def _deadline_error(self) -> GatewayError:
        timeout = self.router.timeout
        last = f" The last error: {self.last_error.message}" if self.last_error else ""
        return UpstreamTimeoutError(
            f"The request deadline ({timeout:g}s, routing.timeout) passed before any deployment "
            f"answered.{last}",
            code="deadline_exceeded",
        )

    def describe_skips(self) -> list[dict[str, Any]]:
        """For ``x_rec_llm.skipped``."""
        return [{"deployment": deployment, "reason": reason} for deployment, reason, _ in self.skipped]

"""Per gateway key limits and monthly budgets (``auth.keys``), kept in the state store.

Checked after authentication, ``pre_request`` hooks and planning, before the first upstream call, in
one store round trip: the key's rate buckets are taken and its budget reserved together, or nothing
is. A key over a rate limit gets 429 ``rate_limit_exceeded`` with ``Retry-After``; a key that has spent
its ``monthly_budget_usd`` this UTC month gets 429 ``budget_exceeded`` (``Retry-After``: until the
month turns). The reservation is the request's worst case (estimated prompt plus ``max_tokens``, or
the model's maximum output, at the highest price among the deployments it may go to); when the
request ends it is replaced by the real cost. While other requests of the key are in flight, a
request whose worst case does not fit beside theirs is refused (a burst cannot overspend); a lone
request may start while anything is left (so the overshoot is at most its own cost).
"""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from ..errors import InvalidRequestError, RateLimitError
from ..schema import ChatCompletionRequest
from ..state.base import BUDGET, Admission, BucketTake, BudgetTake, Refusal, Settlement
from .limits import shared_bucket
from .settings import GatewayKeyConfig
from .tokens import estimate_completion_tokens, estimate_prompt_tokens

if TYPE_CHECKING:
    from ..state.ledger import Ledger
    from .deployment import Lease
    from .group import Plan
    from .resolve import Route

__all__ = ["KeyGuard", "KeyTicket"]

_LIMIT_WORDS: Final = {
    "requests_per_minute": "requests per minute",
    "tokens_per_minute": "tokens per minute",
    "concurrent_requests": "concurrent requests",
}
UNKNOWN_MAX_OUTPUT: Final = 4096
"""Completion tokens a budget reserves when neither the request nor the catalog bounds the answer."""

WorstCase = Callable[["Plan | Sequence[Route]"], "tuple[float, float, int | None] | None"]


class _Key:
    __slots__ = ("allow_unpriced", "bucket", "budget", "name")

    def __init__(
        self, name: str, bucket: BucketTake | None, budget: float | None, allow_unpriced: bool
    ) -> None:
        self.name = name
        self.bucket = bucket
        self.budget = budget
        self.allow_unpriced = allow_unpriced


class KeyTicket:
    """What one request holds in the state store: its key's part (taken with its first attempt) and
    the parts its attempts' deployments took."""

    __slots__ = ("admission", "budget", "key", "tokens")

    def __init__(self, key: _Key | None, budget: BudgetTake | None, tokens: int) -> None:
        self.key = key
        self.budget = budget
        self.tokens = tokens
        """The request's estimated tokens (reserved against ``tokens_per_minute`` limits)."""
        self.admission: Admission | None = None
        """The admission that took the key's part, once taken."""


class KeyGuard:
    """Limits and budgets of the keys that have any, and the shared deployment limits of attempts.

    ``clock`` is monotonic (windows of the memory store), ``wallclock`` Unix time (the budget month,
    and windows of shared stores); both may be replaced in tests. ``worst_case`` gives (USD per input
    token, per output token, max output) for the deployments a plan may use (set from the router)."""

    def __init__(
        self,
        keys: Iterable[tuple[str, GatewayKeyConfig]],
        ledger: Ledger,
        *,
        shared_limits: bool = False,
        unpriced: str = "deny",
    ) -> None:
        self.clock: Callable[[], float] = time.monotonic
        self.wallclock: Callable[[], float] = time.time
        self.ledger = ledger
        self.worst_case: WorstCase | None = None
        self._keys: dict[str, _Key] = {}
        for key_id, config in keys:
            bucket = shared_bucket(f"key:{key_id}", config)
            if bucket is not None or config.monthly_budget_usd is not None:
                allow = (config.unpriced or unpriced) == "allow"
                self._keys[key_id] = _Key(key_id, bucket, config.monthly_budget_usd, allow)
        self.shared_limits = shared_limits
        self.active = bool(self._keys) or shared_limits

    def open(
        self, key_id: str | None, request: ChatCompletionRequest, routes: Plan | Sequence[Route] | None = None
    ) -> KeyTicket | None:
        """The request's ticket (no I/O yet), or ``None`` when there is nothing to take."""
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None and not self.shared_limits:
            return None
        budget = None
        if key is not None and key.budget is not None:
            worst = self._worst_cost(request, routes)
            if worst is None and not key.allow_unpriced:
                raise InvalidRequestError(
                    f"The model '{request.model}' has no known price, and gateway key '{key.name}' has a "
                    "monthly budget its requests must count against: add the model under pricing:, or "
                    "set unpriced: allow (for the key, or auth.unpriced).",
                    param="model",
                    code="unpriced_model",
                )
            budget = BudgetTake(f"key:{key.name}", _month(self.wallclock())[0], key.budget, worst or 0.0)
        counts_tokens = self.shared_limits or (key is not None and key.bucket is not None and key.bucket.tpm)
        tokens = estimate_prompt_tokens(request) + estimate_completion_tokens(request) if counts_tokens else 0
        return KeyTicket(key, budget, tokens)

    async def take(self, ticket: KeyTicket, lease: Lease | None) -> tuple[str, float] | None:
        """One store round trip before an attempt: the key's part (the first time) and the lease's
        deployment and provider buckets, all or nothing. Raises ``RateLimitError`` when the key may
        not go on; returns (reason, seconds) when only the deployment is full (try another)."""
        key = ticket.key
        buckets: list[BucketTake] = []
        budget = None
        if key is not None and ticket.admission is None:
            if key.bucket is not None:
                buckets.append(_with_tokens(key.bucket, ticket.tokens))
            budget = ticket.budget
        shared = [_with_tokens(bucket, ticket.tokens) for bucket in lease.deployment.buckets] if lease else []
        if not buckets and not shared and budget is None:
            return None
        wallclock = self.wallclock()
        admission = Admission(
            os.urandom(8).hex(),
            wallclock if self.ledger.shared else self.clock(),
            (*buckets, *shared),
            budget,
            self.ledger.config.reservation_seconds,
        )
        refusal = await self.ledger.admit(admission)
        if refusal is not None:
            if key is not None and (refusal.limit == BUDGET or refusal.bucket == f"key:{key.name}"):
                raise self._refused(key, refusal, wallclock)
            return f"rate_limited ({refusal.bucket} {refusal.limit})", refusal.wait
        if key is not None and ticket.admission is None:
            ticket.admission = admission
        if shared and lease is not None:
            settled = tuple(shared)
            ledger = self.ledger
            lease.on_release = lambda tokens: ledger.settle(
                admission, Settlement(admission.id, settled, tokens, None)
            )
        return None

    async def admit(
        self, key_id: str | None, request: ChatCompletionRequest, routes: Plan | Sequence[Route] | None = None
    ) -> KeyTicket | None:
        """The key's part alone (no deployment): raise ``RateLimitError`` when it may not go on."""
        ticket = self.open(key_id, request, routes)
        if ticket is not None and ticket.key is not None:
            await self.take(ticket, None)
        return ticket

    def _worst_cost(
        self, request: ChatCompletionRequest, routes: Plan | Sequence[Route] | None
    ) -> float | None:
        """The request's worst-case cost; ``None`` when a deployment it may use has no price."""
        worst = self.worst_case(routes) if self.worst_case is not None and routes is not None else None
        if worst is None:
            return None
        per_input, per_output, max_output = worst
        completion = estimate_completion_tokens(request) or max_output or UNKNOWN_MAX_OUTPUT
        return estimate_prompt_tokens(request) * per_input + completion * per_output

    @staticmethod
    def _refused(key: _Key, refusal: Refusal, now: float) -> RateLimitError:
        if refusal.limit == BUDGET:
            if refusal.in_flight:
                return RateLimitError(
                    f"Gateway key '{key.name}' has requests in flight that hold the rest of its monthly "
                    f"budget of ${key.budget:g}.",
                    retry_after=1.0,
                    error_type="insufficient_quota",
                    code="budget_exceeded",
                )
            month, next_month = _month(now)
            return RateLimitError(
                f"Gateway key '{key.name}' has used its monthly budget of ${key.budget:g} "
                f"(spent ${refusal.spent:.4f} in {month} UTC).",
                retry_after=next_month - now,
                error_type="insufficient_quota",
                code="budget_exceeded",
            )
        bucket = key.bucket
        value = {
            "requests_per_minute": bucket.rpm if bucket else None,
            "tokens_per_minute": bucket.tpm if bucket else None,
            "concurrent_requests": bucket.concurrent if bucket else None,
        }.get(refusal.limit)
        return RateLimitError(
            f"Gateway key '{key.name}' is over its limit of {value if value is not None else '?'} "
            f"{_LIMIT_WORDS.get(refusal.limit, refusal.limit)}.",
            retry_after=max(refusal.wait, 0.001),
        )

    def finish(self, ticket: KeyTicket, tokens: int | None, cost_usd: float | None) -> None:
        """The request ended: free its key's slot, settle its tokens, turn its reservation into its cost."""
        admission = ticket.admission
        if admission is not None:
            key_buckets = tuple(bucket for bucket in admission.buckets if bucket.name.startswith("key:"))
            settlement = Settlement(admission.id, key_buckets, tokens, admission.budget, cost_usd or 0.0)
            self.ledger.settle(admission, settlement)

    def spent(self, key_id: str) -> float:
        """What ``key_id`` has spent this UTC month (USD; what this process knows: see ``aspent``)."""
        return self.ledger.local.spent_now(f"key:{key_id}", _month(self.wallclock())[0])

    async def aspent(self, key_id: str) -> float:
        """What ``key_id`` has spent this UTC month, as the store says (every process)."""
        return await self.ledger.store.spent(f"key:{key_id}", _month(self.wallclock())[0])


def _with_tokens(bucket: BucketTake, tokens: int) -> BucketTake:
    return replace(bucket, tokens=tokens) if bucket.tpm else bucket


def _month(now: float) -> tuple[str, float]:
    """The UTC month of ``now`` (``YYYY-MM``) and the Unix time the next one starts."""
    year, month = time.gmtime(now)[:2]
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}", float(calendar.timegm((next_year, next_month, 1, 0, 0, 0)))

"""``memory://``: state held in this process (the default, and the fallback while a shared store is down).

Rate buckets are the routing layer's own exact sliding logs (``MemoryLimiter``); a budget is its
month's spend plus the reservations of requests in flight. Nothing awaits: each operation is a few
dictionary lookups under one lock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from ..routing.limits import MemoryLimiter, Ticket
from ..routing.settings import RateLimitConfig
from ..usage import UsageRecord, UsageTracker
from .base import BUDGET, Admission, Batch, BucketTake, BudgetTake, Refusal, Settlement

__all__ = ["MemoryStore", "budget_refusal"]


class _Budget:
    __slots__ = ("reservations", "spent")

    def __init__(self) -> None:
        self.spent = 0.0
        self.reservations: dict[str, float] = {}


def budget_refusal(take: BudgetTake, spent: float, reserved: float) -> Refusal | None:
    """The budget rule every store applies: a request may start while something is left, and, when
    other requests are in flight, only if its worst case fits beside theirs (so a concurrent burst
    cannot overspend; a lone request may, by at most its own cost)."""
    if spent >= take.limit:
        return Refusal(take.name, BUDGET, 0.0, spent)  # the caller knows when the month turns
    if reserved > 0 and spent + reserved + take.amount > take.limit:
        return Refusal(take.name, BUDGET, 1.0, spent + reserved, in_flight=True)
    return None


class MemoryStore:
    """State of one process. Thread-safe: the gateway may serve several event loops."""

    shared = False

    def __init__(self) -> None:
        self._limiters: dict[str, MemoryLimiter] = {}
        self._tickets: dict[str, dict[str, Ticket]] = {}
        """Admission id -> bucket name -> what it holds (an admission may be settled in parts)."""
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._signals: dict[str, dict[str, Any]] = {}
        self.usage_records = UsageTracker()
        self._lock = threading.Lock()

    def limiter(self, bucket: BucketTake) -> MemoryLimiter:
        limiter = self._limiters.get(bucket.name)
        if limiter is None:
            config = RateLimitConfig(
                requests_per_minute=bucket.rpm,
                tokens_per_minute=bucket.tpm,
                concurrent_requests=bucket.concurrent,
            )
            limiter = self._limiters[bucket.name] = MemoryLimiter(config, bucket.name)
        return limiter

    async def admit(self, admission: Admission, settled: Batch | None = None) -> Refusal | None:
        if settled:
            self.write_now(settled)
        return self.admit_now(admission)

    def admit_now(self, admission: Admission) -> Refusal | None:
        now = admission.now
        with self._lock:
            budget = None
            take = admission.budget
            if take is not None:
                budget = self._budgets.setdefault((take.name, take.month), _Budget())
                refusal = budget_refusal(take, budget.spent, sum(budget.reservations.values()))
                if refusal is not None:
                    return refusal
            tickets: dict[str, Ticket] = {}
            for bucket in admission.buckets:
                limiter = self.limiter(bucket)
                ticket = limiter.try_acquire(now, bucket.tokens)
                if ticket is None:
                    for taken in tickets.values():
                        taken.limiter.cancel(taken)
                    limit, wait = limiter.refusal(now, bucket.tokens)
                    return Refusal(bucket.name, limit, wait)
                tickets[bucket.name] = ticket
            if tickets:
                self._tickets[admission.id] = tickets
            if budget is not None and take is not None:
                budget.reservations[admission.id] = take.amount
        return None

    async def write(self, batch: Batch) -> None:
        self.write_now(batch)

    def write_now(self, batch: Batch) -> None:
        with self._lock:
            for settlement in batch.settlements:
                self._settle(settlement)
            for (name, month), amount in batch.spend.items():
                self._budgets.setdefault((name, month), _Budget()).spent += amount
            self._signals.update(batch.signals)
        for record in batch.usage:
            self.usage_records.add(record)

    def _settle(self, settlement: Settlement) -> None:
        tickets = self._tickets.get(settlement.id)
        if tickets is not None:
            for bucket in settlement.buckets:
                ticket = tickets.pop(bucket.name, None)
                if ticket is not None:
                    ticket.limiter.release(ticket, settlement.tokens)
            if not tickets:
                del self._tickets[settlement.id]
        take = settlement.budget
        if take is not None:
            budget = self._budgets.setdefault((take.name, take.month), _Budget())
            budget.reservations.pop(settlement.id, None)
            budget.spent += settlement.cost

    async def usage(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        return self.usage_records.rows(start, end)

    def usage_blocking(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        return self.usage_records.rows(start, end)

    async def spent(self, name: str, month: str) -> float:
        return self.spent_now(name, month)

    def spent_now(self, name: str, month: str) -> float:
        budget = self._budgets.get((name, month))
        return budget.spent if budget is not None else 0.0

    async def signals(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._signals)

    async def headroom(
        self, buckets: Sequence[BucketTake], now: float
    ) -> dict[str, dict[str, dict[str, int]]]:
        return {bucket.name: self.limiter(bucket).headroom(now) for bucket in buckets}

    async def aclose(self) -> None:
        return None

"""The store interface: the few atomic operations the gateway needs, each one round trip.

    admit(Admission, Batch) -> Refusal | None
                                           write the batch (this process's settlements so far), then
                                           take from every rate bucket of a request and reserve its
                                           budget, all or nothing (before the upstream call)
    write(Batch)                           settle admissions (free slots, settle tokens and spend),
                                           add usage, publish signals: one transaction, applied at
                                           most once per ``Batch.id``
    usage(start, end) -> rows              the usage aggregate, per (day, provider, model, key)
                                           (``usage_blocking``: the same for synchronous callers)
    spent(name, month) -> USD              a budget's spend this month
    signals() -> {name: value}             breakers, cooldowns and health published by any process
    headroom(buckets, now) -> {name: rows} what each rate bucket has used and has left (admin stats)

Times are Unix seconds from the caller (the memory store takes a monotonic clock: it is never shared).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ..usage import UsageRecord

__all__ = [
    "WINDOW_SECONDS",
    "Admission",
    "Batch",
    "BucketTake",
    "BudgetTake",
    "Refusal",
    "Settlement",
    "Store",
    "StoreUnavailable",
    "headroom_rows",
]

WINDOW_SECONDS: Final = 60.0
BUDGET: Final = "monthly_budget_usd"


class StoreUnavailable(Exception):
    """The store did not answer (down, slow, locked past the retry budget)."""


@dataclass(slots=True, frozen=True)
class BucketTake:
    """One rate bucket a request takes from (a gateway key, a deployment, a provider)."""

    name: str
    rpm: int | None
    tpm: int | None
    concurrent: int | None
    tokens: int = 0
    """The request's estimated tokens (reserved against ``tpm``; settled later)."""


@dataclass(slots=True, frozen=True)
class BudgetTake:
    """Reserve ``amount`` USD (the worst-case cost) of ``limit`` for ``month`` (``YYYY-MM``)."""

    name: str
    month: str
    limit: float
    amount: float


@dataclass(slots=True)
class Admission:
    id: str
    now: float
    buckets: tuple[BucketTake, ...]
    budget: BudgetTake | None = None
    ttl: float = 3900.0
    fallback: bool = False
    """Admitted by the per-process fallback while the shared store was down."""


@dataclass(slots=True, frozen=True)
class Refusal:
    bucket: str
    limit: str
    """``requests_per_minute``, ``tokens_per_minute``, ``concurrent_requests`` or ``monthly_budget_usd``."""
    wait: float
    """Seconds until the request might fit."""
    spent: float = 0.0
    """For a budget: what the month has spent (``limit`` reached) or has in flight."""
    in_flight: bool = False
    """For a budget: refused because requests in flight hold the rest of it."""


@dataclass(slots=True)
class Settlement:
    """The end of (part of) one admission: free the slots of ``buckets``, settle their tokens and the
    budget reservation. A request settles its deployment's buckets when its attempt ends and its
    key's buckets and budget when it ends."""

    id: str
    buckets: tuple[BucketTake, ...]
    tokens: int | None
    budget: BudgetTake | None
    cost: float = 0.0

    @property
    def changes_shared_state(self) -> bool:
        """Whether a shared store has anything to settle: a slot to free, tokens or a budget. The
        request and token entries of an admission expire with their window by themselves."""
        return self.budget is not None or any(
            bucket.concurrent is not None or (self.tokens is not None and bucket.tpm is not None)
            for bucket in self.buckets
        )


@dataclass(slots=True)
class Batch:
    """What one flush writes."""

    settlements: list[Settlement] = field(default_factory=list)
    spend: dict[tuple[str, str], float] = field(default_factory=dict)
    """(budget name, month) -> USD to add (spend of admissions whose reservation is already gone)."""
    usage: list[UsageRecord] = field(default_factory=list)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: str = field(default_factory=lambda: os.urandom(16).hex())  # as random as uuid4, a quarter of the CPU
    """A shared store applies a batch once: a write that timed out may still have landed, so it is
    retried as it was, with this id, and a store that has seen the id skips it (nothing counted twice)."""
    written: list[str] = field(default_factory=list)
    """Ids of earlier batches known to be written: the store can forget them."""

    def __bool__(self) -> bool:
        return bool(self.settlements or self.spend or self.usage or self.signals)

    @property
    def adds(self) -> bool:
        """Whether writing it twice would count twice: usage, spend or a settled budget. Freeing
        slots, settling tokens and publishing signals are the same done twice (no id kept for them)."""
        return bool(self.usage or self.spend) or any(s.budget is not None for s in self.settlements)


def headroom_rows(bucket: BucketTake, requests: int, tokens: int, slots: int) -> dict[str, dict[str, int]]:
    """The limits of ``bucket`` with what is used of each and what is left (``GET /providers/.../stats``)."""
    rows: dict[str, dict[str, int]] = {}
    for limit, used, name in (
        (bucket.rpm, requests, "requests_per_minute"),
        (bucket.tpm, tokens, "tokens_per_minute"),
        (bucket.concurrent, slots, "concurrent_requests"),
    ):
        if limit is not None:
            rows[name] = {"limit": limit, "used": used, "remaining": max(0, limit - used)}
    return rows


class Store(Protocol):
    shared: bool
    """Whether other processes see the same state (SQLite, Redis)."""

    async def admit(self, admission: Admission, settled: Batch | None = None) -> Refusal | None: ...

    async def write(self, batch: Batch) -> None: ...

    async def usage(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]: ...

    def usage_blocking(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        """``usage`` for synchronous code (``gateway.usage.get_all()``), from any thread."""

    async def spent(self, name: str, month: str) -> float: ...

    async def signals(self) -> dict[str, dict[str, Any]]: ...

    async def headroom(
        self, buckets: Sequence[BucketTake], now: float
    ) -> dict[str, dict[str, dict[str, int]]]: ...

    async def aclose(self) -> None: ...

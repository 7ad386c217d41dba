"""``Ledger``: the gateway's side of the store: admissions, the write-behind buffer, outages.

Admissions go to the store at once (one round trip). Everything written after a request (its
settlement, spend and usage) and the signals routing publishes are buffered and written together,
at most ``state.flush_seconds`` later, by one background task, and once more when the gateway
closes. With the memory store all of it is immediate and nothing awaits.

When a shared store fails (``on_unavailable: open``), admissions fall back to a per-process memory
store and writes stay buffered (settlements bounded by ``buffer_limit``; usage and spend are sums,
so they stay small) until a flush succeeds. A write that failed may still have landed (it timed out
after the store applied it): it is retried unchanged, and the store applies each ``Batch.id`` once.
One warning per outage; the request span gets ``rec_llm.state.fallback`` and the
``rec_llm.gateway.state.fallbacks`` counter counts each fallback.
For ``closed``, admissions are refused with 503 ``state_unavailable`` instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry import trace

from ..errors import ServiceUnavailableError, scrub_secrets
from ..usage import UsageRecord, UsageTracker
from .base import Admission, Batch, BucketTake, Refusal, Settlement, Store
from .memory import MemoryStore
from .settings import StateConfig

__all__ = ["Ledger"]

logger = logging.getLogger("rec_llm_gateway.state")

_RETRY_SECONDS: Final = 1.0  # after a failure, admissions skip the store this long (no per-request timeouts)
_LOOP_SLACK: Final = 4
"""The stores bound their own waits by ``timeout_seconds`` (SQLite's lock wait, Redis's socket
timeouts); the ledger's own bound is measured on the event loop, which a burst of requests can keep
busy past it while the store has long answered, so it is wider: it only catches a store that hangs."""


class Ledger:
    """Owns the store. ``on_fallback`` is called for each operation the fallback served (a metric)."""

    def __init__(self, config: StateConfig, on_fallback: Callable[[str], None] | None = None) -> None:
        from . import open_store

        self.config = config
        self.store: Store = open_store(config)
        self.shared = self.store.shared
        self.local: MemoryStore = self.store if isinstance(self.store, MemoryStore) else MemoryStore()
        """The per-process store: the store itself for ``memory://``, else the fallback."""
        self.pending = UsageTracker()
        """Usage recorded here and not yet written (read back with the store's, so nothing is missed)."""
        self._settlements: list[Settlement] = []
        self._spend: dict[tuple[str, str], float] = {}
        self._signals: dict[str, dict[str, Any]] = {}
        self._unsent: list[Batch] = []
        """Batches whose write failed: retried as they are, first (at most two: see ``admit``)."""
        self._written: list[str] = []
        """Ids of batches written since the last write: the next one tells the store to forget them."""
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self.outage = False
        self.owner: object | None = None
        """The runtime whose event loop runs the flush task."""
        self._on_fallback = on_fallback
        self.on_signals: Callable[[dict[str, dict[str, Any]]], None] | None = None

    # -- admissions -----------------------------------------------------------------------------

    async def admit(self, admission: Admission) -> Refusal | None:
        if not self.shared:
            return self.local.admit_now(admission)
        if time.monotonic() >= self._skip_until:
            # This process's settlements ride along: its finished requests free their reservations
            # before it admits the next one, in the same round trip. Not while a write is unsent:
            # the flush owns the buffer then, so at most one batch of each kind waits for a retry.
            settled = None if self._unsent else self._take_settlements()
            try:
                async with asyncio.timeout(self.config.timeout_seconds * _LOOP_SLACK):
                    refusal = await self.store.admit(admission, settled)
            except Exception as exc:  # any failure of the store means "unavailable"
                if settled:
                    self._unsent.append(settled)
                self._release_later(admission)
                self._failed(exc)
            else:
                if settled and settled.adds:
                    self._written.append(settled.id)
                self._recovered()
                return refusal
        if self.config.on_unavailable == "closed":
            raise ServiceUnavailableError(
                "The gateway's state store is unavailable; limits and budgets cannot be checked.",
                code="state_unavailable",
            )
        self._fell_back("admit")
        admission.fallback = True
        return self.local.admit_now(admission)

    def settle(self, admission: Admission, settlement: Settlement) -> None:
        """The admitted request ended (never raises, never awaits)."""
        if not self.shared:
            self.local.write_now(Batch(settlements=[settlement]))
            return
        if admission.fallback:
            take, settlement.budget = settlement.budget, None
            self.local.write_now(Batch(settlements=[settlement]))
            if take is not None and settlement.cost:
                self.add_spend(take.name, take.month, settlement.cost)
            return
        if not settlement.changes_shared_state:
            return  # nothing to send (a limit of requests per minute alone, say)
        with self._lock:
            self._settlements.append(settlement)
            if len(self._settlements) > self.config.buffer_limit:
                # Slots and token reservations expire by themselves; the money must not be lost.
                dropped = self._settlements.pop(0)
                if dropped.budget is not None and dropped.cost:
                    key = (dropped.budget.name, dropped.budget.month)
                    self._spend[key] = self._spend.get(key, 0.0) + dropped.cost

    def _release_later(self, admission: Admission) -> None:
        """An admission timed out may still have been taken in the store (the store answered too
        late): free its slots and budget reservation there with the next write, or they would be
        held until they expire. Its request and token entries stay: the request is served (by the
        fallback), so they count. Freeing what was never taken changes nothing."""
        with self._lock:
            self._settlements.append(Settlement(admission.id, admission.buckets, None, admission.budget, 0.0))

    def add_spend(self, name: str, month: str, amount: float) -> None:
        with self._lock:
            self._spend[(name, month)] = self._spend.get((name, month), 0.0) + amount

    def signal(self, name: str, value: dict[str, Any]) -> None:
        """Publish ``value`` under ``name`` to every process (with the next flush)."""
        if self.shared:
            with self._lock:
                self._signals[name] = value

    async def headroom(self, buckets: Sequence[BucketTake]) -> dict[str, dict[str, dict[str, int]]] | None:
        """What each shared rate bucket has used and has left in the store (every process's use);
        ``None`` while the store is unavailable."""
        if not buckets:
            return {}
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                return await self.store.headroom(buckets, time.time())
        except Exception as exc:
            self._failed(exc)
            return None

    # -- the write-behind buffer ----------------------------------------------------------------

    def _take_settlements(self) -> Batch | None:
        if not self._settlements and not self._spend:
            return None
        with self._lock:
            batch = Batch(self._settlements, self._spend, written=self._written)
            self._settlements, self._spend, self._written = [], {}, []
        return batch

    def _take_batch(self) -> Batch:
        with self._lock:
            batch = Batch(
                self._settlements, self._spend, self.pending.drain(), self._signals, written=self._written
            )
            self._settlements, self._spend, self._signals, self._written = [], {}, {}, []
        return batch

    def buffered_usage(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        """The usage of this process not yet in the store (read back with the store's)."""
        buffered = UsageTracker()
        for record in (*self.pending.rows(), *(record for batch in self._unsent for record in batch.usage)):
            buffered.add(record)
        return buffered.rows(start, end)

    async def flush(self) -> bool:
        """Write what is buffered; ``False`` (and kept) when the store failed."""
        if not self.shared:
            return True
        for batch in list(self._unsent):
            if not await self._write(batch):
                return False
            self._unsent = [unsent for unsent in self._unsent if unsent is not batch]
        batch = self._take_batch()
        if batch and not await self._write(batch):
            self._unsent.append(batch)
            return False
        return True

    async def _write(self, batch: Batch) -> bool:
        try:
            async with asyncio.timeout(self.config.timeout_seconds * _LOOP_SLACK):
                await self.store.write(batch)
        except Exception as exc:
            self._failed(exc)
            return False
        if batch.adds:
            self._written.append(batch.id)
        self._recovered()
        return True

    async def run(self) -> None:
        """The background task: flush every ``flush_seconds``, read signals every ``sync_seconds``."""
        config = self.config
        next_sync = 0.0
        try:
            while True:
                await asyncio.sleep(config.flush_seconds)
                await self.flush()
                now = time.monotonic()
                if self.on_signals is not None and now >= next_sync and not self.outage:
                    next_sync = now + config.sync_seconds
                    try:
                        async with asyncio.timeout(config.timeout_seconds):
                            signals = await self.store.signals()
                    except Exception as exc:
                        self._failed(exc)
                    else:
                        self.on_signals(signals)
        finally:
            self.owner = None

    async def aclose(self) -> None:
        """Write what is buffered (leaving ``async with gateway``)."""
        if self.shared and not await self.flush():
            logger.warning("the state store is unavailable at shutdown: buffered usage and spend are lost")

    # -- outages --------------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + _RETRY_SECONDS
        if not self.outage:
            self.outage = True
            detail = scrub_secrets(str(exc))[:200] or type(exc).__name__
            logger.warning(
                "state store (%s) unavailable: %s; %s",
                self.config.scheme,
                detail,
                "limits fall back to this process and usage is buffered until it is back"
                if self.config.on_unavailable == "open"
                else "requests that need it are refused (on_unavailable: closed)",
            )

    def _recovered(self) -> None:
        if self.outage:
            self.outage = False
            logger.warning("state store (%s) is available again", self.config.scheme)

    def _fell_back(self, operation: str) -> None:
        trace.get_current_span().set_attribute("rec_llm.state.fallback", True)
        if self._on_fallback is not None:
            self._on_fallback(operation)

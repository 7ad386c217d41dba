"""``gateway.usage`` over a shared store: the store's aggregate plus what this process has not written yet."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..usage import UsageRecord, UsageTracker

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["SharedUsage"]


class SharedUsage(UsageTracker):
    """Records go to the ledger's write buffer; reads ask the store (every process's usage)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def record(self, **fields: Any) -> None:
        self.ledger.pending.record(**fields)

    async def arows(self, start: dt.date | None = None, end: dt.date | None = None) -> list[UsageRecord]:
        stored = await self.ledger.store.usage(start, end)
        return _combine(stored, self.ledger.pending.rows(start, end))

    def rows(self, start: dt.date | None = None, end: dt.date | None = None) -> list[UsageRecord]:
        """The blocking form (``gateway.usage.get_all()``): read on a fresh connection in a worker
        thread, so that it works from synchronous code and from inside an event loop alike."""
        from . import open_store

        async def read() -> list[UsageRecord]:
            store = open_store(self.ledger.config)
            try:
                return await store.usage(start, end)
            finally:
                await store.aclose()

        with ThreadPoolExecutor(max_workers=1) as pool:
            stored = pool.submit(asyncio.run, read()).result()
        return _combine(stored, self.ledger.pending.rows(start, end))


def _combine(stored: list[UsageRecord], pending: list[UsageRecord]) -> list[UsageRecord]:
    total = UsageTracker()
    for record in (*stored, *pending):
        total.add(record)
    return total.rows()

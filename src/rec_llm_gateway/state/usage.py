"""``gateway.usage`` over a shared store: the store's aggregate plus what this process has not written yet."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

from ..errors import ServiceUnavailableError
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
        """Raises a 503 ``state_unavailable`` while the store does not answer (not a 500)."""
        try:
            async with asyncio.timeout(self.ledger.config.timeout_seconds * 4):
                stored = await self.ledger.store.usage(start, end)
        except Exception:
            raise ServiceUnavailableError(
                "The gateway's state store is unavailable; usage cannot be read now.",
                code="state_unavailable",
            ) from None
        return _combine(stored, self.ledger.buffered_usage(start, end))

    def rows(self, start: dt.date | None = None, end: dt.date | None = None) -> list[UsageRecord]:
        """The blocking form (``gateway.usage.get_all()``): the store's own blocking read, on the
        connection it keeps (from synchronous code and from inside an event loop alike)."""
        stored = self.ledger.store.usage_blocking(start, end)
        return _combine(stored, self.ledger.buffered_usage(start, end))


def _combine(stored: list[UsageRecord], pending: list[UsageRecord]) -> list[UsageRecord]:
    total = UsageTracker()
    for record in (*stored, *pending):
        total.add(record)
    return total.rows()

"""Token usage of one call, and the in-memory usage aggregate behind ``gateway.usage`` and ``GET /usage``."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["TokenUsage", "UsageRecord", "UsageTracker", "merge_keys", "token_count"]


@dataclass(slots=True)
class TokenUsage:
    """Tokens of one upstream call, in OpenAI's terms.

    ``prompt_tokens`` includes cached and cache-written input tokens (as OpenAI reports them), so a
    price table can charge the cached part at its own rate.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    """The upstream never reported usage (a stream cut off before its usage chunk): the gateway's
    estimate, from the request and what was streamed, so generated tokens are never unaccounted."""

    @classmethod
    def from_openai(cls, usage: Any) -> TokenUsage | None:
        """Read an OpenAI ``usage`` object; ``None`` when absent or not an object."""
        if not isinstance(usage, dict):
            return None
        prompt = token_count(usage.get("prompt_tokens"))
        completion = token_count(usage.get("completion_tokens"))
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=token_count(usage.get("total_tokens")) or prompt + completion,
            cached_tokens=token_count(prompt_details.get("cached_tokens"))
            if isinstance(prompt_details, dict)
            else 0,
            cache_write_tokens=token_count(usage.get("cache_creation_input_tokens")),
            reasoning_tokens=(
                token_count(completion_details.get("reasoning_tokens"))
                if isinstance(completion_details, dict)
                else 0
            ),
        )

    @classmethod
    def from_uncached(
        cls, uncached_input: Any, cache_read: Any, cache_write: Any, output: Any, total: Any = None
    ) -> TokenUsage:
        """Usage from providers that count cached input beside the rest (Anthropic, Bedrock): the
        prompt is all three input parts, with the reads as ``cached_tokens`` and the writes apart, so
        that pricing charges each at its own rate. Raw upstream values; junk counts as 0."""
        read = token_count(cache_read)
        written = token_count(cache_write)
        prompt = token_count(uncached_input) + read + written
        completion = token_count(output)
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=max(token_count(total), prompt + completion),
            cached_tokens=read,
            cache_write_tokens=written,
        )

    def to_openai(self) -> dict[str, Any]:
        """This usage as an OpenAI ``usage`` object."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens or self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens or self.cache_write_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.cache_write_tokens:
            usage["cache_creation_input_tokens"] = self.cache_write_tokens
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage


def token_count(value: Any) -> int:
    """A token count from upstream JSON: a positive int, else 0 (``None``, bools, strings, junk)."""
    return value if type(value) is int and value > 0 else 0


@dataclass(slots=True)
class UsageRecord:
    """Aggregated usage for one (date, provider, model, operation). ``cost_usd`` is ``None`` when
    nothing was priced."""

    date: dt.date
    provider: str
    model: str
    gateway_key_id: str | None = None
    """Set on records of one gateway key (``get_by_key``); ``None`` on totals over all keys."""
    operation: str = "chat"
    """``chat``, ``embeddings``, ``text_completion``, ...: kept apart (their tokens differ in kind)."""
    calls: int = 0
    errors: int = 0
    estimated_calls: int = 0
    """Calls whose tokens the gateway estimated (the upstream never reported usage)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    total_latency_ms: float = 0.0

    @property
    def avg_latency_ms(self) -> float:
        return self.total_latency_ms / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["avg_latency_ms"] = round(self.avg_latency_ms, 3)
        del data["total_latency_ms"]
        return data


class UsageTracker:
    """Thread-safe in-memory usage per (UTC date, provider, model, operation, gateway key).

    Example::

        gateway.usage.get_all()                     # every record
        gateway.usage.get_by_date(date.today())     # one day (a date or "YYYY-MM-DD")
        gateway.usage.get_by_provider("openai")     # one provider

    With a shared ``state.url`` the gateway's tracker reads the store (``state.usage.SharedUsage``).
    """

    def __init__(self) -> None:
        # Kept per gateway key too, so that a key can be shown its own usage and nobody else's.
        self._records: dict[tuple[dt.date, str, str, str, str | None], UsageRecord] = {}
        # Requests may finish on several event loops (threads) at once; a lock keeps sums exact.
        self._lock = threading.Lock()

    def record(
        self,
        *,
        provider: str,
        model: str,
        usage: TokenUsage | None,
        cost_usd: float | None,
        latency_ms: float,
        error: bool,
        gateway_key_id: str | None = None,
        day: dt.date | None = None,
        operation: str = "chat",
    ) -> None:
        key = (day or dt.datetime.now(dt.UTC).date(), provider, model, operation, gateway_key_id)
        with self._lock:
            record = self._records.get(key)
            if record is None:
                record = self._records[key] = UsageRecord(
                    date=key[0],
                    provider=provider,
                    model=model,
                    gateway_key_id=gateway_key_id,
                    operation=operation,
                )
            record.calls += 1
            record.errors += error
            record.total_latency_ms += latency_ms
            if usage is not None:
                record.estimated_calls += usage.estimated
                record.prompt_tokens += usage.prompt_tokens
                record.completion_tokens += usage.completion_tokens
                record.total_tokens += usage.total_tokens
            if cost_usd is not None:
                record.cost_usd = (record.cost_usd or 0.0) + cost_usd

    def add(self, record: UsageRecord) -> None:
        """Add an aggregated record (per gateway key) to this one's sums."""
        key = (record.date, record.provider, record.model, record.operation, record.gateway_key_id)
        with self._lock:
            total = self._records.get(key)
            if total is None:
                self._records[key] = replace(record)
            else:
                _add(total, record)

    def drain(self) -> list[UsageRecord]:
        """Take every record out (a write buffer hands them to the store)."""
        with self._lock:
            records, self._records = list(self._records.values()), {}
        return records

    def __len__(self) -> int:
        return len(self._records)

    def rows(self, start: dt.date | None = None, end: dt.date | None = None) -> list[UsageRecord]:
        """Copies of the per-key records from ``start`` to ``end`` (inclusive; ``None``: open)."""
        with self._lock:
            # Snapshots: the live records keep changing under the lock.
            return [
                replace(record)
                for record in self._records.values()
                if (start is None or record.date >= start) and (end is None or record.date <= end)
            ]

    async def arows(self, start: dt.date | None = None, end: dt.date | None = None) -> list[UsageRecord]:
        """``rows`` for async callers (a shared store reads over the network)."""
        return self.rows(start, end)

    def get_all(self) -> list[UsageRecord]:
        """One record per (date, provider, model, operation), summed over gateway keys."""
        return merge_keys(self.rows())

    def get_by_key(self, gateway_key_id: str | None) -> list[UsageRecord]:
        """The records of one gateway key (``context.gateway_key_id``), per (date, provider, model,
        operation)."""
        return [record for record in self.rows() if record.gateway_key_id == gateway_key_id]

    def get_by_date(self, day: dt.date | str) -> list[UsageRecord]:
        wanted = dt.date.fromisoformat(day) if isinstance(day, str) else day
        return merge_keys(self.rows(wanted, wanted))

    def get_by_provider(self, provider: str) -> list[UsageRecord]:
        return [record for record in self.get_all() if record.provider == provider]

    def totals(self, records: list[UsageRecord] | None = None) -> dict[str, Any]:
        """Sums over ``records`` (default: everything)."""
        records = self.get_all() if records is None else records
        costs = [record.cost_usd for record in records if record.cost_usd is not None]
        return {
            "calls": sum(record.calls for record in records),
            "errors": sum(record.errors for record in records),
            "total_tokens": sum(record.total_tokens for record in records),
            "cost_usd": sum(costs) if costs else None,
        }


def merge_keys(records: list[UsageRecord]) -> list[UsageRecord]:
    """Per-key records summed per (date, provider, model, operation)."""
    merged: dict[tuple[dt.date, str, str, str], UsageRecord] = {}
    for record in records:
        key = (record.date, record.provider, record.model, record.operation)
        total = merged.get(key)
        if total is None:
            merged[key] = replace(record, gateway_key_id=None)
        else:
            _add(total, record)
    return list(merged.values())


def _add(total: UsageRecord, record: UsageRecord) -> None:
    total.calls += record.calls
    total.errors += record.errors
    total.estimated_calls += record.estimated_calls
    total.prompt_tokens += record.prompt_tokens
    total.completion_tokens += record.completion_tokens
    total.total_tokens += record.total_tokens
    total.total_latency_ms += record.total_latency_ms
    if record.cost_usd is not None:
        total.cost_usd = (total.cost_usd or 0.0) + record.cost_usd

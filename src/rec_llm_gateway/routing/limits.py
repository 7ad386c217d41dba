"""Rate limits: requests per minute, tokens per minute and requests in flight, over a sliding window.

Used per provider, per deployment and per gateway key. ``Limiter`` is the protocol; ``MemoryLimiter``
is the embedded default. A shared store (Redis, ...) can implement the same protocol later, typically
by leasing batches of capacity asynchronously in the background and handing them out locally, so the
per-request path stays synchronous and cheap.

Why hand-rolled rather than the ``limits`` package: measured at ~10 us per moving-window ``hit`` on
its memory storage, it reads the wall clock internally (schedules cannot be tested without sleeping),
and it cannot give tokens back, which ``tokens_per_minute`` needs (a request reserves its estimated
tokens and is settled with the real count when the upstream reports usage). The sliding log below is
exact (never more than the limit in any 60-second window), costs well under a microsecond, and takes
``now`` from the router's injectable clock.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from typing import Any, Final, Protocol

from ..state.base import BucketTake, headroom_rows
from .settings import RateLimitConfig

__all__ = ["WINDOW_SECONDS", "Limiter", "MemoryLimiter", "Ticket", "make_limiter", "shared_bucket"]

WINDOW_SECONDS: Final = 60.0
_UNKNOWN_WAIT: Final = 1.0  # a concurrency slot frees when some call ends: suggest a short wait


class Ticket:
    """What one admission holds: a concurrency slot and/or a token reservation."""

    __slots__ = ("entry", "limiter", "slot", "start")

    def __init__(self, limiter: Limiter, start: float, entry: list[float] | None, slot: bool) -> None:
        self.limiter = limiter
        self.start = start
        self.entry = entry
        self.slot = slot


class Limiter(Protocol):
    """Admits calls under a set of limits. Methods never block and never await."""

    name: str
    tpm: int | None
    """The tokens-per-minute limit, if any (admission then needs the request's token estimate)."""

    def try_acquire(self, now: float, tokens: int) -> Ticket | None:
        """A ticket when a call with ``tokens`` (estimated) fits now; ``None`` when it does not."""

    def refusal(self, now: float, tokens: int) -> tuple[str, float]:
        """Which limit refuses a call now, and the seconds until it might fit."""

    def release(self, ticket: Ticket, tokens: int | None = None) -> None:
        """The call ended: free its slot; with ``tokens``, correct its reservation to the real count."""

    def cancel(self, ticket: Ticket) -> None:
        """The call never started (another limit refused it): give everything back."""

    def headroom(self, now: float) -> dict[str, Any]:
        """Limits, use and what is left, for ``GET /providers/{name}/stats``."""


class MemoryLimiter:
    """Limits held in this process: exact sliding logs, shared by every event loop (one lock)."""

    __slots__ = ("_lock", "_starts", "_token_sum", "_tokens", "concurrent", "in_flight", "name", "rpm", "tpm")

    def __init__(self, config: RateLimitConfig, name: str = "") -> None:
        self.name = name
        self.rpm = config.requests_per_minute
        self.tpm = config.tokens_per_minute
        self.concurrent = config.concurrent_requests
        self.in_flight = 0
        self._starts: deque[float] = deque()
        # Entries are [start time, tokens, live]: live drops to 0 when the entry leaves the window,
        # so settling a reservation that has already expired changes nothing.
        self._tokens: deque[list[float]] = deque()
        self._token_sum = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        cutoff = now - WINDOW_SECONDS
        starts = self._starts
        while starts and starts[0] <= cutoff:
            starts.popleft()
        entries = self._tokens
        while entries and entries[0][0] <= cutoff:
            entry = entries.popleft()
            self._token_sum -= entry[1]
            entry[2] = 0.0

    def _fits(self, tokens: int) -> bool:
        if self.concurrent is not None and self.in_flight >= self.concurrent:
            return False
        if self.rpm is not None and len(self._starts) >= self.rpm:
            return False
        return self.tpm is None or self._token_sum + tokens <= self.tpm

    def try_acquire(self, now: float, tokens: int) -> Ticket | None:
        with self._lock:
            self._expire(now)
            if not self._fits(tokens):
                return None
            if self.rpm is not None:
                self._starts.append(now)
            entry = None
            if self.tpm is not None:
                entry = [now, float(tokens), 1.0]
                self._tokens.append(entry)
                self._token_sum += tokens
            slot = self.concurrent is not None
            if slot:
                self.in_flight += 1
        return Ticket(self, now, entry, slot)

    def refusal(self, now: float, tokens: int) -> tuple[str, float]:
        with self._lock:
            self._expire(now)
            if self.concurrent is not None and self.in_flight >= self.concurrent:
                return "concurrent_requests", _UNKNOWN_WAIT
            if self.rpm is not None and len(self._starts) >= self.rpm:
                # The oldest start leaves the window first; then one more request fits.
                oldest = self._starts[len(self._starts) - self.rpm]
                return "requests_per_minute", oldest + WINDOW_SECONDS - now
            if self.tpm is not None and self._token_sum + tokens > self.tpm:
                if tokens > self.tpm:
                    return "tokens_per_minute", WINDOW_SECONDS  # never fits; say so in the message
                excess = self._token_sum + tokens - self.tpm
                for start, amount, _ in self._tokens:
                    excess -= amount
                    if excess <= 0:
                        return "tokens_per_minute", max(0.0, start + WINDOW_SECONDS - now)
                return "tokens_per_minute", WINDOW_SECONDS
        return "", 0.0

    def release(self, ticket: Ticket, tokens: int | None = None) -> None:
        with self._lock:
            if ticket.slot:
                ticket.slot = False
                self.in_flight -= 1
            entry = ticket.entry
            if entry is not None and tokens is not None:
                if entry[2]:
                    self._token_sum += tokens - entry[1]
                entry[1] = float(tokens)
                ticket.entry = None

    def cancel(self, ticket: Ticket) -> None:
        with self._lock:
            if self.rpm is not None:
                with contextlib.suppress(ValueError):  # already out of the window
                    self._starts.remove(ticket.start)
        self.release(ticket, 0)

    def headroom(self, now: float) -> dict[str, Any]:
        with self._lock:
            self._expire(now)
            bucket = BucketTake(self.name, self.rpm, self.tpm, self.concurrent)
            return headroom_rows(bucket, len(self._starts), round(self._token_sum), self.in_flight)


def shared_bucket(name: str, config: RateLimitConfig | None) -> BucketTake | None:
    """``config`` as a bucket of a shared state store (``None`` when it limits nothing)."""
    if config is None or not config.limited:
        return None
    return BucketTake(name, config.requests_per_minute, config.tokens_per_minute, config.concurrent_requests)


def make_limiter(config: RateLimitConfig | None, name: str) -> Limiter | None:
    """The limiter for ``config``, or ``None`` when it limits nothing (the hot path then skips it)."""
    if config is None or not config.limited:
        return None
    return MemoryLimiter(config, name)

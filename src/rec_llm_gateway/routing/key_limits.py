"""Per gateway key limits and monthly budgets (``auth.keys``).

Checked after authentication and ``pre_request`` hooks, before routing: a key over a rate limit gets
429 ``rate_limit_exceeded`` with ``Retry-After``; a key that has spent its ``monthly_budget_usd``
this UTC month gets 429 ``budget_exceeded`` (``Retry-After``: until the month turns). Spend is the
priced cost of the key's requests, added when each request ends, so requests already in flight
when the budget runs out still finish (the overshoot is at most their cost).
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..errors import RateLimitError
from .limits import Limiter, Ticket, make_limiter
from .settings import GatewayKeyConfig
from .tokens import CHAT_ESTIMATES, TokenEstimates

__all__ = ["KeyGuard", "KeyTicket"]

_LIMIT_WORDS: Final = {
    "requests_per_minute": "requests per minute",
    "tokens_per_minute": "tokens per minute",
    "concurrent_requests": "concurrent requests",
}


class _KeyState:
    __slots__ = ("budget", "limiter", "lock", "month", "name", "spent")

    def __init__(self, name: str, limiter: Limiter | None, budget: float | None) -> None:
        self.name = name
        self.limiter = limiter
        self.budget = budget
        self.month = ""
        self.spent = 0.0
        self.lock = threading.Lock()


class KeyTicket:
    """What one request holds against its key until it ends."""

    __slots__ = ("state", "ticket")

    def __init__(self, state: _KeyState, ticket: Ticket | None) -> None:
        self.state = state
        self.ticket = ticket


class KeyGuard:
    """Limits and budgets of the keys that have any. ``clock`` is monotonic (windows), ``wallclock``
    Unix time (the budget month); both may be replaced in tests."""

    def __init__(self, keys: Iterable[tuple[str, GatewayKeyConfig]]) -> None:
        self.clock: Callable[[], float] = time.monotonic
        self.wallclock: Callable[[], float] = time.time
        self._states: dict[str, _KeyState] = {}
        for key_id, config in keys:
            limiter = make_limiter(config, f"key {key_id}")
            if limiter is not None or config.monthly_budget_usd is not None:
                self._states[key_id] = _KeyState(key_id, limiter, config.monthly_budget_usd)
        self.active = bool(self._states)

    def admit(
        self, key_id: str | None, request: Any, estimates: TokenEstimates = CHAT_ESTIMATES
    ) -> KeyTicket | None:
        """Raise ``RateLimitError`` when the key may not make this request now (``estimates``: the
        token estimates of the request's operation)."""
        state = self._states.get(key_id) if key_id is not None else None
        if state is None:
            return None
        if state.budget is not None:
            month, next_month = _month(self.wallclock())
            spent = state.spent if state.month == month else 0.0
            if spent >= state.budget:
                raise RateLimitError(
                    f"Gateway key '{state.name}' has used its monthly budget of ${state.budget:g} "
                    f"(spent ${spent:.4f} in {month} UTC).",
                    retry_after=next_month - self.wallclock(),
                    error_type="insufficient_quota",
                    code="budget_exceeded",
                )
        ticket = None
        limiter = state.limiter
        if limiter is not None:
            now = self.clock()
            tokens = 0
            if limiter.tpm is not None:
                tokens = estimates.prompt_tokens(request) + estimates.completion_tokens(request)
            ticket = limiter.try_acquire(now, tokens)
            if ticket is None:
                limit, wait = limiter.refusal(now, tokens)
                raise RateLimitError(
                    f"Gateway key '{state.name}' is over its limit of {_limit_value(limiter, limit)} "
                    f"{_LIMIT_WORDS.get(limit, limit)}.",
                    retry_after=max(wait, 0.001),
                )
        return KeyTicket(state, ticket)

    def finish(self, ticket: KeyTicket, tokens: int | None, cost_usd: float | None) -> None:
        """The request ended: free its slot, settle its tokens, add its cost to the month's spend."""
        state = ticket.state
        if ticket.ticket is not None and state.limiter is not None:
            state.limiter.release(ticket.ticket, tokens)
            ticket.ticket = None
        if cost_usd and state.budget is not None:
            month, _ = _month(self.wallclock())
            with state.lock:
                if state.month != month:
                    state.month, state.spent = month, 0.0
                state.spent += cost_usd

    def spent(self, key_id: str) -> float:
        """What ``key_id`` has spent this UTC month (USD)."""
        state = self._states.get(key_id)
        if state is None:
            return 0.0
        return state.spent if state.month == _month(self.wallclock())[0] else 0.0


def _limit_value(limiter: Limiter, limit: str) -> int | str:
    attribute = {"requests_per_minute": "rpm", "tokens_per_minute": "tpm"}.get(limit, "concurrent")
    value = getattr(limiter, attribute, None)
    return value if isinstance(value, int) else "?"


def _month(now: float) -> tuple[str, float]:
    """The UTC month of ``now`` (``YYYY-MM``) and the Unix time the next one starts."""
    year, month = time.gmtime(now)[:2]
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}", float(calendar.timegm((next_year, next_month, 1, 0, 0, 0)))

"""The circuit breaker of one deployment.

    closed --(failure_threshold consecutive failures, or failure_rate over window)--> open
    open --(timeout elapsed; the next admission is a probe)--> half_open
    half_open --(success_threshold successful probes)--> closed
    half_open --(a failure)--> open

Every method takes ``now`` from the router's clock (``time.monotonic`` unless a test injects one), so
schedules are tested without sleeping. State is shared by every event loop the gateway serves: the
closed-state checks read one attribute (atomic under the GIL) and take no lock; transitions and
probe accounting hold a ``threading.Lock`` for a few attribute writes, never across an ``await``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from .settings import BreakerConfig

__all__ = ["ADMIT", "CLOSED", "HALF_OPEN", "OPEN", "PROBE", "REFUSE", "CircuitBreaker"]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

REFUSE: Final = 0
ADMIT: Final = 1
PROBE: Final = 2
"""Admitted while half-open: the outcome decides whether the circuit closes."""

Listener = Callable[[str, str], None]


class CircuitBreaker:
    """One deployment's breaker. ``config=None`` or ``enabled: false`` makes it always closed."""

    __slots__ = (
        "_failed_in_window",
        "_lock",
        "_outcomes",
        "enabled",
        "failure_rate",
        "failure_threshold",
        "failures",
        "forced",
        "half_open_requests",
        "listener",
        "min_requests",
        "name",
        "opened_at",
        "probes",
        "state",
        "success_threshold",
        "successes",
        "timeout",
        "window",
    )

    def __init__(
        self, config: BreakerConfig | None, name: str = "", listener: Listener | None = None
    ) -> None:
        config = config or BreakerConfig(enabled=False)
        self.enabled = config.enabled
        self.name = name
        self.listener = listener
        self.failure_threshold = config.failure_threshold
        self.failure_rate = config.failure_rate
        self.window = config.window
        self.min_requests = config.min_requests
        self.timeout = config.timeout
        self.success_threshold = config.success_threshold
        self.half_open_requests = config.half_open_requests
        self.state: str = CLOSED
        self.failures = 0
        self.successes = 0
        self.probes = 0
        self.opened_at = 0.0
        self.forced = False
        """Opened by a failing health check rather than by calls."""
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failed_in_window = 0
        self._lock = threading.Lock()

    # -- admission ------------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Whether ``acquire`` would admit a call now (no side effects)."""
        state = self.state
        if state is CLOSED:
            return True
        if state is OPEN:
            return now >= self.opened_at + self.timeout
        return self.probes < self.half_open_requests

    def acquire(self, now: float) -> int:
        """``ADMIT``, ``PROBE`` (half-open: this call decides) or ``REFUSE``."""
        if self.state is CLOSED:
            return ADMIT
        with self._lock:
            if self.state is OPEN:
                if now < self.opened_at + self.timeout:
                    return REFUSE
                self._enter(HALF_OPEN, now)
            if self.state is HALF_OPEN:
                if self.probes >= self.half_open_requests:
                    return REFUSE
                self.probes += 1
                return PROBE
            return ADMIT

    def retry_in(self, now: float) -> float:
        """Seconds until an open circuit lets a probe through (0 when it would now)."""
        if self.state is OPEN:
            return max(0.0, self.opened_at + self.timeout - now)
        return 0.0

    # -- outcomes -------------------------------------------------------------------------------

    def success(self, now: float, admission: int = ADMIT) -> None:
        if admission != PROBE and not self.failures and self.failure_rate is None:
            return  # the common case: closed and healthy, nothing to write
        with self._lock:
            if admission == PROBE:
                self.probes = max(0, self.probes - 1)
                if self.state is HALF_OPEN:
                    self.successes += 1
                    if self.successes >= self.success_threshold:
                        self._enter(CLOSED, now)
                return
            self.failures = 0
            if self.failure_rate is not None and self.state is CLOSED:
                self._record(now, ok=True)

    def failure(self, now: float, admission: int = ADMIT) -> None:
        if not self.enabled:
            return
        with self._lock:
            if admission == PROBE:
                self.probes = max(0, self.probes - 1)
            if self.state is HALF_OPEN:
                self._enter(OPEN, now)
            elif self.state is CLOSED:
                self.failures += 1
                tripped = self.failures >= self.failure_threshold
                if self.failure_rate is not None:
                    total = self._record(now, ok=False)
                    tripped = tripped or (
                        total >= self.min_requests and self._failed_in_window >= self.failure_rate * total
                    )
                if tripped:
                    self._enter(OPEN, now)

    def neutral(self, admission: int) -> None:
        """The call ended without saying anything about the deployment (a 4xx, a cancellation)."""
        if admission == PROBE:
            with self._lock:
                self.probes = max(0, self.probes - 1)

    # -- outside signals (health checks) --------------------------------------------------------

    def force_open(self, now: float) -> None:
        if self.enabled and self.state is not OPEN:
            with self._lock:
                self._enter(OPEN, now)
                self.forced = True

    def recover(self, now: float) -> None:
        """A health check passed. A circuit the checks opened closes at once (half-open, it let one
        probe through and refused the rest of a burst: 9 of 10 requests got 503); one that calls
        opened goes half-open, since the check does not prove that calls work."""
        if self.forced:
            with self._lock:
                if self.forced:
                    self._enter(CLOSED, now)
                    return
        self.allow_probe(now)

    def adopt_open(self, now: float, retry_in: float) -> None:
        """Another process opened this circuit: keep it open here until the same moment."""
        if not self.enabled:
            return
        with self._lock:
            if self.state is not OPEN:
                self._enter(OPEN, now)
            self.opened_at = max(self.opened_at, now + retry_in - self.timeout)

    def allow_probe(self, now: float) -> None:
        """An open circuit goes half-open at once (a health check just succeeded)."""
        if self.state is OPEN:
            with self._lock:
                if self.state is OPEN:
                    self._enter(HALF_OPEN, now)

    # -- internals ------------------------------------------------------------------------------

    def _enter(self, state: str, now: float) -> None:
        previous = self.state
        self.state = state
        self.successes = 0
        self.forced = False
        if state is OPEN:
            self.opened_at = now
            self.probes = 0
        elif state is HALF_OPEN:
            self.probes = 0
        else:
            self.failures = 0
            self._outcomes.clear()
            self._failed_in_window = 0
        if previous is not state and self.listener is not None:
            self.listener(self.name, state)

    def _record(self, now: float, *, ok: bool) -> int:
        outcomes = self._outcomes
        outcomes.append((now, ok))
        if not ok:
            self._failed_in_window += 1
        cutoff = now - self.window
        while outcomes and outcomes[0][0] <= cutoff:
            if not outcomes.popleft()[1]:
                self._failed_in_window -= 1
        return len(outcomes)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The state for ``GET /providers/{name}/stats``."""
        data: dict[str, Any] = {"state": self.state if self.enabled else "disabled"}
        if self.enabled:
            data["consecutive_failures"] = self.failures
            if self.state is OPEN:
                data["retry_in_s"] = round(self.retry_in(now), 3)
        return data

"""Recent latencies of one deployment: a sliding window (by time and count) and its percentiles.

Recording is one ``deque.append`` (atomic in CPython, so no lock even with several event loops).
The ``latency`` strategy reads one percentile per deployment per decision; it is cached and
recomputed only when samples arrived or expired since the last read.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

__all__ = ["LatencyWindow", "percentile", "summarize"]

_STATS_SAMPLES: Final = 1024


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100, nearest rank) of an ascending, non-empty list."""
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


class LatencyWindow:
    """Latency samples (seconds) of the last ``window`` seconds.

    Two logs: the last ``samples`` for the strategy's percentile, and a longer one for statistics.
    """

    __slots__ = ("_cached", "_dirty", "_history", "_recent", "q", "ranked", "window")

    def __init__(
        self, window: float = 300.0, samples: int = 64, q: float = 50.0, *, ranked: bool = True
    ) -> None:
        self.window = window
        self.q = q
        self._recent: deque[tuple[float, float]] = deque(maxlen=samples)
        self._history: deque[tuple[float, float]] = deque(maxlen=_STATS_SAMPLES)
        self._cached = -1.0
        self._dirty = False
        self.ranked = ranked
        """True when a ``latency`` group ranks this deployment (only then is the short log kept)."""

    def add(self, now: float, seconds: float) -> None:
        sample = (now, seconds)
        self._history.append(sample)
        if self.ranked:
            self._recent.append(sample)
            self._dirty = True

    def score(self, now: float) -> float:
        """The configured percentile of the recent samples; -1 when there are none (so that an
        unmeasured deployment sorts first and gets measured)."""
        recent = self._recent
        cutoff = now - self.window
        expired = False
        try:
            while recent[0][0] <= cutoff:
                recent.popleft()
                expired = True
        except IndexError:  # empty (possibly emptied by another event loop's thread just now)
            pass
        if self._dirty or expired:
            self._dirty = False
            # list(deque) copies in one C call (no other thread runs meanwhile); iterating the deque
            # itself could meet an append from another loop's thread and raise.
            values = sorted([seconds for _, seconds in list(recent)])
            self._cached = percentile(values, self.q) if values else -1.0
        return self._cached

    def values(self, now: float) -> list[float]:
        """The samples of the last ``window`` seconds (up to the last 1024)."""
        cutoff = now - self.window
        return [seconds for started, seconds in list(self._history) if started > cutoff]

    def summary(self, now: float) -> dict[str, float | int | None]:
        return summarize(self.values(now))


def summarize(samples: list[float]) -> dict[str, float | int | None]:
    """Count, p50 and p95 (milliseconds) of latency samples (seconds)."""
    values = sorted(samples)
    if not values:
        return {"samples": 0, "p50_ms": None, "p95_ms": None}
    return {
        "samples": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p95_ms": round(percentile(values, 95) * 1000, 3),
    }

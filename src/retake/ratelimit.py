"""Fixed-window-with-sliding-log rate limiter, keyed by caller (IP or sender id).

In-process: with several nodes each enforces its own budget (documented in the README as a known limit).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from retake.config import parse_rate
from retake.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: str, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.count, self.window = parse_rate(rate)
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def hit(self, key: str, what: str) -> None:
        """Record one event for ``key`` or raise ``RateLimited`` with the seconds until the next is allowed."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._evict(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.count:
            retry_after = max(1.0, hits[0] + self.window - now)
            raise RateLimited(f"too many {what}; try again in {int(retry_after + 0.999)} s", retry_after=retry_after)
        hits.append(now)

    def _evict(self, now: float) -> None:
        # Bounded memory under a flood of distinct keys: drop keys whose whole log is outside the window.
        stale = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self._max_keys:
            self._hits.clear()

"""Rate limits: a token bucket (a burst, then a steady rate) per key, kept in memory per server.

Two are used: per token for authenticated requests, and per client address for requests that bring
no valid token (so guessing tokens, or flooding with garbage, costs the guesser, not the server).
Buckets of idle keys are dropped once there are more than `max_keys`, so an address scan cannot
grow the server's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Requests without a valid token that one client address may make: a few typos, not a guessing run.
AUTH_FAILURE_RATE = 1.0
AUTH_FAILURE_BURST = 10


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def take(self, key: str) -> float:
        """0 if the request may go ahead now, else the seconds until it may (for Retry-After)."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))  # re-inserted last: oldest first
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if len(self._buckets) >= self.max_keys:
            self._forget(now)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Drop buckets that have refilled (they hold nothing a new bucket would not), then the oldest."""
        refill = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
        keep = self.max_keys * 9 // 10  # room for the next many keys: the sweep is amortised
        for key in list(self._buckets)[: max(0, len(self._buckets) - keep)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)

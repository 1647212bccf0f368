"""Per-agent rate limiting: a token bucket per agent, in this process's memory.

Each agent may make ``per_minute`` requests per minute, in bursts of up to ``per_minute``.
The counters live in the API process: with N API processes behind a load balancer an agent
can make up to N times ``per_minute`` requests per minute in total, and a restart forgets them.
Checking costs a dictionary look-up and a little arithmetic, no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by agent. ``per_minute = 0`` turns limiting off."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, _Bucket] = {}

    def acquire(self, key: Hashable) -> int | None:
        """Take one token for ``key``: None when allowed, else the whole seconds to wait
        before the next token (the ``Retry-After``)."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._evict_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        else:
            refill = (now - bucket.updated) * self._rate
            bucket.tokens = min(float(self.per_minute), bucket.tokens + refill)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def _evict_idle(self, now: float) -> None:
        """Forget buckets that have refilled completely (their agents went quiet), so
        memory stays bounded by the number of recently active agents."""
        if len(self._buckets) < self._max_keys:
            return
        full_after = 60.0  # seconds for an empty bucket to refill
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]

"""Server-side rate-limit algorithms, on a clock that can run S times faster than real time.

All times are real epoch seconds; a group's window lasts ``window_seconds / S`` real seconds.
State lives in memory only: a restart starts every bucket afresh (documented in README).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # real epoch seconds (float); headers round it up
    retry_after: float  # real seconds until a request could succeed; 0 when allowed


class Bucket:
    def acquire(self, now: float, limit: int, window: float) -> Decision:
        raise NotImplementedError


class FixedWindow(Bucket):
    """Windows aligned to multiples of the real window length since the Unix epoch."""

    def __init__(self) -> None:
        self.index = -1
        self.count = 0

    def acquire(self, now: float, limit: int, window: float) -> Decision:
        index = math.floor(now / window)
        if index != self.index:
            self.index, self.count = index, 0
        reset_at = (index + 1) * window
        if self.count >= limit:
            return Decision(False, limit, 0, reset_at, reset_at - now)
        self.count += 1
        return Decision(True, limit, limit - self.count, reset_at, 0.0)


class SlidingLog(Bucket):
    """At most ``limit`` accepted requests in any interval of one window length."""

    def __init__(self) -> None:
        self.log: deque[float] = deque()

    def acquire(self, now: float, limit: int, window: float) -> Decision:
        while self.log and self.log[0] <= now - window:
            self.log.popleft()
        if len(self.log) >= limit:
            free_at = self.log[0] + window
            return Decision(False, limit, 0, free_at, free_at - now)
        self.log.append(now)
        # "Reset" here is when the oldest request in the log leaves it, freeing one slot.
        return Decision(True, limit, limit - len(self.log), self.log[0] + window, 0.0)


class TokenBucket(Bucket):
    """Capacity ``limit``, refilled continuously at ``limit`` tokens per window."""

    def __init__(self) -> None:
        self.tokens: float | None = None
        self.last = 0.0

    def acquire(self, now: float, limit: int, window: float) -> Decision:
        rate = limit / window
        if self.tokens is None:
            self.tokens = float(limit)
        else:
            self.tokens = min(float(limit), self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens < 1.0:
            wait = (1.0 - self.tokens) / rate
            return Decision(False, limit, 0, now + wait, wait)
        self.tokens -= 1.0
        # "Reset" here is when the bucket would be full again.
        return Decision(
            True, limit, math.floor(self.tokens), now + (limit - self.tokens) / rate, 0.0
        )


_KINDS: dict[str, type[Bucket]] = {
    "fixed": FixedWindow,
    "sliding": SlidingLog,
    "token": TokenBucket,
}


class RateLimiter:
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def reset(self, algorithm: str | None = None) -> None:
        if algorithm is not None:
            self.algorithm = algorithm
        self.buckets.clear()

    def acquire(
        self, workspace: str, group: str, now: float, limit: int, window: float
    ) -> Decision:
        bucket = self.buckets.get((workspace, group))
        if bucket is None:
            bucket = self.buckets[(workspace, group)] = _KINDS[self.algorithm]()
        return bucket.acquire(now, limit, window)

"""A per-principal token bucket for mutations (per gateway process).

Each worker keeps its own buckets: with N workers a client can reach N times the rate
at worst. That bounds abuse from a stolen key without a shared store; see docs/scaling.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from graphql import GraphQLError


class RateLimited(GraphQLError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many mutations from this key; retry in {retry_after_s:.1f}s",
            extensions={"code": "RATE_LIMITED", "retryAfterSeconds": round(retry_after_s, 1)},
        )


class RateLimiter:
    MAX_BUCKETS = 10_000  # bound memory: oldest buckets are dropped first

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._refusal_listeners: list[Callable[[], None]] = []

    def on_refusal(self, listener: Callable[[], None]) -> None:
        """Call `listener` at each refusal (the app's metrics count them)."""
        self._refusal_listeners.append(listener)

    def take(self, subject: str) -> None:
        """Spend one token for `subject` or raise RateLimited."""
        retry_after_s = self.retry_after_s(subject)
        if retry_after_s is not None:
            for listener in self._refusal_listeners:
                listener()
            raise RateLimited(retry_after_s)

    def retry_after_s(self, subject: str) -> float | None:
        """Spend one token for `subject` and return None, or return how long until
        one is available (spending nothing)."""
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.pop(subject, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_s)
            if tokens < 1:
                self._buckets[subject] = (tokens, now)
                return (1 - tokens) / self.refill_per_s
            self._buckets[subject] = (tokens - 1, now)
            if len(self._buckets) > self.MAX_BUCKETS:
                del self._buckets[next(iter(self._buckets))]
            return None

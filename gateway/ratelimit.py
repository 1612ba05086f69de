"""A per-principal token bucket for mutations (per gateway process).

Each worker keeps its own buckets: with N workers a client can reach N times the rate
at worst. That bounds abuse from a stolen key without a shared store; see docs/scaling.md.
"""

from __future__ import annotations

import hashlib
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
    # Bound memory. Past it, buckets that refilled are dropped (they hold nothing a
    # new one would not), then the fullest: never the throttled ones first, or a
    # flood of made-up subjects would reset a guessed user's allowance.
    MAX_BUCKETS = 10_000

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._refusal_listeners: list[Callable[[], None]] = []

    @property
    def subject_count(self) -> int:
        """How many subjects it keeps a bucket for (bounded by MAX_BUCKETS)."""
        return len(self._buckets)

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
        # A fixed-size key: a subject is whatever a caller sent (a sign-in's username).
        key = hashlib.blake2b(subject.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.refill_per_s
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self.MAX_BUCKETS:
                self._shrink(now)
            return None

    def _tokens(self, key: bytes, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - updated) * self.refill_per_s)

    def _shrink(self, now: float) -> None:
        """Down to nine tenths of the bound, keeping the most throttled buckets
        (amortised: one sort per tenth of the bound of new subjects)."""
        by_tokens = sorted(self._buckets, key=lambda key: self._tokens(key, now))
        for key in by_tokens[self.MAX_BUCKETS * 9 // 10 :]:
            del self._buckets[key]

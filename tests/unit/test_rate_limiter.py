"""The per-subject token bucket behind the sign-in throttle and the mutation limit."""

from __future__ import annotations

import tracemalloc

import pytest

from gateway.ratelimit import RateLimited, RateLimiter


def test_a_flood_of_new_subjects_does_not_reset_a_throttled_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An attacker guessing maria's password runs out of tries, then sends sign-ins
    for thousands of made-up names to push her bucket out: she stays throttled."""
    monkeypatch.setattr(RateLimiter, "MAX_BUCKETS", 100)
    limiter = RateLimiter(per_minute=3)
    for _ in range(3):
        limiter.take("maria")
    with pytest.raises(RateLimited):
        limiter.take("maria")

    for n in range(1_000):
        limiter.take(f"made-up-{n}")

    assert limiter.retry_after_s("maria") is not None
    assert limiter.subject_count <= 100


def test_the_memory_kept_does_not_grow_with_what_callers_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subject is what a caller sent (a sign-in's username, up to the body limit):
    ten buckets for 100 kB names keep far less than one such name."""
    monkeypatch.setattr(RateLimiter, "MAX_BUCKETS", 10)
    limiter = RateLimiter(per_minute=5)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for n in range(50):
            limiter.take(f"{n}-" + "x" * 100_000)  # a new string each, as a request's
        kept = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
    assert limiter.subject_count <= 10
    assert sum(stat.size_diff for stat in kept) < 50_000
    # Distinct subjects still have buckets of their own, long or short.
    long_name = "y" * 100_000
    for _ in range(5):
        limiter.take(long_name)
    assert limiter.retry_after_s(long_name) is not None
    assert limiter.retry_after_s(long_name[:-1]) is None

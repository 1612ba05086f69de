"""Shared by the audit benches: a store with N journal entries, saved in batches."""

from __future__ import annotations

import time
from datetime import date, timedelta

from gateway.runtime import Runtime
from services.ledger.domain import Cause, JournalEntry, Posting, Side

BATCH = 1_000  # entries per save(): one DB round trip each


def fill(runtime: Runtime, entries: int) -> float:
    """Post `entries` prepared entries (3 postings each); returns seconds taken."""
    chart = runtime.ledger.chart()
    started = time.perf_counter()
    start_day = date(2024, 1, 1)
    for first in range(0, entries, BATCH):
        batch = [
            JournalEntry.post(
                chart=chart,
                effective_date=start_day + timedelta(days=i % 730),
                description=f"bench sale {i}",
                postings=[
                    Posting("1000", Side.DEBIT, 1220 + i % 100),
                    Posting("4100", Side.CREDIT, 1000 + i % 100),
                    Posting("2000", Side.CREDIT, 220),
                ],
                cause=Cause(f"bench:{i}", "bench"),
                limits=runtime.ledger.limits,
            )
            for i in range(first, min(first + BATCH, entries))
        ]
        runtime.ledger.save(*batch)
    return time.perf_counter() - started

"""fundBalance(asOf) latency at two history sizes: the lookup must not grow with it.

    python -m bench.fund_balance --events 10000 --events 1000000 \
        [--database-url postgresql://postgres@127.0.0.1:5432/bench]

For each size: a fresh store, N ledger events (shop sales and hotel stays over the same
three years, saved in batches of prepared journal entries), the accrual process and
projections caught up, then `samples` fundBalance lookups at random dates. Prints
p50/p99 per size and the ratio of the largest size's p99 to the smallest's.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import date, timedelta

from gateway.runtime import Runtime
from services.common.database import ensure_schema
from services.common.settings import Settings
from services.ledger.domain import Cause, Posting, Side
from services.welfare_fund.domain import Stream
from services.welfare_fund.projections import queries

START = date(2022, 1, 1)
DAYS = 3 * 365
BATCH = 500
WARM_UP_QUERIES = 200


def _settings(database_url: str | None) -> Settings:
    if database_url:
        settings = Settings(
            database_url=database_url, database_schema=f"bench_{uuid.uuid4().hex[:8]}"
        )
        ensure_schema(settings)
        return settings
    return Settings(database_url=f"sqlite:///{tempfile.mkdtemp()}/bench.db")


def _generate(runtime: Runtime, events: int) -> None:
    rng = random.Random(events)
    runtime.welfare.set_policy(
        key="bench-policy",
        actor="bench",
        effective_from=START,
        shares=[(Stream.HOTEL, 50_000), (Stream.SHOP, 100_000)],
    )
    days = sorted(START + timedelta(days=rng.randrange(DAYS)) for _ in range(events))
    for first in range(0, events, BATCH):
        entries = []
        for n in range(first, min(first + BATCH, events)):
            cents = rng.randint(300, 20_000)
            account = "4100" if n % 2 else "4000"
            entries.append(
                runtime.ledger.prepare_entry(
                    effective_date=days[n],
                    description="Benchmark sale",
                    postings=[
                        Posting("1000", Side.DEBIT, cents),
                        Posting(account, Side.CREDIT, cents),
                    ],
                    cause=Cause(f"bench:{n}", "bench"),
                )
            )
        runtime.ledger.save(*entries)


async def _measure(runtime: Runtime, samples: int) -> list[float]:
    rng = random.Random(1)
    timings: list[float] = []
    programs = runtime.welfare.programs.programs
    reads = runtime.lone_reads  # as the gateway reads it
    # Warm the connections and the page cache first: the figures are steady state.
    for n in range(WARM_UP_QUERIES):
        await queries.fund_balance(reads, START + timedelta(days=n % DAYS), programs)
    for _ in range(samples):
        day = START + timedelta(days=rng.randrange(DAYS))
        started = time.perf_counter()
        await queries.fund_balance(reads, day, programs)
        timings.append(time.perf_counter() - started)
    await runtime.aclose()
    return timings


def run(events: int, samples: int, database_url: str | None) -> tuple[float, float]:
    runtime = Runtime(_settings(database_url))
    started = time.perf_counter()
    _generate(runtime, events)
    generated = time.perf_counter() - started
    runtime.projector.run_until_caught_up()
    caught_up = time.perf_counter() - started - generated
    head = runtime.projector.head()
    timings = asyncio.run(_measure(runtime, samples))
    p50 = statistics.median(timings) * 1000
    p99 = statistics.quantiles(timings, n=100)[98] * 1000
    print(
        f"{events:>9} ledger events (log head {head}): generated in {generated:.0f}s, "
        f"accrued and projected in {caught_up:.0f}s; fundBalance p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms"
    )
    return p50, p99


def remeasure(urls: list[str], samples: int, rounds: int) -> None:
    """Measure existing stores again, interleaved round by round, so that machine noise
    (other processes, cache warmth) hits every size alike."""
    timings: dict[str, list[float]] = {url: [] for url in urls}
    for _ in range(rounds):
        for url in urls:
            runtime = Runtime(Settings(database_url=url, run_projector_in_process=False))
            timings[url] += asyncio.run(_measure(runtime, samples // rounds))
    for url, values in timings.items():
        p50 = statistics.median(values) * 1000
        p99 = statistics.quantiles(values, n=100)[98] * 1000
        print(f"{url}: fundBalance p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(values)} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, action="append")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--existing", action="append", help="only measure this store again (repeatable)"
    )
    args = parser.parse_args()
    if args.existing:
        remeasure(args.existing, args.samples, rounds=5)
        return
    sizes = args.events or [10_000, 1_000_000]
    results = [run(n, args.samples, args.database_url) for n in sizes]
    print(f"p99 ratio largest/smallest: {results[-1][1] / results[0][1]:.2f}")
    print(f"p50 ratio largest/smallest: {results[-1][0] / results[0][0]:.2f}")


if __name__ == "__main__":
    main()

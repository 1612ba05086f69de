"""Journal entries per second through `LedgerApplication.post_entry`, against bare saves.

The yardstick is measured in the same run, on the same events table: a trivial
one-event aggregate saved through a plain `CoopApplication`. That is what the event
store itself costs; the ratio says how much of it the ledger keeps. Target: >= 50%.

A posted entry does more than a bare save, by design: it reads the chart of accounts
(cached, fast-forwarded with one query), validates the postings, hashes the request
and saves two events in one transaction (the entry and its idempotency claim).

    python -m bench.ledger_write                      # both backends, 1 and 8 threads, 3 s each
    python -m bench.ledger_write --backend sqlite --count 2000 --threads 1 2 4
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from uuid import uuid4

from eventsourcing.domain import Aggregate

from bench.stores import (
    Backend,
    Store,
    add_store_arguments,
    describe_machine,
    describe_postgres,
    describe_sqlite,
    open_store,
    postgres_problem,
    selected_backends,
)
from services.common.eventstore import CoopApplication
from services.ledger.application import LedgerApplication
from services.ledger.domain import Posting, Side

TARGET_RATIO = 0.50
WARMUP_OPERATIONS = 20

# A charity-shop sale at 22% VAT: three postings, the common shape.
SALE_POSTINGS = (
    Posting("1000", Side.DEBIT, 1220),
    Posting("4100", Side.CREDIT, 1000),
    Posting("2000", Side.CREDIT, 220),
)

# (thread number, that thread's operation number) -> one operation.
Operation = Callable[[int, int], None]


class Probe(Aggregate):
    """The cheapest thing the store can save: a new aggregate with one event."""

    class Started(Aggregate.Created):
        label: str

    def __init__(self, label: str) -> None:
        self.label = label


@dataclass(frozen=True)
class Measurement:
    operations: int
    seconds: float
    cpu_seconds: float  # this process, all threads: the Python side's cost
    errors: int
    first_error: str | None

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_operation(self) -> float:
        return 1000 * self.cpu_seconds / self.operations if self.operations else 0.0


def run_threads(
    operation: Operation, threads: int, *, seconds: float | None, count: int | None
) -> Measurement:
    """Run `operation` on `threads` threads, for `seconds` or `count` operations in all."""
    start_line = threading.Barrier(threads + 1)
    done = [0] * threads
    errors = [0] * threads
    first_errors: list[str] = []

    def budget(thread_no: int) -> int | None:
        if count is None:
            return None
        return count // threads + (1 if thread_no < count % threads else 0)

    def worker(thread_no: int) -> None:
        limit = budget(thread_no)
        start_line.wait()
        deadline = time.perf_counter() + seconds if seconds is not None else None
        n = 0
        while True:
            if limit is not None and n >= limit:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            try:
                operation(thread_no, n)
                done[thread_no] += 1
            except Exception as exc:  # counted and shown, never hidden
                errors[thread_no] += 1
                if not first_errors:
                    first_errors.append(f"{type(exc).__name__}: {exc}")
            n += 1

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    cpu_before = _process_cpu_seconds()
    start_line.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    cpu = _process_cpu_seconds() - cpu_before
    return Measurement(
        sum(done), elapsed, cpu, sum(errors), first_errors[0] if first_errors else None
    )


def _process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_saver(app: CoopApplication, prefix: str) -> Operation:
    def save(thread_no: int, n: int) -> None:
        app.save(Probe(f"{prefix}:{thread_no}:{n}"))

    return save


def entry_poster(ledger: LedgerApplication, prefix: str) -> Operation:
    effective_date = date.today()

    def post(thread_no: int, n: int) -> None:
        outcome = ledger.post_entry(
            key=f"bench:{prefix}:{thread_no}:{n}",
            actor="bench",
            effective_date=effective_date,
            description="Charity shop sale",
            postings=SALE_POSTINGS,
        )
        if outcome.replayed:
            raise RuntimeError("a fresh idempotency key was answered as a replay")

    return post


@dataclass(frozen=True)
class Row:
    backend: Backend
    threads: int
    bare: Measurement
    ledger: Measurement

    @property
    def ratio(self) -> float:
        return self.ledger.per_second / self.bare.per_second if self.bare.per_second else 0.0


HEADER = (
    f"{'backend':<9} {'threads':>7} {'bare saves/s':>13} {'ledger entries/s':>17} "
    f"{'ratio':>6}  {'target':<12} {'bare n':>7} {'ledger n':>8} {'errors':>6} "
    f"{'CPU ms/op bare':>14} {'ledger':>6}"
)


def format_row(row: Row) -> str:
    verdict = "met" if row.ratio >= TARGET_RATIO else "MISSED"
    target = f">= {TARGET_RATIO:.0%} {verdict}"
    return (
        f"{row.backend:<9} {row.threads:>7} {row.bare.per_second:>13,.0f} "
        f"{row.ledger.per_second:>17,.0f} {row.ratio:>6.0%}  {target:<12} "
        f"{row.bare.operations:>7} {row.ledger.operations:>8} "
        f"{row.bare.errors + row.ledger.errors:>6} "
        f"{row.bare.cpu_ms_per_operation:>14.2f} {row.ledger.cpu_ms_per_operation:>6.2f}"
    )


def measure_backend(
    store: Store,
    thread_counts: Sequence[int],
    *,
    seconds: float | None,
    count: int | None,
    repeat: int,
) -> list[Row]:
    store.destroy()
    store.create()
    ledger = LedgerApplication(store.settings)
    bare = CoopApplication(store.settings)
    rows: list[Row] = []
    try:
        ledger.ensure_chart()
        run = uuid4().hex[:8]
        # Warm both paths (connections, statement caches, the chart in the cache).
        run_threads(bare_saver(bare, f"{run}-warm"), 1, seconds=None, count=WARMUP_OPERATIONS)
        run_threads(entry_poster(ledger, f"{run}-warm"), 1, seconds=None, count=WARMUP_OPERATIONS)
        for threads in thread_counts:
            bare_runs: list[Measurement] = []
            ledger_runs: list[Measurement] = []
            for attempt in range(repeat):  # alternated, so drift hits both alike
                prefix = f"{run}-{threads}-{attempt}"
                saver, poster = bare_saver(bare, prefix), entry_poster(ledger, prefix)
                bare_runs.append(run_threads(saver, threads, seconds=seconds, count=count))
                ledger_runs.append(run_threads(poster, threads, seconds=seconds, count=count))
            for m in (*bare_runs, *ledger_runs):
                if m.first_error:
                    print(f"  first error: {m.first_error}", flush=True)
            row = Row(store.backend, threads, _fastest(bare_runs), _fastest(ledger_runs))
            print(format_row(row), flush=True)
            rows.append(row)
    finally:
        ledger.close()
        bare.close()
        store.destroy()
    return rows


def _fastest(runs: Sequence[Measurement]) -> Measurement:
    # Noise (other processes, checkpoints) only ever slows a run down.
    return max(runs, key=lambda m: m.per_second)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger_write",
        description="Journal entries/s through post_entry vs bare aggregate saves/s.",
    )
    add_store_arguments(parser)
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--seconds", type=float, default=None, help="length of each measurement (default: 3)"
    )
    amount.add_argument(
        "--count", type=int, default=None, help="operations per measurement, over all threads"
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 8], help="thread counts (default: 1 8)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each path this many times (alternating) and keep each one's fastest "
        "run (default: 1)",
    )
    args = parser.parse_args(argv)
    if args.seconds is None and args.count is None:
        args.seconds = 3.0
    if any(t < 1 for t in args.threads) or args.repeat < 1:
        parser.error("--threads and --repeat must be at least 1")
    if (args.seconds is not None and args.seconds <= 0) or (
        args.count is not None and args.count < 1
    ):
        parser.error("--seconds and --count must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    amount = f"{args.seconds:g} s" if args.seconds is not None else f"{args.count} operations"
    print(f"ledger_write: {describe_machine()}; {amount} per measurement", flush=True)
    stores: list[Store] = []
    for backend in selected_backends(args.backend):
        if backend == "postgres":
            problem = postgres_problem(args.postgres_url)
            if problem is not None:
                print(f"postgres: SKIPPED, {args.postgres_url} unreachable ({problem})")
                continue
            print(describe_postgres(args.postgres_url), flush=True)
        else:
            print(describe_sqlite(), flush=True)
        stores.append(
            open_store(
                backend,
                f"write_{os.getpid()}",
                postgres_url=args.postgres_url,
                sqlite_dir=args.sqlite_dir,
            )
        )
    rows: list[Row] = []
    if stores:
        print(HEADER, flush=True)
    for store in stores:
        rows += measure_backend(
            store, args.threads, seconds=args.seconds, count=args.count, repeat=args.repeat
        )
    if rows:
        print(
            "bare = one new aggregate, one event per save; ledger = post_entry: chart read, "
            "validation, two events (entry + idempotency claim) per save\n"
            "CPU ms/op = this process's CPU time (all threads) per operation: the Python "
            "side's cost, which commit latency does not blur"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

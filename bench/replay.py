"""Replay speed: rebuilding the ledger read models against a plain read of the log.

At N events (default 100,000: the chart of accounts, then realistic journal entries
year after year from bench/entries.py, one event per entry), two figures in events/s:

- plain:   the notification log read in pages of 1,000 and every notification
           decoded to a domain event. The floor cost of any replay.
- rebuild: `ProjectionRunner.rebuild()` of the ledger projection: empty its tables,
           then read, decode, fold and write every page with its tracking row. By
           default as `coop projections rebuild` runs it, with worker processes
           reading and preparing pages while the runner writes (`--workers 0`: serial).

The ratio rebuild/plain says how much the projection adds. Target: >= 45%.

    python -m bench.replay                          # both backends, 100,000 events
    python -m bench.replay --backend sqlite --events 20000 --keep
    python -m bench.replay --workers 0              # the serial rebuild
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from bench.entries import year_of_entries
from bench.stores import (
    Store,
    add_store_arguments,
    describe_machine,
    describe_postgres,
    describe_sqlite,
    open_store,
    postgres_problem,
    selected_backends,
)
from services.common.database import (
    create_sync_engine,
    create_tables,
    metadata,
    projection_tracking,
)
from services.common.projections import (
    ProjectionRunner,
    can_fork_workers,
    default_rebuild_workers,
)
from services.ledger.application import LedgerApplication
from services.ledger.domain import Cause, JournalEntry
from services.ledger.projections.projector import LedgerProjection
from services.ledger.projections.tables import ledger_entries, ledger_lines

TARGET_RATIO = 0.45
SAVE_BATCH = 500
FIRST_YEAR = 2000
ACTOR = "bench"


def journal_entries(ledger: LedgerApplication) -> Iterator[JournalEntry]:
    """Realistic entries year after year (each year's causes are its own), as aggregates.

    Built as `ledger.prepare_entry` builds them (same validation, same event), with
    the chart loaded once instead of once per entry.
    """
    chart = ledger.chart()
    for year in itertools.count(FIRST_YEAR):
        for spec in year_of_entries(year):
            yield JournalEntry.post(
                chart=chart,
                effective_date=spec.effective_date,
                description=spec.description,
                postings=spec.postings,
                cause=Cause(spec.cause_id, ACTOR),
                limits=ledger.limits,
            )


def head(ledger: LedgerApplication) -> int:
    return ledger.recorder.max_notification_id() or 0


def generate(ledger: LedgerApplication, events: int) -> None:
    """Fill an empty store with exactly `events` events."""
    started = time.perf_counter()
    ledger.ensure_chart()
    wanted = events - head(ledger)
    if wanted < 0:
        raise SystemExit(f"--events must be at least {head(ledger)} (the chart's own events)")
    entries = journal_entries(ledger)
    while wanted > 0:
        batch = list(itertools.islice(entries, min(SAVE_BATCH, wanted)))
        ledger.save(*batch)
        wanted -= len(batch)
    elapsed = time.perf_counter() - started
    print(
        f"  generated {events:,} events in {elapsed:.1f} s ({events / elapsed:,.0f} events/s)",
        flush=True,
    )


def plain_read(ledger: LedgerApplication, page_size: int) -> int:
    """Read the whole log in pages and decode every notification; return how many."""
    recorder, mapper = ledger.recorder, ledger.mapper
    position = 0
    decoded = 0
    while True:
        page = recorder.select_notifications(position, limit=page_size, inclusive_of_start=False)
        for notification in page:
            mapper.to_domain_event(notification)
        decoded += len(page)
        if len(page) < page_size:
            return decoded
        position = page[-1].id


@dataclass(frozen=True)
class Timing:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Row:
    store: Store
    events: int
    plain: Timing
    rebuild: Timing
    entries_rows: int
    lines_rows: int

    @property
    def ratio(self) -> float:
        return self.rebuild.per_second / self.plain.per_second if self.plain.per_second else 0.0


HEADER = (
    f"{'backend':<9} {'events':>9} {'plain events/s':>15} {'rebuild events/s':>17} "
    f"{'ratio':>6}  {'target':<12} {'plain s':>8} {'rebuild s':>9} {'entries':>8} {'lines':>8}"
)


def format_row(row: Row) -> str:
    verdict = "met" if row.ratio >= TARGET_RATIO else "MISSED"
    target = f">= {TARGET_RATIO:.0%} {verdict}"
    return (
        f"{row.store.backend:<9} {row.events:>9,} {row.plain.per_second:>15,.0f} "
        f"{row.rebuild.per_second:>17,.0f} {row.ratio:>6.0%}  {target:<12} "
        f"{row.plain.seconds:>8.2f} {row.rebuild.seconds:>9.2f} "
        f"{row.entries_rows:>8,} {row.lines_rows:>8,}"
    )


def timed_plain(ledger: LedgerApplication, page_size: int) -> Timing:
    started = time.perf_counter()
    count = plain_read(ledger, page_size)
    return Timing(count, time.perf_counter() - started)


def timed_rebuild(
    ledger: LedgerApplication, engine: Engine, page_size: int, workers: int
) -> Timing:
    """Rebuild into freshly created (empty) read-model tables, so every run starts alike."""
    tables = [projection_tracking, *LedgerProjection.tables]
    metadata.drop_all(engine, tables=tables)
    create_tables(engine, LedgerProjection.tables)
    runner = ProjectionRunner(ledger, engine, [LedgerProjection()], page_size=page_size)
    started = time.perf_counter()
    count = runner.rebuild(workers=workers)
    return Timing(count, time.perf_counter() - started)


def count_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(ledger_entries)).scalar_one()
        lines = conn.execute(select(func.count()).select_from(ledger_lines)).scalar_one()
    return int(entries), int(lines)


def measure_backend(
    store: Store, *, events: int, page_size: int, keep: bool, repeat: int, workers: int
) -> Row:
    print(f"{store.backend}: {store.label}", flush=True)
    reuse = False
    if keep and store.exists():
        probe = LedgerApplication(store.settings)
        try:
            reuse = head(probe) == events
        finally:
            probe.close()
        print(
            f"  reusing its {events:,} events"
            if reuse
            else f"  it does not hold exactly {events:,} events: regenerating",
            flush=True,
        )
    if not reuse:
        store.destroy()
        store.create()
    ledger = LedgerApplication(store.settings)
    engine = create_sync_engine(store.settings)
    try:
        if not reuse:
            generate(ledger, events)
        plain_read(ledger, page_size)  # warm-up: connections, caches, the page cache
        plain = min((timed_plain(ledger, page_size) for _ in range(repeat)), key=_seconds)
        rebuild = min(
            (timed_rebuild(ledger, engine, page_size, workers) for _ in range(repeat)),
            key=_seconds,
        )
        entries_rows, lines_rows = count_rows(engine)
    finally:
        ledger.close()
        engine.dispose()
        if not keep:
            store.destroy()
    return Row(store, events, plain, rebuild, entries_rows, lines_rows)


def _seconds(timing: Timing) -> float:
    return timing.seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay",
        description="Ledger read-model rebuild events/s vs a plain decoded read of the log.",
    )
    add_store_arguments(parser)
    parser.add_argument(
        "--events", type=int, default=100_000, help="events in the log (default: 100000)"
    )
    parser.add_argument(
        "--page-size", type=int, default=1000, help="notifications per page (default: 1000)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each replay this many times and keep the fastest (default: 1)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated store (file replay_<N>.db or schema bench_replay_<N>) "
        "and reuse it on the next run with the same --events",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_rebuild_workers(),
        help="rebuild worker processes, 0 for a serial rebuild "
        f"(default here: {default_rebuild_workers()}, as `coop projections rebuild`)",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.page_size < 1 or args.repeat < 1:
        parser.error("--events, --page-size and --repeat must be at least 1")
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"replay: {describe_machine()}; {args.events:,} events, pages of {args.page_size}, "
        f"rebuild workers: {args.workers or 'none (serial)'}"
        f"{'' if args.workers == 0 or can_fork_workers() else ' (cannot fork here: serial)'}",
        flush=True,
    )
    rows: list[Row] = []
    for backend in selected_backends(args.backend):
        if backend == "postgres":
            problem = postgres_problem(args.postgres_url)
            if problem is not None:
                print(f"postgres: SKIPPED, {args.postgres_url} unreachable ({problem})")
                continue
            print(describe_postgres(args.postgres_url), flush=True)
        else:
            print(describe_sqlite(), flush=True)
        store = open_store(
            backend,
            f"replay_{args.events}",
            postgres_url=args.postgres_url,
            sqlite_dir=args.sqlite_dir,
        )
        row = measure_backend(
            store,
            events=args.events,
            page_size=args.page_size,
            keep=args.keep,
            repeat=args.repeat,
            workers=args.workers,
        )
        print(
            f"  plain {row.plain.per_second:,.0f} events/s, "
            f"rebuild {row.rebuild.per_second:,.0f} events/s",
            flush=True,
        )
        rows.append(row)
    if rows:
        print()
        print(HEADER)
        for row in rows:
            print(format_row(row))
        print(
            "plain = select_notifications pages + mapper.to_domain_event per notification; "
            "rebuild = ProjectionRunner.rebuild() of the ledger projection"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

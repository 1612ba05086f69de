"""Replay + diff figure: `python -m bench.audit_replay --events 1000000` (PostgreSQL).

Fills a fresh schema with N journal entries, projects them live, then times
`coop audit replay` (rebuild every registered read model into scratch + row diff).
"""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import text

from bench._audit_data import fill
from gateway.runtime import Runtime
from services.audit.replay import replay
from services.common.database import ensure_schema
from services.common.projections import default_rebuild_workers
from services.common.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes preparing pages (default: as `coop audit replay`; 0: serial)",
    )
    args = parser.parse_args()
    settings = Settings(database_url=args.url, database_schema=f"bench_{uuid.uuid4().hex[:8]}")
    ensure_schema(settings)
    runtime = Runtime(settings)
    try:
        fill_s = fill(runtime, args.events)
        started = time.perf_counter()
        runtime.projector.run_until_caught_up()
        project_s = time.perf_counter() - started
        started = time.perf_counter()
        report = replay(
            settings=settings,
            snapshot_engine=runtime.audit.read_engine,
            mapper=runtime.audit.mapper,
            projections=runtime.projector.projections,
            workers=args.workers,
        )
        replay_s = time.perf_counter() - started
        assert report.ok, report.differences[:5]
        print(f"events in store:        {report.events_read:,}")
        print(f"fill (batched saves):   {fill_s:.1f} s")
        print(f"live projection:        {project_s:.1f} s")
        print(f"rows compared:          {report.rows_compared:,}")
        workers = default_rebuild_workers() if args.workers is None else args.workers
        print(f"worker processes:       {workers}")
        print(
            f"replay + diff:          {replay_s:.1f} s "
            f"({report.events_read / replay_s:,.0f} events/s)"
        )
    finally:
        runtime.close_sync()
        with runtime.sync_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{settings.database_schema}" CASCADE'))
        runtime.sync_engine.dispose()


if __name__ == "__main__":
    main()

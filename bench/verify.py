"""Chain verification figure: `python -m bench.verify --events 100000` (PostgreSQL)."""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import text

from bench._audit_data import fill
from gateway.runtime import Runtime
from services.common.database import ensure_schema
from services.common.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    settings = Settings(database_url=args.url, database_schema=f"bench_{uuid.uuid4().hex[:8]}")
    ensure_schema(settings)
    runtime = Runtime(settings)
    try:
        fill(runtime, args.events)
        runtime.projector.run_until_caught_up()
        started = time.perf_counter()
        result = runtime.audit.verify()
        verify_s = time.perf_counter() - started
        assert result.ok
        print(
            f"verified {result.events_checked:,} events in {verify_s:.1f} s "
            f"({result.events_checked / verify_s:,.0f} events/s)"
        )
    finally:
        runtime.close_sync()
        with runtime.sync_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{settings.database_schema}" CASCADE'))
        runtime.sync_engine.dispose()


if __name__ == "__main__":
    main()

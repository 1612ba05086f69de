"""Replay into scratch storage and diff with the live read models, on real stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from gateway.runtime import Runtime
from services.audit.replay import ReplayReport, replay
from services.ledger.projections.tables import ledger_entries
from tests.integration.test_audit_chain import post


def run_replay(runtime: Runtime, **options: object) -> ReplayReport:
    return replay(
        settings=runtime.settings,
        snapshot_engine=runtime.audit.read_engine,
        mapper=runtime.audit.mapper,
        projections=runtime.projector.projections,
        **options,  # type: ignore[arg-type]
    )


def scratch_tables(runtime: Runtime) -> set[str]:
    with runtime.sync_engine.connect() as conn:
        if runtime.settings.is_postgres:
            rows = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audit_replay_%'")
            )
            return {r[0] for r in rows}
    return {p.name for p in runtime.settings.sqlite_path.parent.glob("*.replay-*.db")}


def test_replay_of_untouched_read_models_finds_no_difference(runtime: Runtime) -> None:
    post(runtime, 12)
    runtime.projector.run_until_caught_up()
    before = scratch_tables(runtime)
    seen: list[int] = []
    report = run_replay(runtime, progress=lambda position, head: seen.append(position))
    assert report.ok, report.differences
    head = runtime.ledger.recorder.max_notification_id()
    assert report.positions["ledger"] == head
    assert report.positions["audit_chain"] == head
    assert report.row_counts["ledger_entries"] == 12
    assert report.row_counts["ledger_lines"] == 24
    assert report.row_counts["audit_chain"] == report.events_read
    assert report.rows_compared > 12 + 24
    assert seen[-1] == head
    assert scratch_tables(runtime) == before  # the scratch is dropped afterwards


def test_replay_reports_tampered_live_rows_one_by_one(runtime: Runtime) -> None:
    post(runtime, 6)
    runtime.projector.run_until_caught_up()
    with runtime.sync_engine.begin() as conn:
        victim = conn.execute(
            select(ledger_entries.c.position).order_by(ledger_entries.c.position).limit(1)
        ).scalar_one()
        conn.execute(
            ledger_entries.update()
            .where(ledger_entries.c.position == victim)
            .values(description="edited behind the ledger's back", total_cents=1)
        )
        conn.execute(text("DELETE FROM ledger_daily_balances WHERE account_code = '4100'"))
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (code, name, account_type, is_open) "
                "VALUES ('9999', 'Not from any event', 'asset', true)"
            )
        )
    report = run_replay(runtime)
    assert not report.ok
    by_kind = {(d.table, d.kind) for d in report.differences}
    assert ("ledger_entries", "differs") in by_kind
    assert ("ledger_daily_balances", "missing in live") in by_kind
    assert ("ledger_accounts", "missing in replay") in by_kind
    edited = next(d for d in report.differences if d.kind == "differs")
    assert edited.key == {"position": victim}  # the entry's position in the log
    assert set(edited.columns) == {"description", "total_cents"}
    assert edited.replay is not None
    assert edited.replay["description"] == "sale 0"
    daily_missing = [d for d in report.differences if d.table == "ledger_daily_balances"]
    assert len(daily_missing) == 6  # one row per day that had a 4100 posting
    assert report.difference_count == 1 + 6 + 1


def test_replay_stops_at_the_live_snapshot_position(runtime: Runtime) -> None:
    post(runtime, 4)
    runtime.projector.run_until_caught_up()
    post(runtime, 3, start=4)  # written but not projected yet: live shows 4 entries
    report = run_replay(runtime)
    assert report.ok, report.differences
    assert report.row_counts["ledger_entries"] == 4
    assert report.events_read < (runtime.ledger.recorder.max_notification_id() or 0)


def test_replay_until_a_date_builds_the_state_known_then(runtime: Runtime) -> None:
    post(runtime, 5)
    runtime.projector.run_until_caught_up()
    today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
    report = run_replay(runtime, until=today - timedelta(days=1))
    try:
        assert report.kept
        assert report.differences == []  # no diff: live is today's state
        assert report.row_counts["ledger_entries"] == 0
        assert report.row_counts["audit_chain"] == 0
    finally:
        _drop(runtime, report)
    report = run_replay(runtime, until=today)
    try:
        assert report.row_counts["ledger_entries"] == 5
        assert report.row_counts["ledger_accounts"] > 30
        # A kept scratch is there to be queried: keys and indexes are all back.
        assert scratch_keys_and_indexes(runtime, report) == (
            ["position", "line_no"],
            {"ix_ledger_lines_account_date"},
        )
    finally:
        _drop(runtime, report)


def scratch_keys_and_indexes(runtime: Runtime, report: ReplayReport) -> tuple[list[str], set[str]]:
    """ledger_lines' primary key columns and index names in a kept scratch."""
    if runtime.settings.is_postgres:
        schema = report.scratch.removeprefix("schema ")
        found = inspect(runtime.sync_engine)
        key = found.get_pk_constraint("ledger_lines", schema=schema)["constrained_columns"]
        names = {str(i["name"]) for i in found.get_indexes("ledger_lines", schema=schema)}
        return list(key), names
    engine = create_engine(f"sqlite:///{report.scratch.removeprefix('file ')}")
    try:
        found = inspect(engine)
        key = found.get_pk_constraint("ledger_lines")["constrained_columns"]
        names = {str(i["name"]) for i in found.get_indexes("ledger_lines")}
        return list(key), names
    finally:
        engine.dispose()


def _drop(runtime: Runtime, report: ReplayReport) -> None:
    """Remove a kept scratch (tests only; the CLI tells the user where it is)."""
    with runtime.sync_engine.begin() as conn:
        if runtime.settings.is_postgres:
            schema = report.scratch.removeprefix("schema ")
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            Path(report.scratch.removeprefix("file ")).unlink()

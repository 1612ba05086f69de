"""Replay into scratch storage and diff with the live read models, on real stores."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import eventsourcing.domain
import pytest
from rich.console import Console
from sqlalchemy import Connection, Engine, create_engine, inspect, select, text
from typer.testing import CliRunner

import services.audit.replay as replay_module
import services.common.projections as projections_module
from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.audit.replay import ReplayReport, UnreadableEvent, replay
from services.common.database import create_sync_engine
from services.common.errors import ValidationError
from services.common.projections import ProjectionRunner
from services.common.settings import Settings, get_settings
from services.ledger.projections.projector import LedgerProjection
from services.ledger.projections.tables import ledger_entries
from services.welfare_fund.projections.tables import welfare_attendance, welfare_beneficiaries
from tests.integration.test_audit_chain import events_sql, post
from tests.integration.test_audit_chain_format import enrol_an_intern


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


def scratch_engine(runtime: Runtime, report: ReplayReport) -> Engine:
    """An engine on a kept scratch, to query it as an auditor would."""
    if runtime.settings.is_postgres:
        schema = report.scratch.removeprefix("schema ")
        return create_sync_engine(runtime.settings.model_copy(update={"database_schema": schema}))
    return create_engine(f"sqlite:///{report.scratch.removeprefix('file ')}")


def _drop(runtime: Runtime, report: ReplayReport) -> None:
    """Remove a kept scratch (tests only; the CLI tells the user where it is)."""
    with runtime.sync_engine.begin() as conn:
        if runtime.settings.is_postgres:
            schema = report.scratch.removeprefix("schema ")
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            Path(report.scratch.removeprefix("file ")).unlink()


# Worker processes read and prepare the ledger's pages (PostgreSQL, where forking
# beside the open snapshot is safe). Pages of a few events here, so a small log is
# cut into many ranges.
ON_POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


class CountingPreparers(projections_module.RangePreparers):
    yielded = 0

    def run(
        self, ranges: Sequence[tuple[int, int]], workers: int
    ) -> Generator[tuple[int, int, int, dict[str, Any]], None, None]:
        for prepared in super().run(ranges, workers):
            CountingPreparers.yielded += 1
            yield prepared


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "REPLAY_PAGE_SIZE", 7)
    monkeypatch.setattr(replay_module, "RangePreparers", CountingPreparers)
    CountingPreparers.yielded = 0


@ON_POSTGRES_ONLY
@pytest.mark.usefixtures("small_pages")
def test_a_replay_with_worker_processes_builds_what_a_serial_one_builds(
    runtime: Runtime,
) -> None:
    post(runtime, 30)
    runtime.projector.run_until_caught_up()
    post(runtime, 3, start=30)  # not projected: the workers must stop where live is
    serial = run_replay(runtime, workers=0)
    assert CountingPreparers.yielded == 0
    parallel = run_replay(runtime, workers=2)
    assert CountingPreparers.yielded >= 4  # the workers prepared the ranges
    assert parallel.ok, parallel.differences
    assert parallel.events_read == serial.events_read
    assert parallel.row_counts == serial.row_counts
    assert parallel.row_counts["ledger_entries"] == 30


@ON_POSTGRES_ONLY
@pytest.mark.usefixtures("small_pages")
def test_a_replay_until_a_date_with_workers_leaves_out_what_came_later(
    runtime: Runtime,
) -> None:
    post(runtime, 20)
    runtime.projector.run_until_caught_up()
    today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
    for until, entries in ((today - timedelta(days=1), 0), (today, 20)):
        report = run_replay(runtime, until=until, workers=2)
        try:
            assert report.row_counts["ledger_entries"] == entries
            assert report.row_counts["ledger_lines"] == 2 * entries
            # Counted where the workers' pages are taken too (what the CLI prints).
            assert report.events_recorded_by_until == (report.events_read if entries else 0)
        finally:
            _drop(runtime, report)
    assert CountingPreparers.yielded >= 4


def fail_after_the_first_range(low: int, high: int) -> tuple[int, dict[str, Any]]:
    """A worker that fails from its second range on (run in the forked workers)."""
    if low > 0:
        raise RuntimeError("worker lost its connection")
    return ORIGINAL_PREPARE_RANGE(low, high)


ORIGINAL_PREPARE_RANGE = projections_module._prepare_range


@ON_POSTGRES_ONLY
@pytest.mark.usefixtures("small_pages")
def test_a_worker_failure_lets_the_replay_go_on_serially(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    post(runtime, 20)
    runtime.projector.run_until_caught_up()
    monkeypatch.setattr(projections_module, "_prepare_range", fail_after_the_first_range)
    report = run_replay(runtime, workers=2)
    assert report.ok, report.differences
    assert report.row_counts["ledger_entries"] == 20
    assert CountingPreparers.yielded == 1  # the first range came from a worker
    assert "a worker failed (RuntimeError); going on serially" in caplog.text


@ON_POSTGRES_ONLY
@pytest.mark.usefixtures("small_pages")
def test_workers_stop_each_read_model_where_live_stands(runtime: Runtime) -> None:
    post(runtime, 20)
    runtime.projector.run_until_caught_up()
    post(runtime, 10, start=20)
    # Every read model but the ledger moves on: the ledger's live tables hold 20
    # entries, the chain all 30, and the replay must match both.
    others = [p for p in runtime.projector.projections if p.name != "ledger"]
    others_only = ProjectionRunner(runtime.ledger, runtime.sync_engine, others, page_size=50)
    others_only.run_until_caught_up()
    report = run_replay(runtime, workers=2)
    assert CountingPreparers.yielded >= 4
    assert report.positions["ledger"] < report.positions["audit_chain"]
    assert report.ok, report.differences
    assert report.row_counts["ledger_entries"] == 20
    assert report.row_counts["audit_chain"] == report.events_read


@ON_POSTGRES_ONLY
@pytest.mark.usefixtures("small_pages")
def test_an_error_of_the_replaying_process_is_raised_not_skipped(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a worker's failure sends the replay on serially; its own errors stand (a
    serial replay would meet them too), and nothing is left behind."""
    post(runtime, 20)
    runtime.projector.run_until_caught_up()
    before = scratch_tables(runtime)
    writes = 0
    original_write = LedgerProjection.write

    def write_then_fail(self: LedgerProjection, conn: Connection, prepared: Any) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise RuntimeError("the scratch's disk is full")
        original_write(self, conn, prepared)

    monkeypatch.setattr(LedgerProjection, "write", write_then_fail)
    with pytest.raises(RuntimeError, match="disk is full"):
        run_replay(runtime, workers=2)
    assert CountingPreparers.yielded == 2
    assert scratch_tables(runtime) == before


def test_a_replay_until_the_last_day_of_the_calendar_is_refused_before_any_scratch(
    runtime: Runtime,
) -> None:
    post(runtime, 2)
    runtime.projector.run_until_caught_up()
    before = scratch_tables(runtime)
    with pytest.raises(ValidationError, match="until: the last day a replay can end is"):
        run_replay(runtime, until=date.max)
    assert scratch_tables(runtime) == before
    # The day before is fine: everything recorded so far.
    report = run_replay(runtime, until=date.max - timedelta(days=1))
    try:
        assert report.row_counts["ledger_entries"] == 2
    finally:
        _drop(runtime, report)


def test_a_failed_replay_until_a_date_leaves_no_scratch(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--until keeps its scratch to be queried, but only when the replay succeeded."""
    post(runtime, 2)
    runtime.projector.run_until_caught_up()
    before = scratch_tables(runtime)

    def fail(*_args: object) -> int:
        raise RuntimeError("the scratch's disk is full")

    monkeypatch.setattr(replay_module, "_count", fail)
    today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
    with pytest.raises(RuntimeError, match="disk is full"):
        run_replay(runtime, until=today)
    assert scratch_tables(runtime) == before


def _unreadable(runtime: Runtime) -> int:
    """Make one journal entry's stored event unreadable; returns its position."""
    post(runtime, 4)
    runtime.projector.run_until_caught_up()
    table, column = events_sql(runtime.settings)
    with runtime.sync_engine.begin() as conn:
        position = int(
            conn.execute(
                text(
                    f"SELECT {column} FROM {table} WHERE topic LIKE '%JournalEntry.Posted' "
                    f"ORDER BY {column} LIMIT 1 OFFSET 2"
                )
            ).scalar_one()
        )
        conn.execute(
            text(f"UPDATE {table} SET state = :s WHERE {column} = :p"),
            {"s": b"{not json", "p": position},
        )
    return position


@pytest.mark.parametrize("workers", [0, 2])
def test_a_replay_names_the_position_of_an_event_that_does_not_decode(
    runtime: Runtime, workers: int
) -> None:
    position = _unreadable(runtime)
    before = scratch_tables(runtime)
    with pytest.raises(UnreadableEvent) as raised:
        run_replay(runtime, workers=workers)
    assert raised.value.position == position
    assert f"position {position}" in raised.value.message
    today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
    with pytest.raises(UnreadableEvent) as raised:
        run_replay(runtime, until=today, workers=workers)
    assert raised.value.position == position
    assert scratch_tables(runtime) == before


def test_the_cli_says_in_one_line_why_a_replay_stopped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(settings)
    try:
        position = _unreadable(runtime)
        before = scratch_tables(runtime)
        monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
        get_settings.cache_clear()
        try:
            stopped = CliRunner().invoke(cli, ["audit", "replay"])
            too_late = CliRunner().invoke(cli, ["audit", "replay", "--until", "9999-12-31"])
        finally:
            get_settings.cache_clear()
        assert stopped.exit_code == 1, stopped.output
        assert isinstance(stopped.exception, SystemExit)  # no traceback
        assert f"FAILED: replay stopped at position {position}" in stopped.output
        assert too_late.exit_code == 2, too_late.output
        assert isinstance(too_late.exception, SystemExit)
        assert "the last day a replay can end is 9999-12-30" in too_late.output
        assert scratch_tables(runtime) == before
    finally:
        runtime.close_sync()


def test_a_difference_in_a_beneficiarys_rows_names_no_key_and_no_value(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(settings)
    try:
        beneficiary = enrol_an_intern(runtime, attended_days=17, case_note=None)
        with runtime.sync_engine.begin() as conn:
            conn.execute(welfare_attendance.update().values(attended_days=19))
        report = run_replay(runtime)
        monkeypatch.setattr("gateway.cli.console", Console(width=240))  # rows unwrapped
        _cli_env(settings, monkeypatch)
        try:
            printed = CliRunner().invoke(cli, ["audit", "replay"])
        finally:
            get_settings.cache_clear()
    finally:
        runtime.close_sync()
    [difference] = report.differences
    assert (difference.table, difference.kind) == ("welfare_attendance", "differs")
    assert difference.columns == ("attended_days",)  # what differs, not what it says
    assert difference.withheld == "beneficiary"
    assert difference.key == {}
    assert difference.live is None
    assert difference.replay is None
    assert printed.exit_code == 1, printed.output
    assert "welfare_attendance" in printed.output
    assert "withheld: beneficiary" in printed.output
    for personal in (str(beneficiary.id), "2025-03", "attended_days=17", "attended_days=19"):
        assert personal not in printed.output


def _cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
    get_settings.cache_clear()


def _change_stored_description(runtime: Runtime, old: bytes, new: bytes) -> int:
    """Edit the stored bytes of the journal entry described `old` (the event still
    decodes); returns its position."""
    table, column = events_sql(runtime.settings)
    with runtime.sync_engine.begin() as conn:
        position, state = conn.execute(
            text(
                f"SELECT {column}, state FROM {table} WHERE topic LIKE '%JournalEntry.Posted' "
                f"ORDER BY {column}"
            )
        ).all()[2]
        assert old in bytes(state)
        conn.execute(
            text(f"UPDATE {table} SET state = :s WHERE {column} = :p"),
            {"s": bytes(state).replace(old, new), "p": position},
        )
    return int(position)


def test_a_replay_until_a_day_before_a_forget_does_not_bring_her_attendance_back(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review privacy #1: a kept scratch built up to a day before her forget held her
    month-by-month attendance again, keyed by her reference, for auditors to query."""
    beneficiary = enrol_an_intern(runtime, attended_days=11, case_note="refuge in Breno")
    later = datetime.now(UTC) + timedelta(days=2)  # she asks to be forgotten later on
    with monkeypatch.context() as patched:
        patched.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", lambda: later)
        runtime.welfare.forget(key="forget", actor="person:officer", beneficiary_id=beneficiary.id)
    runtime.projector.run_until_caught_up()
    today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
    report = run_replay(runtime, until=today)
    try:
        assert report.kept
        assert report.row_counts["welfare_beneficiaries"] == 1  # enrolled by then
        scratch = scratch_engine(runtime, report)
        try:
            with scratch.connect() as conn:
                assert conn.execute(select(welfare_attendance)).all() == []
                notes = select(welfare_beneficiaries.c.case_note_sealed)
                assert conn.execute(notes).scalars().all() == [None]
        finally:
            scratch.dispose()
    finally:
        _drop(runtime, report)


def test_a_chain_that_differs_from_one_event_on_is_one_difference_in_hex(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The auditor's 50 listed differences were one real row and 49 chain rows, each
    # a hash printed as b'9\xa1\x84...'.
    runtime = Runtime(settings)
    try:
        post(runtime, 8)
        runtime.projector.run_until_caught_up()
        position = _change_stored_description(runtime, b'"sale 2"', b'"sale X"')
        head = runtime.ledger.recorder.max_notification_id()
        assert head is not None
        report = run_replay(runtime, max_differences=3)
        _cli_env(settings, monkeypatch)
        try:
            printed = CliRunner().invoke(cli, ["audit", "replay", "--max-differences", "3"])
        finally:
            get_settings.cache_clear()
    finally:
        runtime.close_sync()
    chain = [d for d in report.differences if d.table == "audit_chain"]
    assert len(chain) == 1  # the run, once
    [run] = chain
    assert (run.kind, run.columns) == ("differs", ("hash",))
    assert run.key == {"position": position}
    assert run.last_key == {"position": head}
    assert run.rows == head - position + 1  # SQLite/PostgreSQL: no gaps here
    assert run.live is not None
    assert isinstance(run.live["hash"], bytes)
    entry = next(d for d in report.differences if d.table == "ledger_entries")
    assert entry.key == {"position": position}
    # Every row is still counted; the list shows the real differences beside the run.
    assert report.difference_count == run.rows + sum(
        d.rows for d in report.differences if d.table != "audit_chain"
    )
    assert printed.exit_code == 1, printed.output
    assert "b'" not in printed.output
    assert run.live["hash"].hex() in printed.output
    assert f"position={position} to position={head}" in printed.output
    assert (
        f"audit_chain: hash differs from position={position} on, {run.rows:,} rows, "
        "listed once" in printed.output
    )
    assert f"{report.difference_count:,} rows differ." in printed.output


def test_replay_evidence_is_printed_whole_where_stdout_is_no_terminal(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Piped to a file, rich's 80 columns cut every cell: `ledger_en… │ position=… │`.
    edited = "edited [red]behind[/red] the ledger's back, " * 4 + "end of the evidence"
    runtime = Runtime(settings)
    try:
        post(runtime, 3)
        runtime.projector.run_until_caught_up()
        with runtime.sync_engine.begin() as conn:
            victim = conn.execute(
                select(ledger_entries.c.position).order_by(ledger_entries.c.position).limit(1)
            ).scalar_one()
            conn.execute(
                ledger_entries.update()
                .where(ledger_entries.c.position == victim)
                .values(description=edited, total_cents=123_456_789)
            )
        _cli_env(settings, monkeypatch)
        monkeypatch.setattr("gateway.cli.console", Console(width=80))  # as rich has it there
        try:
            printed = CliRunner().invoke(cli, ["audit", "replay"])
        finally:
            get_settings.cache_clear()
    finally:
        runtime.close_sync()
    assert printed.exit_code == 1, printed.output
    assert "…" not in printed.output
    [row] = [line for line in printed.output.splitlines() if "ledger_entries │ pos" in line]
    assert f"position={victim}" in row
    assert f"description={edited}, total_cents=123456789" in row
    assert "description=sale 0, total_cents=100" in row


def test_a_replay_until_a_day_before_any_event_says_none_was_recorded_by_then(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store loaded after the fact (the demo of 2025, recorded in 2026) gave an empty
    # state "as of 2025-06-30" and an OK-looking line.
    runtime = Runtime(settings)
    try:
        post(runtime, 5)
        runtime.projector.run_until_caught_up()
        today = datetime.now(UTC).astimezone(runtime.settings.zone).date()
        before = scratch_tables(runtime)
        _cli_env(settings, monkeypatch)
        try:
            runs = {
                day: CliRunner().invoke(cli, ["audit", "replay", "--until", day.isoformat()])
                for day in (today - timedelta(days=1), today)
            }
        finally:
            get_settings.cache_clear()
            for kept in scratch_tables(runtime) - before:
                scratch = f"schema {kept}" if settings.is_postgres else f"file {kept}"
                if not settings.is_postgres:
                    scratch = f"file {runtime.settings.sqlite_path.parent / kept}"
                _drop(runtime, ReplayReport(until=None, positions={}, scratch=scratch))
        head = runtime.projector.head()
    finally:
        runtime.close_sync()
    empty, full = runs[today - timedelta(days=1)], runs[today]
    assert empty.exit_code == 0, empty.output
    assert f"0 of {head:,} events were recorded by the end of {today - timedelta(days=1)}" in (
        empty.output
    )
    assert f"(the first left out was recorded on {today})" in empty.output
    assert "trialBalance(asOf)" in empty.output
    assert full.exit_code == 0, full.output
    assert f"{head:,} of {head:,} events were recorded by the end of {today}" in full.output
    assert "trialBalance(asOf)" not in full.output

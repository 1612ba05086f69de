"""Production start-up checks and the `coop` command line, on real stores."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.demo import count_demo_steps
from gateway.runtime import Runtime
from services.common.durability import UnsafeDatabaseSettings, check_durability
from services.common.settings import Settings, get_settings
from services.ledger.projections import queries
from tests.conftest import drop_schema, make_settings, postgres_url


@pytest.mark.postgres
def test_production_refuses_a_postgres_that_can_lose_commits(tmp_path: Path) -> None:
    settings = make_settings("postgres", tmp_path, environment="production")
    check_durability(settings)  # the test server is durable: no complaint
    database = make_url(postgres_url()).database
    admin = psycopg.connect(postgres_url(), autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
        with pytest.raises(UnsafeDatabaseSettings, match="synchronous_commit is off"):
            check_durability(settings)
        with pytest.raises(UnsafeDatabaseSettings):
            Runtime(settings)
    finally:
        admin.execute(f'ALTER DATABASE "{database}" RESET synchronous_commit')
        admin.close()
        drop_schema(settings)


@pytest.mark.postgres
def test_gateway_workers_and_a_projector_can_start_at_once(tmp_path: Path) -> None:
    """`coop serve --workers N` and `coop projections run` start together; their
    set-up statements once collided ("tuple concurrently updated")."""
    settings = make_settings("postgres", tmp_path)
    Runtime(settings).close_sync()  # an existing store, as on every restart
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            Runtime(settings).close_sync()
        except BaseException as exc:
            failures.append(exc)

    try:
        for _round in range(3):
            threads = [threading.Thread(target=start) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert failures == []
    finally:
        drop_schema(settings)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_db_init_then_status(cli_env: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "init"])
    assert result.exit_code == 0, result.output
    assert "Store ready" in result.output
    if cli_env.is_postgres:  # one database holds a schema per cooperative: which one
        assert f"schema {cli_env.database_schema}" in " ".join(result.output.split())
    status = runner.invoke(cli, ["projections", "status"])
    assert status.exit_code == 0, status.output
    assert "ledger" in status.output


def guest_key_count(settings: Settings) -> int:
    from sqlalchemy import func, select

    from services.common.database import create_sync_engine
    from services.hotel.keys import hotel_guest_keys

    engine = create_sync_engine(settings)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(hotel_guest_keys)).scalar_one()
            )
    finally:
        engine.dispose()


def test_demo_loads_a_balanced_year_once_and_rebuild_agrees(cli_env: Settings) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--year", "2025"])
    assert first.exit_code == 0, first.output
    assert f"Demo year 2025: {count_demo_steps(2025)} new facts recorded" in first.output
    second = runner.invoke(cli, ["demo", "--year", "2025"])
    assert "Demo year 2025: 0 new facts recorded" in second.output
    # Each run prints a new development key and revokes the earlier run's.
    listed = runner.invoke(cli, ["keys", "list"], env={"COLUMNS": "400"})
    demo_keys = [line.split() for line in listed.output.splitlines() if "demo-admin" in line]
    assert len(demo_keys) == 2, listed.output
    assert sum("active" in words for words in demo_keys) == 1, listed.output

    async def year_end() -> list[queries.BalanceRow]:
        runtime = Runtime(cli_env)
        try:
            async with runtime.read_engine.connect() as conn:
                return await queries.trial_balance(conn, date(2025, 12, 31))
        finally:
            await runtime.aclose()

    before = asyncio.run(year_end())
    assert sum(row.net_cents for row in before) == 0
    by_code = {row.code: row for row in before}
    # The grant's tranche moved from refundable advance to revenue on its condition.
    assert "2300" not in by_code
    assert by_code["4210"].balance_cents == 1_500_000
    assert by_code["4000"].balance_cents > 0  # rooms were sold

    rebuilt = runner.invoke(cli, ["projections", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert asyncio.run(year_end()) == before

    # The hotel's retention run: the demo's early stays lose their guests' identities,
    # the accounts do not move, and a second run finds nothing left to erase.
    listed = runner.invoke(
        cli, ["hotel", "erase-guests", "--ended-before", "2025-04-01", "--dry-run"]
    )
    assert listed.exit_code == 0, listed.output
    would = int(listed.output.split(" booking(s) would be erased")[0].split()[-1])
    assert would > 0
    keys_before = guest_key_count(cli_env)
    erased = runner.invoke(cli, ["hotel", "erase-guests", "--ended-before", "2025-04-01"])
    assert erased.exit_code == 0, erased.output
    assert f"Erased the guest data of {would} booking(s); 0 refused." in erased.output
    assert guest_key_count(cli_env) == keys_before - would
    assert asyncio.run(year_end()) == before
    again = runner.invoke(cli, ["hotel", "erase-guests", "--ended-before", "2025-04-01"])
    assert "Erased the guest data of 0 booking(s)" in again.output
    # What the systemd timer runs: a period in days instead of a date. The demo year
    # is long past, so everything closed and reported is due.
    due = runner.invoke(cli, ["hotel", "erase-guests", "--older-than-days", "1", "--dry-run"])
    assert due.exit_code == 0, due.output
    assert int(due.output.split(" booking(s) would be erased")[0].split()[-1]) > 0
    both = runner.invoke(
        cli, ["hotel", "erase-guests", "--older-than-days", "1", "--ended-before", "2025-04-01"]
    )
    assert both.exit_code != 0
    assert "exactly one of" in both.output


def _book_room_105(runtime: Runtime, key: str) -> Any:
    """A two-guest stay in room 105, 1-3 July 2025, booked on 1 June."""
    from tests.integration.test_hotel_application import guests

    arrival = date(2025, 7, 1)
    return runtime.hotel.create_booking(
        key=key, actor="t", room_number="105", arrival=arrival,
        departure=date(2025, 7, 3), guests=guests(2, arrival), on=date(2025, 6, 1),
    ).result  # fmt: skip


def _guest_keys_made_yesterday(settings: Settings) -> None:
    """Every guest key as if created long before any retention run's cutoff."""
    from sqlalchemy import update

    from services.common.database import create_sync_engine
    from services.hotel.keys import hotel_guest_keys

    engine = create_sync_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(hotel_guest_keys).values(created_at=datetime(2025, 6, 1, tzinfo=UTC))
            )
    finally:
        engine.dispose()


def test_the_retention_run_deletes_keys_of_bookings_never_stored(cli_env: Settings) -> None:
    """A createBooking seals its guests (creating the booking's key) before the checks
    that may still refuse it: a refused booking left a key no run ever deleted."""
    from services.common.errors import Conflict

    runtime = Runtime(cli_env)
    try:
        kept = _book_room_105(runtime, "stays")
        with pytest.raises(Conflict):  # the room is taken on those nights
            _book_room_105(runtime, "refused")
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()
    assert guest_key_count(cli_env) == 2
    runner = CliRunner()
    erase = ["hotel", "erase-guests", "--ended-before", "2025-01-01"]
    # Fresh, it may still be a booking being saved: kept.
    assert runner.invoke(cli, erase).exit_code == 0
    assert guest_key_count(cli_env) == 2
    _guest_keys_made_yesterday(cli_env)
    listed = runner.invoke(cli, [*erase, "--dry-run"])
    assert "1 key(s) of bookings never stored to delete." in listed.output
    assert guest_key_count(cli_env) == 2
    deleted = runner.invoke(cli, erase)
    assert "Deleted 1 key(s) of bookings never stored." in deleted.output, deleted.output
    assert guest_key_count(cli_env) == 1
    runtime = Runtime(cli_env)
    try:
        assert runtime.hotel.guest_keys.get(kept.id) is not None  # the stored booking's
    finally:
        runtime.close_sync()


def test_the_sweep_spares_a_key_an_old_refusal_left_that_a_retry_uses_now(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A createBooking retried under the key of a refusal from yesterday reuses the key
    that refusal created: the sweep, run while the retry is being saved, took it for
    unused and the stored booking's guests could never be read again."""
    from services.common.errors import Conflict

    runtime = Runtime(cli_env)
    try:
        kept = _book_room_105(runtime, "stays")
        with pytest.raises(Conflict):  # the room is taken: a key left for "refused"
            _book_room_105(runtime, "refused")
        runtime.hotel.cancel_booking(key="c", actor="t", booking_id=kept.id, on=date(2025, 6, 2))
        runtime.projector.run_until_caught_up()
        _guest_keys_made_yesterday(cli_env)
        store = runtime.hotel.guest_keys
        original = store.get_or_create
        swept: list[str] = []

        def then_the_timer_fires(subject: Any) -> bytes:
            key = original(subject)
            erase = ["hotel", "erase-guests", "--ended-before", "2025-01-01"]
            swept.append(CliRunner().invoke(cli, erase).output)
            return key

        monkeypatch.setattr(store, "get_or_create", then_the_timer_fires)
        retried = _book_room_105(runtime, "refused")  # the same request, the room free
        monkeypatch.undo()
        assert retried.id in runtime.hotel.repository
        assert runtime.hotel.guest_keys.get(retried.id) is not None, swept
    finally:
        runtime.close_sync()


def test_till_scopes_belong_to_volunteers_only(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "init"]).exit_code == 0
    password = ["--password", "a long enough password"]

    refused = {
        "volunteer without a till": ["users", "add", "vol", "--role", "volunteer", *password],
        "admin with a till": ["users", "add", "adm", "--role", "admin", "--till", "t1", *password],
        "volunteer key without a till": ["keys", "issue", "tab", "--role", "volunteer"],
        "admin key with a till": ["keys", "issue", "pc", "--role", "admin", "--till", "t1"],
        "a till id no till can have": [
            *("keys", "issue", "t", "--role", "volunteer", "--till", "a b")
        ],
    }
    for case, args in refused.items():
        result = runner.invoke(cli, args)
        assert result.exit_code != 0, case
        assert "till" in result.output, (case, result.output)
    listed = runner.invoke(cli, ["keys", "list"])
    assert "volunteer" not in listed.output  # no key row at all
    assert "admin" not in listed.output

    accepted = runner.invoke(
        cli, ["users", "add", "vol", "--role", "volunteer", "--till", "till-1", *password]
    )
    assert accepted.exit_code == 0, accepted.output
    issued = runner.invoke(cli, ["keys", "issue", "tab", "--role", "volunteer", "--till", "till-1"])
    assert issued.exit_code == 0, issued.output
    # Listed whole even for 80 columns (piped, or a narrow terminal): the id is what
    # `coop keys revoke` takes.
    from rich.console import Console

    monkeypatch.setattr("gateway.cli.console", Console(width=80))
    long_name = ["keys", "issue", "till-1-back-office-tablet-by-the-stairs", "--role", "volunteer"]
    assert runner.invoke(cli, [*long_name, "--till", "till-1"]).exit_code == 0
    listed = runner.invoke(cli, ["keys", "list"])
    runtime = Runtime(cli_env)
    try:
        key_ids = [key["key_id"] for key in runtime.credentials.list_keys()]
    finally:
        runtime.close_sync()
    assert key_ids
    assert all(str(key_id) in listed.output for key_id in key_ids), listed.output

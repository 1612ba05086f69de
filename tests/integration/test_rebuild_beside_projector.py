"""`coop projections rebuild` while `coop projections run` follows the log.

Review pg #1: the rebuild emptied the tables before it moved the tracking rows back to
0, the other way round from a projector step. A step in flight kept its rows through
the DELETE and the replay wrote them again (a duplicate key, after which the projector
stayed stuck; or a daily balance counted twice), or the two deadlocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, select, text

from gateway.runtime import Runtime
from services.common.database import create_sync_engine, create_tables
from services.common.projections import ProjectionRunner
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import Cause, Posting, Side, manual_cause_id
from services.ledger.projections.projector import LedgerProjection
from services.ledger.projections.tables import (
    ledger_account_balances,
    ledger_daily_balances,
    ledger_entries,
    ledger_lines,
)
from tests.conftest import postgres_url

DAY = date(2025, 3, 3)


def save_entry(ledger: LedgerApplication, n: int, debit: str, credit: str, cents: int) -> None:
    ledger.save(
        ledger.prepare_entry(
            effective_date=DAY,
            description=f"entry {n}",
            postings=[Posting(debit, Side.DEBIT, cents), Posting(credit, Side.CREDIT, cents)],
            cause=Cause(manual_cause_id(f"entry-{n}"), "t"),
        )
    )


def ledger_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = (ledger_entries, ledger_lines, ledger_account_balances, ledger_daily_balances)
    with engine.connect() as conn:
        return {t.name: sorted(tuple(row) for row in conn.execute(select(t))) for t in tables}


def someone_waits_for_a_lock() -> bool:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


def rebuild_while_held(
    holder: threading.Thread,
    held: threading.Event,
    release: threading.Event,
    rebuild: threading.Thread,
) -> None:
    """Start `holder`, wait until it holds its transaction open (`held`), start the
    rebuild and let it queue on a lock, then release the holder; join both."""
    holder.start()
    assert held.wait(10)
    rebuild.start()
    deadline = time.monotonic() + 10
    while not someone_waits_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    holder.join(30)
    rebuild.join(30)


def recording(errors: list[str], name: str, run: Callable[[], object]) -> Callable[[], None]:
    def target() -> None:
        try:
            run()
        except Exception as exc:
            errors.append(f"{name}: {str(getattr(exc, 'orig', exc)).splitlines()[0]}")

    return target


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    "accounts",
    [("1010", "1020"), ("1000", "1020")],
    ids=["new rows only", "a balance row updated too"],
)
def test_a_rebuild_meeting_a_projector_step_in_flight_rebuilds_exactly(
    ledger: LedgerApplication, settings: Settings, accounts: tuple[str, str]
) -> None:
    live_engine, rebuild_engine = create_sync_engine(settings), create_sync_engine(settings)
    create_tables(live_engine, LedgerProjection.tables)
    live = ProjectionRunner(ledger, live_engine, [LedgerProjection()], page_size=100)
    save_entry(ledger, 1, "1000", "4000", 1_000)
    live.run_until_caught_up()
    save_entry(ledger, 2, *accounts, 500)
    # The live step has written its rows, not committed them, when the rebuild starts.
    in_step, release = threading.Event(), threading.Event()
    announce = live._reached_and_announced

    def held_open(conn: Connection) -> int:
        in_step.set()
        release.wait(10)
        return announce(conn)

    live._reached_and_announced = held_open  # type: ignore[method-assign]
    errors: list[str] = []
    rebuilder = ProjectionRunner(ledger, rebuild_engine, [LedgerProjection()], page_size=100)
    step = threading.Thread(target=recording(errors, "step", live.run_until_caught_up))
    rebuild = threading.Thread(
        target=recording(errors, "rebuild", lambda: rebuilder.rebuild(workers=0))
    )
    try:
        rebuild_while_held(step, in_step, release, rebuild)
        live._reached_and_announced = announce  # type: ignore[method-assign]
        recording(errors, "the projector afterwards", live.run_until_caught_up)()
        assert errors == []
        rebuilt = ledger_rows(live_engine)
        ProjectionRunner(ledger, live_engine, [LedgerProjection()], page_size=100).rebuild(
            workers=0
        )
        assert rebuilt == ledger_rows(live_engine)
    finally:
        live_engine.dispose()
        rebuild_engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_rebuilds_beside_a_projector_following_sales_neither_fail_nor_deadlock(
    settings: Settings,
) -> None:
    leader, operator = Runtime(settings), Runtime(settings)
    stop = threading.Event()

    def sell() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            leader.ledger.post_entry(
                key=f"sale-{n}",
                actor="t",
                effective_date=date(2025, 3, 1 + n % 28),
                description="sale",
                postings=[
                    Posting("1000", Side.DEBIT, 100 + n),
                    Posting("4100", Side.CREDIT, 100 + n),
                ],
            )
            time.sleep(0.005)

    for n in range(300):
        leader.ledger.post_entry(
            key=f"earlier-{n}",
            actor="t",
            effective_date=date(2025, 2, 1 + n % 28),
            description="earlier sale",
            postings=[Posting("1000", Side.DEBIT, 100 + n), Posting("4100", Side.CREDIT, 100 + n)],
        )
    follow = threading.Thread(
        target=leader.projector.follow, args=(stop, 0.2), kwargs={"listen": True}
    )
    seller = threading.Thread(target=sell)
    failures: list[str] = []
    follow.start()
    seller.start()
    try:
        for _ in range(6):
            recording(failures, "rebuild", lambda: operator.projector.rebuild(workers=0))()
    finally:
        stop.set()
        leader.projector.wake.set()
        seller.join(30)
        follow.join(30)
    try:
        assert failures == []
        leader.projector.run_until_caught_up()
        followed = ledger_rows(leader.sync_engine)
        operator.projector.rebuild(workers=0)
        assert ledger_rows(leader.sync_engine) == followed
    finally:
        operator.close_sync()
        leader.close_sync()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_rebuild_beside_a_starting_runner_that_resets_a_changed_read_model(
    ledger: LedgerApplication, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second reading: a runner starting with a read model whose stored shape differs
    (another release) dropped its tables and then moved the tracking row, the other
    order from the rebuild's: the two deadlocked."""
    start_engine, rebuild_engine = create_sync_engine(settings), create_sync_engine(settings)
    create_tables(start_engine, LedgerProjection.tables)
    rebuilder = ProjectionRunner(ledger, rebuild_engine, [LedgerProjection()], page_size=100)
    with start_engine.begin() as conn:  # the stored shape differs from this release's
        conn.execute(text("ALTER TABLE ledger_entries ADD COLUMN from_another_release int"))
    in_reset, release = threading.Event(), threading.Event()
    restart = ProjectionRunner._restart_from_zero

    def paused_at_start(runner: ProjectionRunner, conn: Connection, name: str) -> None:
        if threading.current_thread().name == "starting":
            in_reset.set()
            release.wait(10)
        restart(runner, conn, name)

    monkeypatch.setattr(ProjectionRunner, "_restart_from_zero", paused_at_start)
    errors: list[str] = []

    def start() -> None:
        ProjectionRunner(ledger, start_engine, [LedgerProjection()], page_size=100)

    starting = threading.Thread(name="starting", target=recording(errors, "start", start))
    rebuild = threading.Thread(
        target=recording(errors, "rebuild", lambda: rebuilder.rebuild(workers=0))
    )
    try:
        rebuild_while_held(starting, in_reset, release, rebuild)
        assert errors == []
    finally:
        release.set()
        start_engine.dispose()
        rebuild_engine.dispose()

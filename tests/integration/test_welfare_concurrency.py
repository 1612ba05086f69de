"""Welfare fund on real stores: exactly-once accrual with two followers, a sale's
accrual projected with the sale, and two commitments racing for the same funds
(exactly one wins)."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.runtime import Runtime
from services.common.errors import CoopError
from services.common.projections import ProjectionRunner
from services.ledger.domain import Posting, Side
from services.ledger.projections.tables import ledger_account_balances, ledger_entries
from services.welfare_fund.domain import InsufficientFunds, Program, Stream
from services.welfare_fund.domain.disbursement import DisbursementKind
from services.welfare_fund.process import WelfareAccrualProcess
from services.welfare_fund.projections.tables import welfare_accrual_items


def _sale(runtime: Runtime, n: int, cents: int) -> None:
    runtime.ledger.post_entry(
        key=f"sale-{n}",
        actor="test",
        effective_date=date(2025, 3, 1 + n % 28),
        description="Shop sale",
        postings=[Posting("1000", Side.DEBIT, cents), Posting("4100", Side.CREDIT, cents)],
    )


def test_two_followers_accrue_each_posting_once(runtime: Runtime) -> None:
    runtime.welfare.set_policy(
        key="p", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 33_333)]
    )
    for n in range(60):
        _sale(runtime, n, 999 + n)
    # Two runners of the process alone, each with its own instance, on small pages.
    followers = [
        ProjectionRunner(
            runtime.ledger,
            runtime.sync_engine,
            [],
            page_size=7,
            processes=[WelfareAccrualProcess(runtime.welfare, runtime.sync_engine)],
        )
        for _ in range(2)
    ]
    errors: list[Exception] = []

    def follow(runner: ProjectionRunner) -> None:
        try:
            runner.run_until_caught_up()
        except Exception as exc:  # a lost race surfaces as Conflict; the rest is a bug
            if not isinstance(exc, CoopError):
                errors.append(exc)

    threads = [threading.Thread(target=follow, args=(f,)) for f in followers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runtime.projector.run_until_caught_up()
    assert errors == []
    total_base = sum(999 + n for n in range(60))
    fund = runtime.welfare.fund()
    assert sum(fund.accrued_by_program.values()) == 33_333 * total_base // 1_000_000
    # Replaying the log from the start changes nothing.
    runtime.projector.rebuild()
    assert runtime.welfare.fund().accrued_by_program == fund.accrued_by_program


def test_one_projector_step_shows_a_sale_and_its_accrual_together(runtime: Runtime) -> None:
    runtime.welfare.set_policy(
        key="p", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 100_000)]
    )
    runtime.projector.run_until_caught_up()
    _sale(runtime, 1, 5_000)
    sale_position = runtime.ledger.recorder.max_notification_id() or 0

    with runtime.projector.projector_connection() as conn:
        read = runtime.projector.step(conn)

    # The step wrote the accrual (a new event after the sale) and projected it in the
    # same transaction as the sale: nothing is left for a second step, and a fund
    # query that waited for the sale already sees its 10%.
    head = runtime.ledger.recorder.max_notification_id() or 0
    assert head > sale_position
    assert read < runtime.projector.page_size
    assert runtime.projector.reached == head
    with runtime.sync_engine.connect() as conn:
        shares = conn.execute(select(func.sum(welfare_accrual_items.c.share_cents))).scalar()
    assert shares == 500
    assert set(runtime.projector.positions().values()) == {head}


def test_a_policy_set_in_another_process_governs_the_next_accrual(runtime: Runtime) -> None:
    runtime.welfare.set_policy(
        key="p1", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 100_000)]
    )
    _sale(runtime, 1, 10_000)  # 2025-03-02, at 10%
    runtime.projector.run_until_caught_up()  # the follower has now seen the book
    other_worker = Runtime(runtime.settings)
    try:
        other_worker.welfare.set_policy(
            key="p2",
            actor="t",
            effective_from=date(2025, 3, 10),
            shares=[(Stream.SHOP, 500_000)],
        )
    finally:
        other_worker.close_sync()
    _sale(runtime, 10, 10_000)  # 2025-03-11, at 50%
    runtime.projector.run_until_caught_up()
    # The follower's copy of the book predates the new policy: planning on it must
    # lose the save and be redone on the book as stored.
    assert sum(runtime.welfare.fund().accrued_by_program.values()) == 1_000 + 5_000


def test_two_commitments_for_the_same_funds_exactly_one_wins(runtime: Runtime) -> None:
    app = runtime.welfare
    app.set_policy(
        key="p", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 1_000_000)]
    )
    _sale(runtime, 1, 100_000)  # EUR 1,000 accrued: EUR 500 for housing
    runtime.projector.run_until_caught_up()
    ref = app.enroll(
        key="e", actor="t", program=Program.HOUSING, enrolled_on=date(2025, 1, 1), case_note=None
    ).result.id
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def commit(key: str) -> None:
        barrier.wait()
        try:
            outcomes.append(
                app.commit(
                    key=key,
                    actor="person:officer",
                    beneficiary_id=ref,
                    kind=DisbursementKind.RENT,
                    month="2025-03",
                    amount_cents=30_000,
                    committed_on=date(2025, 3, 2),
                )
            )
        except CoopError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=commit, args=(k,)) for k in ("c1", "c2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [o for o in outcomes if isinstance(o, InsufficientFunds)]
    assert len(refused) == 1
    assert refused[0].available_cents == 20_000
    assert app.fund().reserved_by_program == {"HOUSING": 30_000}


def test_a_runner_shared_by_two_threads_applies_each_event_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demo load catching up beside the gateway's projector thread shares one runner.
    Here the other thread's step runs, deterministically, while this step's process
    is writing: this step must then lose on the positions (they moved), not take the
    moved ones for where it started and apply the sale a second time."""
    runtime.welfare.set_policy(
        key="p", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 100_000)]
    )
    runtime.projector.run_until_caught_up()
    _sale(runtime, 1, 5_000)
    process = runtime.welfare_accrual
    accrue = process.handle
    interleaved: list[int] = []

    def accrue_while_the_other_thread_steps(events: Any) -> int | None:
        written = accrue(events)
        if not interleaved:
            interleaved.append(1)
            with runtime.projector.projector_connection() as other:
                interleaved.append(runtime.projector.step(other))
        return written

    monkeypatch.setattr(process, "handle", accrue_while_the_other_thread_steps)
    with runtime.projector.projector_connection() as conn:
        runtime.projector.step(conn)
    assert interleaved[1] > 0  # the other step did apply the sale
    runtime.projector.run_until_caught_up()
    head = runtime.ledger.recorder.max_notification_id() or 0
    assert set(runtime.projector.positions().values()) == {head}
    live = ledger_and_fund_rows(runtime)
    assert live[2] == 500  # the sale's 10%, accrued once
    # What a replay from event 0 builds is what the two interleaved steps built.
    runtime.projector.rebuild()
    assert ledger_and_fund_rows(runtime) == live


def ledger_and_fund_rows(runtime: Runtime) -> tuple[Any, ...]:
    with runtime.sync_engine.connect() as conn:
        entries = conn.execute(
            select(ledger_entries.c.position, ledger_entries.c.total_cents).order_by(
                ledger_entries.c.position
            )
        ).all()
        balances = conn.execute(
            select(ledger_account_balances).order_by(ledger_account_balances.c.account_code)
        ).all()
        shares = conn.execute(select(func.sum(welfare_accrual_items.c.share_cents))).scalar()
    return [tuple(r) for r in entries], [tuple(r) for r in balances], shares

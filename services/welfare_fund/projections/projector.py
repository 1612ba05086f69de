"""Fills the welfare fund read models from the fund's, beneficiaries' and
disbursements' events. Accrual-heavy pages are folded in memory and written with a
few set-based statements; the rare workflow events are written as they come."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)

from services.common.bulk import insert_mappings, upsert_rows
from services.common.database import daily_rows_from
from services.common.projections import DomainEvent, Projection
from services.ledger.projections.projector import upsert
from services.welfare_fund.domain import Beneficiary, Disbursement, WelfareFund
from services.welfare_fund.projections.tables import (
    welfare_accrual_items,
    welfare_attendance,
    welfare_beneficiaries,
    welfare_daily,
    welfare_disbursement_payments,
    welfare_disbursements,
    welfare_policies,
    welfare_policy_withdrawals,
)

STREAM, PROGRAM = "stream", "program"
ERASE_BATCH = 500  # ids a statement (SQLite's bound parameters are limited)
BASE, ACCRUED, COMMITTED, DISBURSED = range(4)


class WelfareFundProjection(Projection):
    name: ClassVar[str] = "welfare_fund"
    tables: ClassVar[tuple[Table, ...]] = (
        welfare_policies,
        welfare_policy_withdrawals,
        welfare_daily,
        welfare_accrual_items,
        welfare_disbursements,
        welfare_disbursement_payments,
        welfare_beneficiaries,
        welfare_attendance,
    )
    topics: ClassVar[frozenset[str]] = frozenset(
        get_topic(cls)
        for cls in (
            WelfareFund.PolicySet,
            WelfareFund.PolicyWithdrawn,
            WelfareFund.AccrualsRecorded,
            Beneficiary.Enrolled,
            Beneficiary.AttendanceRecorded,
            Beneficiary.Forgotten,
            Disbursement.Committed,
            Disbursement.Approved,
            Disbursement.Paid,
            Disbursement.PaymentReversed,
            Disbursement.Cancelled,
        )
    )

    def erase_as_live_has(self, live: Connection, built: Connection) -> None:
        # Beneficiaries forgotten since the replay's day: what Forgotten drops (below)
        # goes from the scratch too.
        b = welfare_beneficiaries.c
        forgotten = list(
            live.execute(select(b.beneficiary_id).where(b.forgotten.is_(True))).scalars()
        )
        for start in range(0, len(forgotten), ERASE_BATCH):
            batch = forgotten[start : start + ERASE_BATCH]
            built.execute(
                update(welfare_beneficiaries)
                .where(b.beneficiary_id.in_(batch))
                .values(case_note_sealed=None)
            )
            built.execute(
                delete(welfare_attendance).where(welfare_attendance.c.beneficiary_id.in_(batch))
            )

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        # (scope, key, day) -> [base, accrued, committed, disbursed] movements
        activity: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        items: list[dict[str, Any]] = []
        withdrawn: list[tuple[UUID, str, str, int]] = []  # entry, stream, program, cents
        for position, event in events:
            if isinstance(event, WelfareFund.AccrualsRecorded):
                for item in event.items:
                    day = date.fromisoformat(item["date"])
                    stream_day = activity[(STREAM, item["stream"], day)]
                    stream_day[BASE] += int(item["base"])
                    stream_day[ACCRUED] += int(item["accrued"])
                    for program, cents in item["programs"].items():
                        activity[(PROGRAM, program, day)][ACCRUED] += int(cents)
                        if int(cents) < 0 and "reverses_entry_id" in item:
                            # A reversed entry's share funds nothing any more.
                            withdrawn.append(
                                (UUID(item["reverses_entry_id"]), item["stream"], program,
                                 -int(cents))
                            )  # fmt: skip
                        if int(cents) <= 0:
                            continue  # reductions are not funding sources (FIFO rule)
                        items.append(
                            {
                                "entry_id": UUID(item["entry_id"]),
                                "stream": item["stream"],
                                "program": program,
                                "source_position": int(item["position"]),
                                "effective_date": day,
                                "base_cents": int(item["base"]),
                                "accrued_cents": int(item["accrued"]),
                                "share_cents": int(cents),
                            }
                        )
            elif isinstance(event, WelfareFund.PolicySet):
                # A day set twice happens only in logs from before a second version
                # for a day was refused: the last one wins, as in the aggregate.
                conn.execute(
                    upsert(conn, welfare_policies)
                    .values(
                        effective_from=date.fromisoformat(event.policy["effective_from"]),
                        policy_json=json.dumps(event.policy, sort_keys=True),
                        position=position,
                    )
                    .on_conflict_do_update(
                        index_elements=[welfare_policies.c.effective_from],
                        set_={
                            "policy_json": json.dumps(event.policy, sort_keys=True),
                            "position": position,
                        },
                    )
                )
            elif isinstance(event, WelfareFund.PolicyWithdrawn):
                conn.execute(
                    insert(welfare_policy_withdrawals).values(
                        position=position,
                        effective_from=event.effective_from,
                        policy_json=json.dumps(event.policy, sort_keys=True),
                        withdrawn_on=event.withdrawn_on,
                    )
                )
                conn.execute(
                    delete(welfare_policies).where(
                        welfare_policies.c.effective_from == event.effective_from
                    )
                )
            elif isinstance(event, Disbursement.Committed):
                conn.execute(
                    insert(welfare_disbursements).values(
                        disbursement_id=event.originator_id,
                        position=position,
                        beneficiary_id=event.beneficiary_id,
                        program=event.program,
                        kind=event.kind,
                        month=event.month,
                        amount_cents=event.amount_cents,
                        paid_cents=0,
                        released_cents=0,
                        status="COMMITTED",
                        committed_on=event.committed_on,
                    )
                )
                activity[(PROGRAM, event.program, event.committed_on)][COMMITTED] += (
                    event.amount_cents
                )
            elif isinstance(event, Disbursement.Approved):
                conn.execute(
                    update(welfare_disbursements)
                    .where(welfare_disbursements.c.disbursement_id == event.originator_id)
                    .values(status="APPROVED", approved_on=event.approved_on)
                )
            elif isinstance(event, Disbursement.Paid):
                d, p = welfare_disbursements.c, welfare_disbursement_payments.c
                # Numbered as the aggregate numbers them: in the order recorded.
                earlier = conn.execute(
                    select(func.count()).where(p.disbursement_id == event.originator_id)
                ).scalar_one()
                conn.execute(
                    insert(welfare_disbursement_payments).values(
                        disbursement_id=event.originator_id,
                        payment=earlier + 1,
                        paid_on=event.paid_on,
                        reversed=False,
                    )
                )
                conn.execute(
                    update(welfare_disbursements)
                    .where(d.disbursement_id == event.originator_id)
                    .values(
                        paid_cents=d.paid_cents + event.amount_cents,
                        # Payments may be recorded in any order (as the bank statement
                        # is read): the latest day stays the latest.
                        latest_standing_payment_on=case(
                            (
                                or_(
                                    d.latest_standing_payment_on.is_(None),
                                    d.latest_standing_payment_on < event.paid_on,
                                ),
                                event.paid_on,
                            ),
                            else_=d.latest_standing_payment_on,
                        ),
                    )
                )
                conn.execute(
                    update(welfare_disbursements)
                    .where(d.disbursement_id == event.originator_id)
                    .where(d.paid_cents == d.amount_cents)
                    .values(status="PAID")
                )
                day_totals = activity[(PROGRAM, event.program, event.paid_on)]
                day_totals[COMMITTED] -= event.amount_cents
                day_totals[DISBURSED] += event.amount_cents
            elif isinstance(event, Disbursement.PaymentReversed):
                d, p = welfare_disbursements.c, welfare_disbursement_payments.c
                this_payment = and_(
                    p.disbursement_id == event.originator_id, p.payment == event.payment
                )
                conn.execute(
                    update(welfare_disbursement_payments).where(this_payment).values(reversed=True)
                )
                standing = (
                    select(func.max(p.paid_on))
                    .where(p.disbursement_id == event.originator_id, p.reversed.is_(False))
                    .scalar_subquery()
                )
                conn.execute(
                    update(welfare_disbursements)
                    .where(d.disbursement_id == event.originator_id)
                    .values(
                        paid_cents=d.paid_cents - event.amount_cents,
                        status=case((d.status == "PAID", "APPROVED"), else_=d.status),
                        latest_standing_payment_on=standing,
                    )
                )
                # Unpaid again, and still committed to this disbursement.
                day_totals = activity[(PROGRAM, event.program, event.reversed_on)]
                day_totals[COMMITTED] += event.amount_cents
                day_totals[DISBURSED] -= event.amount_cents
            elif isinstance(event, Disbursement.Cancelled):
                conn.execute(
                    update(welfare_disbursements)
                    .where(welfare_disbursements.c.disbursement_id == event.originator_id)
                    .values(
                        status="CANCELLED",
                        cancelled_on=event.cancelled_on,
                        released_cents=event.released_cents,
                    )
                )
                activity[(PROGRAM, event.program, event.cancelled_on)][COMMITTED] -= (
                    event.released_cents
                )
            elif isinstance(event, Beneficiary.Enrolled):
                conn.execute(
                    insert(welfare_beneficiaries).values(
                        beneficiary_id=event.originator_id,
                        position=position,
                        program=event.program,
                        enrolled_on=event.enrolled_on,
                        forgotten=False,
                        case_note_sealed=event.case_note_sealed,
                    )
                )
            elif isinstance(event, Beneficiary.AttendanceRecorded):
                values = {
                    "scheduled_days": event.scheduled_days,
                    "attended_days": event.attended_days,
                    "meals_provided": event.meals_provided,
                    "part_time": event.part_time,
                    "stipend_cents": event.stipend_cents,
                }
                conn.execute(
                    upsert(conn, welfare_attendance)
                    .values(beneficiary_id=event.originator_id, month=event.month, **values)
                    .on_conflict_do_update(
                        index_elements=[
                            welfare_attendance.c.beneficiary_id,
                            welfare_attendance.c.month,
                        ],
                        set_=values,
                    )
                )
            elif isinstance(event, Beneficiary.Forgotten):
                # The sealed note is unreadable once the key is gone; drop it anyway.
                conn.execute(
                    update(welfare_beneficiaries)
                    .where(welfare_beneficiaries.c.beneficiary_id == event.originator_id)
                    .values(forgotten=True, case_note_sealed=None)
                )
                # Her month-by-month attendance (days, meals, part time) is a timeline
                # of her, not an accounting fact: it goes. What was committed and paid
                # stays in the disbursements. The events keep it (they are immutable
                # and no query shows a beneficiary's events); a rebuild drops it again.
                conn.execute(
                    delete(welfare_attendance).where(
                        welfare_attendance.c.beneficiary_id == event.originator_id
                    )
                )
        if items:
            _place_in_queues(conn, items)
            insert_mappings(conn, welfare_accrual_items, items)
        for entry_id, stream, program, cents in withdrawn:
            _withdraw_source(conn, entry_id, stream, program, cents)
        if activity:
            _apply_daily(conn, activity)


def _place_in_queues(conn: Connection, items: list[dict[str, Any]]) -> None:
    """Give each new source its range in its program's funding queue.

    A queue is in order of (effective date, log position): a commitment consumes it
    in order of its own date (queries.provenance), so income dated after a commitment
    never funds it, whatever order the two were recorded in. The new sources come
    after every stored one in the log, so each goes after the stored sources of its
    day or earlier; the stored sources dated after it (income recorded earlier but
    dated later) move back by its width. Income mostly arrives in date order: then it
    only appends, and what moves is at most the later days' sources (one UPDATE per
    earlier day in the page)."""
    by_program: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_program[item["program"]].append(item)
    tails = _queue_tails(conn, set(by_program))
    for program, new in by_program.items():
        new.sort(key=lambda i: (i["effective_date"], i["source_position"], i["stream"]))
        tail_end, tail_day = tails.get(program, (0, None))
        earlier_days = sorted(
            {
                i["effective_date"]
                for i in new
                if tail_day is not None and i["effective_date"] < tail_day
            }
        )
        # Where each earlier day's stored sources end, read before anything moves.
        ends = {day: _queue_end_through(conn, program, day) for day in earlier_days}
        width_by_day: dict[date, int] = defaultdict(int)
        for item in new:
            width_by_day[item["effective_date"]] += item["share_cents"]
        moved = 0
        for index, day in enumerate(earlier_days):
            # The stored sources after `day` and up to the next earlier day move back
            # by the new sources dated up to `day`: each row once.
            moved += width_by_day[day]
            until = earlier_days[index + 1] if index + 1 < len(earlier_days) else None
            _move_back(conn, program, after=day, until=until, from_cents=ends[day], cents=moved)
        placed = 0  # the new sources' width before this one
        for item in new:
            start = ends.get(item["effective_date"], tail_end) + placed
            item["queue_start_cents"] = start
            item["queue_end_cents"] = start + item["share_cents"]
            placed += item["share_cents"]


@lru_cache(maxsize=16)
def _queue_tails_statement(program_count: int) -> CompoundSelect[Any]:
    """Each program's end of queue as its own `max()` under `program = :pN`, and the
    day of its last source among those ending there: index lookups
    (ix_welfare_accrual_items_queue, from the top) on both stores. One `max()` grouped
    by program over `program IN (...)` read every item of those programs instead:
    PostgreSQL's most expensive statement under sales load (1.2 ms a step with 3,000
    items, 9 ms with 40,000), growing with the fund's history. Built once per number
    of programs (building a statement costs more than running it)."""
    item = welfare_accrual_items.c
    probes = []
    for index in range(program_count):
        program = bindparam(f"p{index}", type_=item.program.type)
        end = (
            select(func.max(item.queue_end_cents)).where(item.program == program).scalar_subquery()
        )
        # A source whose whole share was reversed is as wide as nothing and ends
        # where the one before it does: the latest day ending there is the last.
        day = (
            select(func.max(item.effective_date))
            .where(item.program == program, item.queue_end_cents == end)
            .scalar_subquery()
        )
        probes.append(select(program.label("program"), end.label("end"), day.label("day")))
    return union_all(*probes)


def _queue_tails(conn: Connection, programs: set[str]) -> dict[str, tuple[int, date]]:
    """Where each program's funding queue ends, and the day of its last source (a
    program without sources is absent)."""
    ordered = sorted(programs)
    if not ordered:
        return {}
    rows = conn.execute(
        _queue_tails_statement(len(ordered)), {f"p{i}": p for i, p in enumerate(ordered)}
    )
    return {program: (int(end), day) for program, end, day in rows if end is not None}


def _queue_end_through(conn: Connection, program: str, day: date) -> int:
    """Where the program's stored sources dated `day` or earlier end (the queue is in
    date order, so that is the largest end among them). Read from the top of the
    queue's index: what it passes are the sources dated after `day`."""
    item = welfare_accrual_items.c
    end = conn.execute(
        select(item.queue_end_cents)
        .where(item.program == program, item.effective_date <= day)
        .order_by(item.queue_end_cents.desc())
        .limit(1)
    ).scalar()
    return 0 if end is None else int(end)


def _move_back(
    conn: Connection, program: str, *, after: date, until: date | None, from_cents: int, cents: int
) -> None:
    """Move the program's stored sources dated after `after` (up to `until`, if
    given) back in the queue by `cents`, behind the new sources dated before them.
    They all start at `from_cents` or later (the end of the sources up to `after`):
    the bound keeps the update on the queue's index."""
    item = welfare_accrual_items.c
    query = update(welfare_accrual_items).where(
        item.program == program,
        item.queue_end_cents >= from_cents,
        item.effective_date > after,
    )
    if until is not None:
        query = query.where(item.effective_date <= until)
    conn.execute(
        query.values(
            queue_start_cents=item.queue_start_cents + cents,
            queue_end_cents=item.queue_end_cents + cents,
        )
    )


def _withdraw_source(
    conn: Connection, entry_id: UUID, stream: str, program: str, cents: int
) -> None:
    """Take a reversed entry's share out of its program's funding queue: its range
    shrinks by what the reversal took back (at most its width) and every later source
    moves up by as much, so commitments are traced to income that still stands.
    Reversals are rare corrections; each costs one update of the later sources."""
    item = welfare_accrual_items.c
    row = conn.execute(
        select(item.queue_start_cents, item.queue_end_cents).where(
            item.entry_id == entry_id, item.stream == stream, item.program == program
        )
    ).first()
    if row is None:
        return  # the reversed entry gave this program nothing to withdraw
    start, end = int(row[0]), int(row[1])
    taken = min(cents, end - start)
    if taken <= 0:
        return
    conn.execute(
        update(welfare_accrual_items)
        .where(item.entry_id == entry_id, item.stream == stream, item.program == program)
        .values(queue_end_cents=end - taken)
    )
    conn.execute(
        update(welfare_accrual_items)
        .where(item.program == program, item.queue_start_cents >= end)
        .values(
            queue_start_cents=item.queue_start_cents - taken,
            queue_end_cents=item.queue_end_cents - taken,
        )
    )


def _apply_daily(conn: Connection, activity: dict[tuple[str, str, date], list[int]]) -> None:
    """Merge the page's movements into the daily rows and recompute the cumulative
    totals from the earliest touched day of each key on."""
    first_day: dict[tuple[str, str], date] = {}
    for scope, key, day in activity:
        if (scope, key) not in first_day or day < first_day[(scope, key)]:
            first_day[(scope, key)] = day
    existing: dict[tuple[str, str], dict[date, list[int]]] = defaultdict(dict)
    opening: dict[tuple[str, str], list[int]] = {}
    # From each key's last day before its first touched day (whose totals open the
    # recomputation) on; every column, in the table's order.
    rows = daily_rows_from(conn, welfare_daily, ("scope", "key"), first_day)
    for scope, key, day, *values in rows:
        if day < first_day[(scope, key)]:
            opening[(scope, key)] = [int(v) for v in values[4:]]
        else:
            existing[(scope, key)][day] = [int(v) for v in values[:4]]
    for (scope, key, day), moves in activity.items():
        day_moves = existing[(scope, key)].setdefault(day, [0, 0, 0, 0])
        for index in range(4):
            day_moves[index] += moves[index]
    out: list[tuple[Any, ...]] = []
    for (scope, key), days in existing.items():
        running = list(opening.get((scope, key), [0, 0, 0, 0]))
        for day in sorted(days):
            moves = days[day]
            running = [running[i] + moves[i] for i in range(4)]
            out.append((scope, key, day, *moves, *running))  # welfare_daily's column order
    upsert_rows(conn, welfare_daily, out)

"""Read-side queries over the welfare fund read models (async)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Date,
    Select,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.cursors import position_after, position_cursor
from services.common.database import LoneReads
from services.common.errors import NotFound
from services.welfare_fund.domain import PolicyVersion, Program, Stream
from services.welfare_fund.projections.tables import (
    welfare_accrual_items,
    welfare_attendance,
    welfare_beneficiaries,
    welfare_daily,
    welfare_disbursements,
    welfare_policies,
    welfare_policy_withdrawals,
)


@dataclass(frozen=True)
class StreamTotals:
    stream: Stream
    base_cents: int = 0
    accrued_cents: int = 0


@dataclass(frozen=True)
class ProgramTotals:
    program: Program
    accrued_cents: int = 0
    committed_cents: int = 0
    disbursed_cents: int = 0

    @property
    def available_cents(self) -> int:
        return self.accrued_cents - self.committed_cents - self.disbursed_cents


@dataclass(frozen=True)
class BalanceView:
    as_of: date
    streams: list[StreamTotals] = field(default_factory=list)
    programs: list[ProgramTotals] = field(default_factory=list)

    @property
    def accrued_cents(self) -> int:
        return sum(p.accrued_cents for p in self.programs)

    @property
    def committed_cents(self) -> int:
        return sum(p.committed_cents for p in self.programs)

    @property
    def disbursed_cents(self) -> int:
        return sum(p.disbursed_cents for p in self.programs)

    @property
    def available_cents(self) -> int:
        return sum(p.available_cents for p in self.programs)


BALANCE_SCOPES = ("stream", "program")  # welfare_daily.scope


@lru_cache(maxsize=16)
def fund_balance_statement(
    programs: tuple[Program, ...], extra_row: Select[Any] | None
) -> CompoundSelect[Any]:
    """The latest daily row per key as of `:as_of`, one index probe each (all in one
    statement), so the cost does not grow with the history; then `extra_row`, if any
    (six columns, the first a scope of its own). Built once per set of programs:
    constructing it was most of a balance query's CPU, and `LoneReads` compiles each
    statement object once."""
    d = welfare_daily.c
    as_of = bindparam("as_of", type_=Date)
    keys = [("stream", s.value) for s in Stream] + [("program", str(p)) for p in programs]
    probes = []
    for scope, key in keys:
        latest = (
            select(
                literal(scope).label("scope"),
                literal(key).label("key"),
                d.base_total_cents,
                d.accrued_total_cents,
                d.committed_total_cents,
                d.disbursed_total_cents,
            )
            .where(d.scope == scope, d.key == key, d.day <= as_of)
            .order_by(d.day.desc())
            .limit(1)
            .subquery()
        )
        probes.append(select(latest))
    if extra_row is not None:
        probes.append(extra_row)
    return union_all(*probes)


async def fund_balance(
    reads: LoneReads,
    as_of: date,
    programs: Sequence[Program],
    extra_row: Select[Any] | None = None,
) -> tuple[BalanceView, list[int]]:
    """Totals as of the end of `as_of`, and the four numbers of `extra_row` (read in
    the same statement, so the same snapshot; empty without one).

    `programs` are the configured ones; the application refuses to start with a
    configuration that leaves out a program holding money, so none is missed."""
    statement = fund_balance_statement(tuple(programs), extra_row)
    found = await reads.all(statement, {"as_of": as_of})
    extra = [
        [int(value) for value in list(r.values())[2:]]
        for r in found
        if r["scope"] not in BALANCE_SCOPES
    ]
    rows = {
        (r["scope"], r["key"]): [
            int(r[column])
            for column in (
                "base_total_cents",
                "accrued_total_cents",
                "committed_total_cents",
                "disbursed_total_cents",
            )
        ]
        for r in found
        if r["scope"] in BALANCE_SCOPES
    }
    streams = []
    for stream in Stream:
        base, accrued, _c, _d = rows.get(("stream", stream.value), [0, 0, 0, 0])
        streams.append(StreamTotals(stream, base, accrued))
    program_totals = []
    for program in programs:
        _b, accrued, committed, disbursed = rows.get(("program", str(program)), [0, 0, 0, 0])
        program_totals.append(ProgramTotals(program, accrued, committed, disbursed))
    return BalanceView(as_of, streams, program_totals), extra[0] if extra else []


@dataclass(frozen=True)
class PolicyRow:
    version: PolicyVersion
    withdrawn_on: date | None  # None: not withdrawn


async def policies(conn: AsyncConnection) -> list[PolicyRow]:
    """Every version, withdrawn ones included, by day and then in the order they were
    set and withdrawn. One statement: read as two, a withdrawal committed between
    them showed its version twice (or not at all)."""
    p, w = welfare_policies.c, welfare_policy_withdrawals.c
    listing = union_all(
        select(
            p.effective_from, p.position, p.policy_json, cast(null(), Date).label("withdrawn_on")
        ),
        select(w.effective_from, w.position, w.policy_json, w.withdrawn_on),
    ).subquery()
    rows = await conn.execute(
        select(listing.c.policy_json, listing.c.withdrawn_on).order_by(
            listing.c.effective_from, listing.c.position
        )
    )
    return [
        PolicyRow(PolicyVersion.from_state(json.loads(text)), withdrawn_on)
        for text, withdrawn_on in rows
    ]


@dataclass(frozen=True)
class DisbursementRow:
    disbursement_id: UUID
    position: int
    beneficiary_id: UUID
    program: str
    kind: str
    month: str
    amount_cents: int
    paid_cents: int
    released_cents: int
    status: str
    committed_on: date
    approved_on: date | None
    latest_standing_payment_on: date | None
    cancelled_on: date | None

    @classmethod
    def from_mapping(cls, row: Any) -> DisbursementRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


async def disbursement(conn: AsyncConnection, disbursement_id: UUID) -> DisbursementRow:
    row = (
        (
            await conn.execute(
                select(welfare_disbursements).where(
                    welfare_disbursements.c.disbursement_id == disbursement_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"disbursement {disbursement_id} does not exist")
    return DisbursementRow.from_mapping(row)


async def disbursements_page(
    conn: AsyncConnection, *, status: str | None, first: int, after: str | None
) -> tuple[list[DisbursementRow], bool]:
    d = welfare_disbursements.c
    query = select(welfare_disbursements)
    if status is not None:
        query = query.where(d.status == status)
    if after is not None:
        query = query.where(d.position > position_after("disbursements", after))
    rows = (await conn.execute(query.order_by(d.position).limit(first + 1))).mappings().all()
    return [DisbursementRow.from_mapping(r) for r in rows[:first]], len(rows) > first


@dataclass(frozen=True)
class SourceRow:
    entry_id: UUID
    effective_date: date
    stream: str
    base_cents: int
    accrued_cents: int
    share_cents: int
    used_cents: int


@dataclass(frozen=True)
class ProvenancePage:
    disbursement: DisbursementRow
    traced_cents: int
    sources: list[SourceRow]
    has_next_page: bool
    end_cursor: str | None


async def provenance(
    conn: AsyncConnection, disbursement_id: UUID, *, first: int = 500, after: str | None = None
) -> ProvenancePage:
    """FIFO by date: the program's live commitments, in order of (commitment date, log
    position), consume its positive accrual shares in order of (effective date, log
    position) (the queue the projector keeps). Returns the disbursement, the amount
    traced and a page of the income postings whose shares fund it (`first` after the
    cursor, in queue order: a commitment of months of rent is funded by thousands of
    small sales).

    Both sides follow dates, not the order things were recorded in: a commitment
    back-dated before one recorded earlier comes first, and income recorded late but
    dated early comes before income dated after it. So a commitment is traced only to
    income dated on or before its own date, which the fund's check guarantees covers
    it (docs/welfare_fund.md). Ties fall to the log, so the answer is the same on
    every call and after a rebuild."""
    row = await disbursement(conn, disbursement_id)
    d = welfare_disbursements.c
    # A cancelled commitment keeps only what was paid before the cancellation.
    effective = d.amount_cents - d.released_cents
    before = (
        await conn.execute(
            select(func.coalesce(func.sum(effective), 0)).where(
                d.program == row.program,
                or_(
                    d.committed_on < row.committed_on,
                    and_(d.committed_on == row.committed_on, d.position < row.position),
                ),
            )
        )
    ).scalar_one()
    start = int(before)
    end = start + row.amount_cents - row.released_cents
    i = welfare_accrual_items.c
    # A program's queue positions only grow: the end of an item is its place.
    after_end = start if after is None else max(start, position_after("provenance", after))
    items = (
        await conn.execute(
            select(
                i.entry_id,
                i.effective_date,
                i.stream,
                i.base_cents,
                i.accrued_cents,
                i.share_cents,
                i.queue_start_cents,
                i.queue_end_cents,
            )
            .where(
                i.program == row.program, i.queue_end_cents > after_end, i.queue_start_cents < end
            )
            .order_by(i.queue_end_cents)
            .limit(first + 1)
        )
    ).all()
    has_next = len(items) > first
    items = items[:first]
    sources = [
        SourceRow(
            entry_id=entry_id,
            effective_date=day,
            stream=stream,
            base_cents=int(base),
            accrued_cents=int(accrued),
            share_cents=int(share),
            used_cents=min(end, int(queue_end)) - max(start, int(queue_start)),
        )
        for entry_id, day, stream, base, accrued, share, queue_start, queue_end in items
    ]
    return ProvenancePage(
        row,
        end - start,
        # A commitment cancelled with nothing paid traces nothing: no 0.00 sources.
        [source for source in sources if source.used_cents > 0],
        has_next,
        position_cursor("provenance", int(items[-1][-1])) if items else None,
    )


@dataclass(frozen=True)
class AttendanceRow:
    month: str
    scheduled_days: int
    attended_days: int
    meals_provided: bool
    part_time: bool
    stipend_cents: int


@dataclass(frozen=True)
class BeneficiaryRow:
    beneficiary_id: UUID
    program: str
    enrolled_on: date
    forgotten: bool
    case_note_sealed: str | None
    attendance: list[AttendanceRow]


async def beneficiary(conn: AsyncConnection, beneficiary_id: UUID) -> BeneficiaryRow:
    found = await _beneficiaries(conn, welfare_beneficiaries.c.beneficiary_id == beneficiary_id)
    if not found:
        raise NotFound(f"beneficiary {beneficiary_id} does not exist")
    return found[0][0]


async def beneficiaries_page(
    conn: AsyncConnection, *, first: int, after: str | None
) -> tuple[list[BeneficiaryRow], bool, int | None]:
    """Beneficiaries in enrolment order, whether more follow, and the last one's
    position (for the cursor): two queries for the page, not two per beneficiary."""
    b = welfare_beneficiaries.c
    condition = b.position > position_after("beneficiaries", after) if after is not None else None
    found = await _beneficiaries(conn, condition, limit=first + 1)
    shown = found[:first]
    return [row for row, _ in shown], len(found) > first, shown[-1][1] if shown else None


async def _beneficiaries(
    conn: AsyncConnection, condition: ColumnElement[bool] | None, limit: int | None = None
) -> list[tuple[BeneficiaryRow, int]]:
    """The beneficiaries `condition` selects, in enrolment order, with their attendance,
    each with its position."""
    b = welfare_beneficiaries.c
    query = select(welfare_beneficiaries).order_by(b.position).limit(limit)
    if condition is not None:
        query = query.where(condition)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        return []
    a = welfare_attendance.c
    attendance: dict[UUID, list[AttendanceRow]] = defaultdict(list)
    for beneficiary_id, m, s, at, me, pt, c in await conn.execute(
        select(
            a.beneficiary_id,
            a.month,
            a.scheduled_days,
            a.attended_days,
            a.meals_provided,
            a.part_time,
            a.stipend_cents,
        )
        .where(a.beneficiary_id.in_([row["beneficiary_id"] for row in rows]))
        .order_by(a.beneficiary_id, a.month)
    ):
        attendance[beneficiary_id].append(
            AttendanceRow(m, int(s), int(at), bool(me), bool(pt), int(c))
        )
    return [
        (
            BeneficiaryRow(
                beneficiary_id=row["beneficiary_id"],
                program=row["program"],
                enrolled_on=row["enrolled_on"],
                forgotten=bool(row["forgotten"]),
                case_note_sealed=row["case_note_sealed"],
                attendance=attendance.get(row["beneficiary_id"], []),
            ),
            int(row["position"]),
        )
        for row in rows
    ]

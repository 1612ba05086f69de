"""Read-side queries over the shop read models (async; asyncpg / aiosqlite).

Amounts of refunds are kept positive in the tables; reports show sales, refunds and
their difference ("net") side by side, as a Z report or a daily close does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.auth import requester
from services.common.cursors import position_after, position_cursor
from services.shop.domain.sale import Sale, tendered_cents
from services.shop.projections.tables import (
    shop_cash_movements,
    shop_documents,
    shop_intakes,
    shop_lines,
    shop_payments,
    shop_sessions,
)


@dataclass(frozen=True)
class MethodTotal:
    method: str
    sales_cents: int
    refunds_cents: int

    @property
    def net_cents(self) -> int:
        return self.sales_cents - self.refunds_cents


@dataclass(frozen=True)
class CategoryTotal:
    category: str
    quantity_sold: int
    quantity_refunded: int
    sales_cents: int
    refunds_cents: int
    net_cents: int  # excluding VAT, after refunds
    vat_cents: int  # after refunds

    @property
    def total_cents(self) -> int:
        return self.sales_cents - self.refunds_cents


@dataclass(frozen=True)
class VatRateTotal:
    rate_bp: int
    total_cents: int  # VAT included, after refunds
    net_cents: int
    vat_cents: int


@dataclass(frozen=True)
class VolunteerTotal:
    volunteer: str
    sales_count: int
    refunds_count: int
    sales_cents: int
    refunds_cents: int


@dataclass(frozen=True)
class DayReceipts:
    """The documents of one business day: receipt numbers restart every day, so a
    range of numbers only means something within one day (and one till)."""

    business_date: date
    sales_count: int
    refunds_count: int
    first_receipt: int
    last_receipt: int


@dataclass(frozen=True)
class Breakdown:
    sales_cents: int = 0
    refunds_cents: int = 0
    sales_count: int = 0
    refunds_count: int = 0
    # The receipt range when every document is of one business day; None when the
    # documents span several days (a session left open past midnight): see by_day.
    first_receipt: int | None = None
    last_receipt: int | None = None
    by_day: list[DayReceipts] = field(default_factory=list)
    by_method: list[MethodTotal] = field(default_factory=list)
    by_category: list[CategoryTotal] = field(default_factory=list)
    by_vat_rate: list[VatRateTotal] = field(default_factory=list)

    @property
    def net_cents(self) -> int:
        return self.sales_cents - self.refunds_cents


@dataclass(frozen=True)
class SessionRow:
    session_id: UUID
    till_id: str
    z_number: int
    business_date: date
    opened_at: datetime
    opened_by: str
    opening_float_cents: int
    is_open: bool
    closed_at: datetime | None
    closed_by: str | None
    expected_cash_cents: int | None
    counted_cash_cents: int | None
    difference_cents: int | None
    tolerance_cents: int | None
    within_tolerance: bool | None
    terminal_card_cents: int | None
    # The close's count: value in cents to how many, largest first; None if by total.
    denominations: dict[int, int] | None
    card_difference_cents: int | None


@dataclass(frozen=True)
class SessionReport:
    session: SessionRow
    breakdown: Breakdown
    cash_in_cents: int
    cash_out_cents: int

    @property
    def expected_cash_cents(self) -> int:
        if self.session.expected_cash_cents is not None:  # as recorded at the close
            return self.session.expected_cash_cents
        cash = next((m for m in self.breakdown.by_method if m.method == "CASH"), None)
        return (
            self.session.opening_float_cents
            + (cash.net_cents if cash else 0)
            + self.cash_in_cents
            - self.cash_out_cents
        )

    @property
    def card_cents(self) -> int:
        card = next((m for m in self.breakdown.by_method if m.method == "CARD"), None)
        return card.net_cents if card else 0


@dataclass(frozen=True)
class LineRow:
    line_no: int
    category: str
    description: str
    quantity: int
    unit_price_cents: int
    gross_cents: int
    net_cents: int
    vat_cents: int
    vat_rate_bp: int


@dataclass(frozen=True)
class PaymentRow:
    method: str
    tendered_cents: int
    amount_cents: int


@dataclass(frozen=True)
class DocumentRow:
    document_id: UUID
    kind: str
    position: int
    session_id: UUID
    till_id: str
    z_number: int
    business_date: date
    receipt_number: int
    recorded_at: datetime
    actor: str
    total_cents: int
    vat_cents: int
    change_cents: int
    sale_id: UUID | None
    lines: list[LineRow]
    payments: list[PaymentRow]


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRow]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class TillDay:
    till_id: str
    business_date: date
    z_numbers: list[int]
    all_closed: bool
    breakdown: Breakdown


@dataclass(frozen=True)
class SellThroughRow:
    category: str
    bags_received: int
    items_received: int
    items_sold: int
    items_refunded: int


def _filters(
    table: Table,
    *,
    session_id: UUID | None = None,
    session_ids: Sequence[UUID] | None = None,
    till_id: str | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
) -> list[ColumnElement[bool]]:
    c = table.c
    out: list[ColumnElement[bool]] = []
    if session_id is not None:
        out.append(c.session_id == session_id)
    if session_ids is not None:
        out.append(c.session_id.in_(session_ids))
    if till_id is not None:
        out.append(c.till_id == till_id)
    if from_date is not None:
        out.append(c.business_date >= from_date)
    if to_date is not None:
        out.append(c.business_date <= to_date)
    return out


async def breakdown(conn: AsyncConnection, **filters: Any) -> Breakdown:
    return (await _breakdowns(conn, None, **filters)).get(None, Breakdown())


async def breakdowns_by_session(
    conn: AsyncConnection, session_ids: Sequence[UUID]
) -> dict[UUID, Breakdown]:
    """Each session's breakdown, in the same three queries as one breakdown (a page of
    Z reports is not three queries per report)."""
    if not session_ids:
        return {}
    found = await _breakdowns(conn, "session_id", session_ids=session_ids)
    return {session_id: found.get(session_id, Breakdown()) for session_id in session_ids}


class _BreakdownTotals:
    """What the three breakdown queries add up, for one group of documents."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.days: dict[date, list[int]] = {}
        self.methods: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.categories: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
        self.rates: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])

    def breakdown(self) -> Breakdown:
        by_day = [DayReceipts(day, *totals) for day, totals in sorted(self.days.items())]
        one_day = by_day[0] if len(by_day) == 1 else None
        return Breakdown(
            sales_cents=self.counts["sale"][1],
            refunds_cents=self.counts["refund"][1],
            sales_count=self.counts["sale"][0],
            refunds_count=self.counts["refund"][0],
            first_receipt=one_day.first_receipt if one_day else None,
            last_receipt=one_day.last_receipt if one_day else None,
            by_day=by_day,
            by_method=[MethodTotal(m, s, r) for m, (s, r) in sorted(self.methods.items())],
            by_category=[CategoryTotal(c, *t) for c, t in sorted(self.categories.items())],
            by_vat_rate=[VatRateTotal(r, *t) for r, t in sorted(self.rates.items())],
        )


async def _breakdowns(
    conn: AsyncConnection, group_by: str | None, **filters: Any
) -> dict[Any, Breakdown]:
    """Breakdowns of the documents the filters select, one per value of the column
    `group_by` (a column of the documents, lines and payments tables), or a single one
    keyed None. Groups without documents are absent."""
    d, ln, p = shop_documents.c, shop_lines.c, shop_payments.c

    def group(table: Table) -> list[Any]:
        # No key column at all for one breakdown: a NULL parameter in GROUP BY is an
        # expression PostgreSQL cannot type.
        return [table.c[group_by]] if group_by is not None else []

    def split(row: Any) -> tuple[Any, Any]:
        return (row[0], row[1:]) if group_by is not None else (None, row)

    groups: dict[Any, _BreakdownTotals] = defaultdict(_BreakdownTotals)
    # Per business day: sales, refunds, first and last receipt. Receipt numbers run
    # across sales and refunds, per till and day.
    key = group(shop_documents)
    for row in await conn.execute(
        select(
            *key,
            d.business_date,
            d.kind,
            func.count(),
            func.sum(d.total_cents),
            func.min(d.receipt_number),
            func.max(d.receipt_number),
        )
        .where(*_filters(shop_documents, **filters))
        .group_by(*key, d.business_date, d.kind)
    ):
        name, (day, kind, count, total, first, last) = split(row)
        totals = groups[name]
        totals.counts[kind][0] += int(count)
        totals.counts[kind][1] += int(total)
        per_day = totals.days.setdefault(day, [0, 0, int(first), int(last)])
        per_day[0 if kind == "sale" else 1] += int(count)
        per_day[2] = min(per_day[2], int(first))
        per_day[3] = max(per_day[3], int(last))
    key = group(shop_payments)
    for row in await conn.execute(
        select(*key, p.kind, p.method, func.sum(p.amount_cents))
        .where(*_filters(shop_payments, **filters))
        .group_by(*key, p.kind, p.method)
    ):
        name, (kind, method, amount) = split(row)
        groups[name].methods[method][0 if kind == "sale" else 1] += int(amount)
    key = group(shop_lines)
    for row in await conn.execute(
        select(
            *key,
            ln.kind,
            ln.category,
            ln.vat_rate_bp,
            func.sum(ln.quantity),
            func.sum(ln.gross_cents),
            func.sum(ln.net_cents),
            func.sum(ln.vat_cents),
        )
        .where(*_filters(shop_lines, **filters))
        .group_by(*key, ln.kind, ln.category, ln.vat_rate_bp)
    ):
        name, (kind, category, rate, quantity, gross, net, vat) = split(row)
        sign = 1 if kind == "sale" else -1
        category_totals = groups[name].categories[category]
        if kind == "sale":
            category_totals[0] += int(quantity)
            category_totals[2] += int(gross)
        else:
            category_totals[1] += int(quantity)
            category_totals[3] += int(gross)
        category_totals[4] += sign * int(net)
        category_totals[5] += sign * int(vat)
        rate_totals = groups[name].rates[int(rate)]
        rate_totals[0] += sign * int(gross)
        rate_totals[1] += sign * int(net)
        rate_totals[2] += sign * int(vat)
    return {name: totals.breakdown() for name, totals in groups.items()}


def _session_row(row: Any) -> SessionRow:
    return SessionRow(
        session_id=row.session_id,
        till_id=row.till_id,
        z_number=int(row.z_number),
        business_date=row.business_date,
        opened_at=row.opened_at,
        opened_by=row.opened_by,
        opening_float_cents=int(row.opening_float_cents),
        is_open=bool(row.is_open),
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        expected_cash_cents=row.expected_cash_cents,
        counted_cash_cents=row.counted_cash_cents,
        difference_cents=row.difference_cents,
        tolerance_cents=row.tolerance_cents,
        within_tolerance=row.within_tolerance,
        terminal_card_cents=row.terminal_card_cents,
        denominations=None
        if row.denominations_json is None
        else {int(value): count for value, count in json.loads(row.denominations_json).items()},
        card_difference_cents=row.card_difference_cents,
    )


async def session_by_id(conn: AsyncConnection, session_id: UUID) -> SessionRow | None:
    row = (
        await conn.execute(select(shop_sessions).where(shop_sessions.c.session_id == session_id))
    ).first()
    return None if row is None else _session_row(row)


async def session_report(conn: AsyncConnection, session: SessionRow) -> SessionReport:
    return (await session_reports(conn, [session]))[0]


async def session_reports(
    conn: AsyncConnection, sessions: Sequence[SessionRow]
) -> list[SessionReport]:
    """The sessions' reports, in their order: four queries however many they are."""
    if not sessions:
        return []
    ids = [session.session_id for session in sessions]
    m = shop_cash_movements.c
    moved: dict[tuple[UUID, str], int] = {
        (session_id, direction): int(amount)
        for session_id, direction, amount in await conn.execute(
            select(m.session_id, m.direction, func.sum(m.amount_cents))
            .where(m.session_id.in_(ids))
            .group_by(m.session_id, m.direction)
        )
    }
    breakdowns = await breakdowns_by_session(conn, ids)
    return [
        SessionReport(
            session=session,
            breakdown=breakdowns[session.session_id],
            cash_in_cents=moved.get((session.session_id, "IN"), 0),
            cash_out_cents=moved.get((session.session_id, "OUT"), 0),
        )
        for session in sessions
    ]


@dataclass(frozen=True)
class ZReportPage:
    reports: list[SessionReport]
    has_next_page: bool
    end_cursor: str | None


async def z_reports_page(
    conn: AsyncConnection,
    *,
    from_date: date | None,
    to_date: date | None,
    till_id: str | None,
    needs_review: bool | None,
    first: int,
    after: str | None,
) -> ZReportPage:
    """Closed sessions (by opening business date) in the order closed; `needs_review`
    True: only those whose cash is beyond the tolerance or whose card terminal
    disagreed with the till, False: only the others."""
    s = shop_sessions.c
    query = select(shop_sessions).where(
        s.closed_position.is_not(None),
        *_filters(shop_sessions, till_id=till_id, from_date=from_date, to_date=to_date),
    )
    if needs_review is not None:
        flagged = or_(s.within_tolerance.is_(False), func.coalesce(s.card_difference_cents, 0) != 0)
        query = query.where(flagged if needs_review else not_(flagged))
    if after is not None:
        query = query.where(s.closed_position > position_after("zReports", after))
    rows = (await conn.execute(query.order_by(s.closed_position).limit(first + 1))).all()
    shown = rows[:first]
    return ZReportPage(
        reports=await session_reports(conn, [_session_row(row) for row in shown]),
        has_next_page=len(rows) > first,
        end_cursor=position_cursor("zReports", int(shown[-1].closed_position)) if shown else None,
    )


async def documents_page(
    conn: AsyncConnection,
    *,
    kind: str,
    from_date: date | None,
    to_date: date | None,
    till_id: str | None,
    first: int,
    after: str | None,
) -> DocumentPage:
    """Documents in recording order; keyset pagination on the log position."""
    d = shop_documents.c
    query = select(shop_documents).where(
        d.kind == kind,
        *_filters(shop_documents, till_id=till_id, from_date=from_date, to_date=to_date),
    )
    if after is not None:
        query = query.where(d.position > position_after("sales", after))
    rows = (await conn.execute(query.order_by(d.position).limit(first + 1))).all()
    has_next = len(rows) > first
    documents = await _with_details(conn, rows[:first])
    return DocumentPage(
        documents=documents,
        has_next_page=has_next,
        end_cursor=position_cursor("sales", documents[-1].position) if documents else None,
    )


async def document_by_id(conn: AsyncConnection, document_id: UUID) -> DocumentRow | None:
    rows = (
        await conn.execute(
            select(shop_documents).where(shop_documents.c.document_id == document_id)
        )
    ).all()
    documents = await _with_details(conn, rows)
    return documents[0] if documents else None


async def refunds_of(conn: AsyncConnection, sale_ids: list[UUID]) -> dict[UUID, list[DocumentRow]]:
    if not sale_ids:
        return {}
    d = shop_documents.c
    rows = (
        await conn.execute(
            select(shop_documents).where(d.sale_id.in_(sale_ids)).order_by(d.position)
        )
    ).all()
    out: dict[UUID, list[DocumentRow]] = defaultdict(list)
    for document in await _with_details(conn, rows):
        assert document.sale_id is not None
        out[document.sale_id].append(document)
    return out


def line_row(values: Mapping[Any, Any]) -> LineRow:
    """A document line from its stored row or from the event's line state (same keys)."""
    return LineRow(
        line_no=int(values["line_no"]),
        category=values["category"],
        description=values["description"],
        quantity=int(values["quantity"]),
        unit_price_cents=int(values["unit_price_cents"]),
        gross_cents=int(values["gross_cents"]),
        net_cents=int(values["net_cents"]),
        vat_cents=int(values["vat_cents"]),
        vat_rate_bp=int(values["vat_rate_bp"]),
    )


def rung_sale_document(sale: Sale, position: int) -> DocumentRow:
    """The document a sale just rung will have in the read model, from the aggregate
    itself: what the projector writes from its Rung event (see projector._document),
    so a mutation can answer without reading it back."""
    return DocumentRow(
        document_id=sale.id,
        kind="sale",
        position=position,
        session_id=sale.session_id,
        till_id=sale.till_id,
        z_number=sale.z_number,
        business_date=sale.business_date,
        receipt_number=sale.receipt_number,
        recorded_at=sale.rung_at,
        actor=sale.actor,
        total_cents=sale.total_cents,
        vat_cents=sale.vat_cents,
        change_cents=sale.change_cents,
        sale_id=None,
        lines=[line_row(line) for line in sale.lines],
        payments=[
            PaymentRow(p["method"], tendered_cents(p), int(p["amount_cents"]))
            for p in sale.payments
        ],
    )


async def _with_details(conn: AsyncConnection, rows: Any) -> list[DocumentRow]:
    ids = [row.document_id for row in rows]
    lines: dict[UUID, list[LineRow]] = defaultdict(list)
    payments: dict[UUID, list[PaymentRow]] = defaultdict(list)
    if ids:
        ln, p = shop_lines.c, shop_payments.c
        for line in await conn.execute(
            select(shop_lines).where(ln.document_id.in_(ids)).order_by(ln.document_id, ln.line_no)
        ):
            lines[line.document_id].append(line_row(line._mapping))
        for payment in await conn.execute(
            select(shop_payments)
            .where(p.document_id.in_(ids))
            .order_by(p.document_id, p.payment_no)
        ):
            payments[payment.document_id].append(
                PaymentRow(payment.method, int(payment.tendered_cents), int(payment.amount_cents))
            )
    return [
        DocumentRow(
            document_id=row.document_id,
            kind=row.kind,
            position=int(row.position),
            session_id=row.session_id,
            till_id=row.till_id,
            z_number=int(row.z_number),
            business_date=row.business_date,
            receipt_number=int(row.receipt_number),
            recorded_at=row.recorded_at,
            actor=row.actor,
            total_cents=int(row.total_cents),
            vat_cents=int(row.vat_cents),
            change_cents=int(row.change_cents),
            sale_id=row.sale_id,
            lines=lines[row.document_id],
            payments=payments[row.document_id],
        )
        for row in rows
    ]


async def volunteer_totals(conn: AsyncConnection, **filters: Any) -> list[VolunteerTotal]:
    d = shop_documents.c
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for actor, kind, count, total in await conn.execute(
        select(d.actor, d.kind, func.count(), func.sum(d.total_cents))
        .where(*_filters(shop_documents, **filters))
        .group_by(d.actor, d.kind)
    ):
        # A device by its key's name: a till whose key was rotated is one volunteer.
        totals = per[requester(actor)]
        if kind == "sale":
            totals[0] += int(count)
            totals[2] += int(total)
        else:
            totals[1] += int(count)
            totals[3] += int(total)
    return [VolunteerTotal(a, *t) for a, t in sorted(per.items())]


async def daily_close(conn: AsyncConnection, day: date, till_id: str | None) -> list[TillDay]:
    """Per till, the day's documents as the electronic-receipt daily close reports them.

    A document carries the business day it was issued on, which for a session left
    open past midnight is not the day the session was opened. So a day's Z numbers
    are those of every session that holds documents of the day, plus the sessions
    opened that day; and the day is closed only when all of them are: until then
    receipts of the day sit in an open session and its totals are not final."""
    s, d = shop_sessions.c, shop_documents.c
    holding_the_day = select(d.session_id).where(d.business_date == day)
    if till_id is not None:
        holding_the_day = holding_the_day.where(d.till_id == till_id)
    query = select(s.till_id, s.z_number, s.is_open).where(
        or_(s.business_date == day, s.session_id.in_(holding_the_day.distinct()))
    )
    if till_id is not None:
        query = query.where(s.till_id == till_id)
    sessions: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for till, z_number, is_open in await conn.execute(query):
        sessions[till].append((int(z_number), bool(is_open)))
    # Every till's breakdown of the day in one pass, not one pass per till.
    breakdowns = await _breakdowns(conn, "till_id", till_id=till_id, from_date=day, to_date=day)
    out = []
    for till in sorted(sessions):
        numbers = sorted(sessions[till])
        out.append(
            TillDay(
                till_id=till,
                business_date=day,
                z_numbers=[z for z, _ in numbers],
                all_closed=not any(is_open for _, is_open in numbers),
                breakdown=breakdowns.get(till, Breakdown()),
            )
        )
    return out


async def sell_through(
    conn: AsyncConnection, from_date: date | None, to_date: date | None
) -> list[SellThroughRow]:
    i, ln = shop_intakes.c, shop_lines.c
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    intake_query = select(i.category, func.sum(i.bags), func.sum(i["items"])).group_by(i.category)
    if from_date is not None:
        intake_query = intake_query.where(i.received_on >= from_date)
    if to_date is not None:
        intake_query = intake_query.where(i.received_on <= to_date)
    for category, bags, items in await conn.execute(intake_query):
        per[category][0] += int(bags)
        per[category][1] += int(items)
    for kind, category, quantity in await conn.execute(
        select(ln.kind, ln.category, func.sum(ln.quantity))
        .where(*_filters(shop_lines, from_date=from_date, to_date=to_date))
        .group_by(ln.kind, ln.category)
    ):
        per[category][2 if kind == "sale" else 3] += int(quantity)
    return [SellThroughRow(c, *t) for c, t in sorted(per.items())]

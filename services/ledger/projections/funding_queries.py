"""Read-side queries over the funding read models (async; asyncpg / aiosqlite)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.cursors import position_after, position_cursor
from services.ledger.projections.funding_tables import (
    funding_contracts,
    funding_donations,
    funding_grants,
    funding_invoice_payments,
    funding_invoices,
    funding_non_cash,
    funding_presence,
    funding_tranche_receipts,
    funding_tranches,
)

# -- cursors: the position in the event log of the record's first event --------------


@dataclass(frozen=True)
class Page:
    has_next_page: bool
    end_cursor: str | None


async def _fetch_page(
    conn: AsyncConnection,
    query: Select[Any],
    position: Any,
    first: int,
    after: str | None,
    listing: str,
) -> tuple[list[Any], Page]:
    """`first` rows of `query` after the cursor, by log position; `listing` names the
    list its cursors belong to (services/common/cursors.py)."""
    if after is not None:
        query = query.where(position > position_after(listing, after))
    rows = list((await conn.execute(query.order_by(position).limit(first + 1))).mappings())
    has_next = len(rows) > first
    rows = rows[:first]
    end = position_cursor(listing, int(rows[-1]["position"])) if rows else None
    return rows, Page(has_next, end)


# -- grants -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptRow:
    """One receipt of a tranche; `reversed_on` is set once it was reversed."""

    receipt: int
    received_on: date
    amount_cents: int
    reversed_on: date | None
    reversal_entry_id: UUID | None
    reversal_reason: str | None


@dataclass(frozen=True)
class TrancheRow:
    number: int
    amount_cents: int
    condition: str
    expected_on: date | None
    received_on: date | None
    condition_met_on: date | None
    cancelled_on: date | None
    receipts: tuple[ReceiptRow, ...] = ()

    @property
    def status(self) -> str:
        if self.cancelled_on is not None:
            return "cancelled"
        if self.amount_cents == 0:
            return "cut"
        if self.received_on is not None and self.condition_met_on is not None:
            return "recognised"
        if self.received_on is not None:
            return "advance"
        if self.condition_met_on is not None:
            return "receivable"
        return "pending"


@dataclass(frozen=True)
class GrantRow:
    grant_id: UUID
    position: int
    funder: str
    purpose: str
    restricted: bool
    public_funder: bool
    awarded_on: date
    original_cents: int
    reduced_on: date | None
    closed_on: date | None
    tranches: tuple[TrancheRow, ...]

    @property
    def awarded_cents(self) -> int:
        """The award as it stands: after any pro-rata cut, less what a closure cancelled."""
        return sum(t.amount_cents for t in self.tranches if t.cancelled_on is None)

    @property
    def received_cents(self) -> int:
        return sum(t.amount_cents for t in self.tranches if t.received_on is not None)

    @property
    def recognised_cents(self) -> int:
        return sum(
            t.amount_cents
            for t in self.tranches
            if t.condition_met_on is not None and t.cancelled_on is None
        )

    @property
    def outstanding_cents(self) -> int:
        """Awarded and not yet received."""
        return self.awarded_cents - self.received_cents

    @property
    def advances_cents(self) -> int:
        """Received before the condition was met: a refundable liability."""
        return sum(
            t.amount_cents
            for t in self.tranches
            if t.received_on is not None and t.condition_met_on is None
        )


async def grants(
    conn: AsyncConnection,
    *,
    grant_ids: list[UUID] | None = None,
    first: int = 500,
    after: str | None = None,
) -> tuple[list[GrantRow], Page]:
    g = funding_grants.c
    query = select(funding_grants)
    if grant_ids is not None:
        query = query.where(g.grant_id.in_(grant_ids))
    rows, page = await _fetch_page(conn, query, g.position, first, after, "grants")
    tranches: dict[UUID, list[TrancheRow]] = defaultdict(list)
    if rows:
        ids = [row["grant_id"] for row in rows]
        # At most MAX_RECEIPTS_PER_TRANCHE per tranche (domain/grants.py).
        r = funding_tranche_receipts.c
        receipts: dict[tuple[UUID, int], list[ReceiptRow]] = defaultdict(list)
        for rc in (
            await conn.execute(
                select(funding_tranche_receipts)
                .where(r.grant_id.in_(ids))
                .order_by(r.grant_id, r.number, r.receipt)
            )
        ).mappings():
            receipts[(rc["grant_id"], int(rc["number"]))].append(
                ReceiptRow(
                    receipt=int(rc["receipt"]),
                    received_on=rc["received_on"],
                    amount_cents=int(rc["amount_cents"]),
                    reversed_on=rc["reversed_on"],
                    reversal_entry_id=rc["reversal_entry_id"],
                    reversal_reason=rc["reversal_reason"],
                )
            )
        t = funding_tranches.c
        result = await conn.execute(
            select(funding_tranches).where(t.grant_id.in_(ids)).order_by(t.grant_id, t.number)
        )
        for tr in result.mappings():
            tranches[tr["grant_id"]].append(
                TrancheRow(
                    number=int(tr["number"]),
                    amount_cents=int(tr["amount_cents"]),
                    condition=tr["condition"],
                    expected_on=tr["expected_on"],
                    received_on=tr["received_on"],
                    condition_met_on=tr["condition_met_on"],
                    cancelled_on=tr["cancelled_on"],
                    receipts=tuple(receipts[(tr["grant_id"], int(tr["number"]))]),
                )
            )
    return [
        GrantRow(
            grant_id=row["grant_id"],
            position=int(row["position"]),
            funder=row["funder"],
            purpose=row["purpose"],
            restricted=bool(row["restricted"]),
            public_funder=bool(row["public_funder"]),
            awarded_on=row["awarded_on"],
            original_cents=int(row["original_cents"]),
            reduced_on=row["reduced_on"],
            closed_on=row["closed_on"],
            tranches=tuple(tranches[row["grant_id"]]),
        )
        for row in rows
    ], page


async def grant_by_id(conn: AsyncConnection, grant_id: UUID) -> GrantRow | None:
    rows, _ = await grants(conn, grant_ids=[grant_id], first=1)
    return rows[0] if rows else None


@dataclass(frozen=True)
class PublicGrantReceipt:
    grant_id: UUID
    payer: str
    purpose: str
    tranche: int
    amount_cents: int
    received_on: date


async def public_grant_receipts(conn: AsyncConnection, year: int) -> list[PublicGrantReceipt]:
    """Money received in `year` from public funders, one row per tranche received."""
    g, t = funding_grants.c, funding_tranches.c
    result = await conn.execute(
        select(g.grant_id, g.funder, g.purpose, t.number, t.amount_cents, t.received_on)
        .select_from(funding_tranches.join(funding_grants, t.grant_id == g.grant_id))
        .where(g.public_funder.is_(True))
        .where(t.received_on >= date(year, 1, 1))
        .where(t.received_on <= date(year, 12, 31))
        .order_by(t.received_on, g.position, t.number)
    )
    return [
        PublicGrantReceipt(grant_id, funder, purpose, int(number), int(cents), received_on)
        for grant_id, funder, purpose, number, cents, received_on in result
    ]


# -- donations --------------------------------------------------------------------


@dataclass(frozen=True)
class DonationRow:
    donation_id: UUID
    position: int
    received_on: date
    amount_cents: int
    restricted: bool
    method: str
    donor: str | None
    purpose: str | None
    reversed_on: date | None
    reversal_entry_id: UUID | None
    reversal_reason: str | None


async def donations(
    conn: AsyncConnection,
    *,
    from_date: date | None,
    to_date: date | None,
    first: int,
    after: str | None,
    donation_id: UUID | None = None,
) -> tuple[list[DonationRow], Page]:
    d = funding_donations.c
    query = select(funding_donations)
    if donation_id is not None:
        query = query.where(d.donation_id == donation_id)
    if from_date is not None:
        query = query.where(d.received_on >= from_date)
    if to_date is not None:
        query = query.where(d.received_on <= to_date)
    rows, page = await _fetch_page(conn, query, d.position, first, after, "donations")
    return [
        DonationRow(
            donation_id=row["donation_id"],
            position=int(row["position"]),
            received_on=row["received_on"],
            amount_cents=int(row["amount_cents"]),
            restricted=bool(row["restricted"]),
            method=row["method"],
            donor=row["donor"],
            purpose=row["purpose"],
            reversed_on=row["reversed_on"],
            reversal_entry_id=row["reversal_entry_id"],
            reversal_reason=row["reversal_reason"],
        )
        for row in rows
    ], page


@dataclass(frozen=True)
class DonationTotals:
    """Money donations over a period, as the ledger counts them: each donation on its
    date, each reversal (taking the donation off again) on its own date. So `net` is
    the period's movement on the donation accounts (credits less debits)."""

    received_cents: int
    reversed_cents: int
    unrestricted_cents: int
    restricted_cents: int
    cash_cents: int
    bank_cents: int

    @property
    def net_cents(self) -> int:
        return self.received_cents - self.reversed_cents


def _in_period(column: Any, from_date: date | None, to_date: date | None) -> list[Any]:
    conditions = [column.is_not(None)]
    if from_date is not None:
        conditions.append(column >= from_date)
    if to_date is not None:
        conditions.append(column <= to_date)
    return conditions


async def donation_totals(
    conn: AsyncConnection, *, from_date: date | None, to_date: date | None
) -> DonationTotals:
    """Two grouped sums, each on an index (received_on, reversed_on): the cost grows
    with the period's donations, not with the page asked for."""
    d = funding_donations.c
    sums: dict[str, dict[tuple[bool, str], int]] = {}
    for name, day in (("received", d.received_on), ("reversed", d.reversed_on)):
        result = await conn.execute(
            select(d.restricted, d.method, func.sum(d.amount_cents))
            .where(*_in_period(day, from_date, to_date))
            .group_by(d.restricted, d.method)
        )
        sums[name] = {
            (bool(restricted), method): int(cents) for restricted, method, cents in result
        }
    net: dict[tuple[bool, str], int] = defaultdict(int)
    for key, cents in sums["received"].items():
        net[key] += cents
    for key, cents in sums["reversed"].items():
        net[key] -= cents
    return DonationTotals(
        received_cents=sum(sums["received"].values()),
        reversed_cents=sum(sums["reversed"].values()),
        unrestricted_cents=sum(c for (restricted, _), c in net.items() if not restricted),
        restricted_cents=sum(c for (restricted, _), c in net.items() if restricted),
        cash_cents=sum(c for (_, method), c in net.items() if method == "cash"),
        bank_cents=sum(c for (_, method), c in net.items() if method == "bank"),
    )


@dataclass(frozen=True)
class NonCashRow:
    contribution_id: UUID
    position: int
    kind: str
    contributed_on: date
    description: str
    fair_value_cents: int
    minutes: int | None
    restricted: bool
    donor: str | None
    reversed_on: date | None
    reversal_reason: str | None


async def non_cash(
    conn: AsyncConnection,
    *,
    from_date: date | None,
    to_date: date | None,
    first: int,
    after: str | None,
    contribution_id: UUID | None = None,
) -> tuple[list[NonCashRow], Page]:
    n = funding_non_cash.c
    query = select(funding_non_cash)
    if contribution_id is not None:
        query = query.where(n.contribution_id == contribution_id)
    if from_date is not None:
        query = query.where(n.contributed_on >= from_date)
    if to_date is not None:
        query = query.where(n.contributed_on <= to_date)
    rows, page = await _fetch_page(conn, query, n.position, first, after, "nonCashContributions")
    return [
        NonCashRow(
            contribution_id=row["contribution_id"],
            position=int(row["position"]),
            kind=row["kind"],
            contributed_on=row["contributed_on"],
            description=row["description"],
            fair_value_cents=int(row["fair_value_cents"]),
            minutes=None if row["minutes"] is None else int(row["minutes"]),
            restricted=bool(row["restricted"]),
            donor=row["donor"],
            reversed_on=row["reversed_on"],
            reversal_reason=row["reversal_reason"],
        )
        for row in rows
    ], page


@dataclass(frozen=True)
class NonCashTotals:
    in_kind_cents: int
    volunteer_minutes: int
    volunteer_cents: int


async def non_cash_totals(
    conn: AsyncConnection, *, from_date: date | None, to_date: date | None
) -> NonCashTotals:
    """Contributions dated in the period less reversals dated in it (as for money)."""
    n = funding_non_cash.c
    totals: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for sign, day in ((1, n.contributed_on), (-1, n.reversed_on)):
        query = (
            select(
                n.kind,
                func.coalesce(func.sum(n.fair_value_cents), 0),
                func.coalesce(func.sum(n.minutes), 0),
            )
            .where(*_in_period(day, from_date, to_date))
            .group_by(n.kind)
        )
        for kind, cents, minutes in await conn.execute(query):
            so_far = totals[kind]
            totals[kind] = (so_far[0] + sign * int(cents), so_far[1] + sign * int(minutes))
    in_kind = totals["in_kind"]
    volunteer = totals["volunteer_time"]
    return NonCashTotals(in_kind[0], volunteer[1], volunteer[0])


# -- contracts --------------------------------------------------------------------


@dataclass(frozen=True)
class ContractRow:
    contract_id: UUID
    position: int
    authority: str
    cig: str
    daily_rate_cents: int
    vat_rate_bp: int
    vat_nature: str | None
    split_payment: bool
    capacity: int
    starts_on: date
    ends_on: date | None
    pass_through_items: list[dict[str, Any]]
    presence_days: int
    invoiced_cents: int
    payable_cents: int
    paid_cents: int

    @property
    def outstanding_cents(self) -> int:
        return self.payable_cents - self.paid_cents


async def contracts(
    conn: AsyncConnection,
    *,
    first: int,
    after: str | None,
    contract_id: UUID | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
) -> tuple[list[ContractRow], Page]:
    """Contracts with presence days (in the period) and invoices (issued in the period).

    `paid` counts the payments of those invoices as the ledger counts them on `to`:
    each payment dated up to `to`, less those reversed by then (a reversal dated after
    `to` leaves its payment in). So `outstanding` is what those invoices still had due
    on `to`, and with no `from` it equals the balance of 1110 as of `to`."""
    c = funding_contracts.c
    query = select(funding_contracts)
    if contract_id is not None:
        query = query.where(c.contract_id == contract_id)
    rows, page = await _fetch_page(conn, query, c.position, first, after, "contracts")
    ids = [row["contract_id"] for row in rows]
    presence: dict[UUID, int] = {}
    invoiced: dict[UUID, tuple[int, int, int]] = {}
    if ids:
        p = funding_presence.c
        presence_query = (
            select(p.contract_id, func.sum(p.persons_present))
            .where(p.contract_id.in_(ids))
            .group_by(p.contract_id)
        )
        i = funding_invoices.c
        invoice_query = (
            select(i.contract_id, func.sum(i.total_cents), func.sum(i.payable_cents))
            .where(i.contract_id.in_(ids))
            .group_by(i.contract_id)
        )
        pay = funding_invoice_payments.c
        paid_query = (
            select(i.contract_id, func.sum(pay.amount_cents))
            .select_from(
                funding_invoice_payments.join(funding_invoices, pay.invoice_id == i.invoice_id)
            )
            .where(i.contract_id.in_(ids))
            .group_by(i.contract_id)
        )
        if from_date is not None:
            presence_query = presence_query.where(p.day >= from_date)
            invoice_query = invoice_query.where(i.issued_on >= from_date)
            paid_query = paid_query.where(i.issued_on >= from_date)
        if to_date is not None:
            presence_query = presence_query.where(p.day <= to_date)
            invoice_query = invoice_query.where(i.issued_on <= to_date)
            paid_query = paid_query.where(i.issued_on <= to_date).where(
                pay.paid_on <= to_date, or_(pay.reversed_on.is_(None), pay.reversed_on > to_date)
            )
        else:
            paid_query = paid_query.where(pay.reversed_on.is_(None))
        presence = {cid: int(total) for cid, total in await conn.execute(presence_query)}
        paid = {cid: int(cents) for cid, cents in await conn.execute(paid_query)}
        invoiced = {
            cid: (int(total), int(payable), paid.get(cid, 0))
            for cid, total, payable in await conn.execute(invoice_query)
        }
    return [
        ContractRow(
            contract_id=row["contract_id"],
            position=int(row["position"]),
            authority=row["authority"],
            cig=row["cig"],
            daily_rate_cents=int(row["daily_rate_cents"]),
            vat_rate_bp=int(row["vat_rate_bp"]),
            vat_nature=row["vat_nature"],
            split_payment=bool(row["split_payment"]),
            capacity=int(row["capacity"]),
            starts_on=row["starts_on"],
            ends_on=row["ends_on"],
            pass_through_items=list(row["pass_through_items"]),
            presence_days=presence.get(row["contract_id"], 0),
            invoiced_cents=invoiced.get(row["contract_id"], (0, 0, 0))[0],
            payable_cents=invoiced.get(row["contract_id"], (0, 0, 0))[1],
            paid_cents=invoiced.get(row["contract_id"], (0, 0, 0))[2],
        )
        for row in rows
    ], page


@dataclass(frozen=True)
class PresenceDayRow:
    day: date
    persons_present: int
    revision: int


async def presence_days(
    conn: AsyncConnection, contract_id: UUID, first_day: date, last_day: date
) -> list[PresenceDayRow]:
    p = funding_presence.c
    result = await conn.execute(
        select(p.day, p.persons_present, p.revision)
        .where(p.contract_id == contract_id)
        .where(p.day >= first_day)
        .where(p.day <= last_day)
        .order_by(p.day)
    )
    return [PresenceDayRow(day, int(persons), int(revision)) for day, persons, revision in result]


@dataclass(frozen=True)
class PaymentRow:
    """One payment of an invoice; `reversed_on` is set once it was reversed."""

    number: int
    paid_on: date
    amount_cents: int
    reversed_on: date | None
    reversal_entry_id: UUID | None
    reversal_reason: str | None


@dataclass(frozen=True)
class InvoiceRow:
    invoice_id: UUID
    position: int
    contract_id: UUID
    month: str
    number: str
    issued_on: date
    presence_days: int
    net_cents: int
    vat_cents: int
    pass_through_cents: int
    total_cents: int
    payable_cents: int
    paid_cents: int
    document: dict[str, Any]
    payments: tuple[PaymentRow, ...] = ()

    @property
    def outstanding_cents(self) -> int:
        return self.payable_cents - self.paid_cents


async def invoices(
    conn: AsyncConnection,
    *,
    first: int,
    after: str | None,
    contract_id: UUID | None = None,
    invoice_id: UUID | None = None,
) -> tuple[list[InvoiceRow], Page]:
    i = funding_invoices.c
    query = select(funding_invoices)
    if contract_id is not None:
        query = query.where(i.contract_id == contract_id)
    if invoice_id is not None:
        query = query.where(i.invoice_id == invoice_id)
    rows, page = await _fetch_page(conn, query, i.position, first, after, "contractInvoices")
    payments: dict[UUID, list[PaymentRow]] = defaultdict(list)
    if rows:
        # At most MAX_PAYMENTS_PER_INVOICE per invoice (domain/contracts.py).
        p = funding_invoice_payments.c
        for pm in (
            await conn.execute(
                select(funding_invoice_payments)
                .where(p.invoice_id.in_([row["invoice_id"] for row in rows]))
                .order_by(p.invoice_id, p.number)
            )
        ).mappings():
            payments[pm["invoice_id"]].append(
                PaymentRow(
                    number=int(pm["number"]),
                    paid_on=pm["paid_on"],
                    amount_cents=int(pm["amount_cents"]),
                    reversed_on=pm["reversed_on"],
                    reversal_entry_id=pm["reversal_entry_id"],
                    reversal_reason=pm["reversal_reason"],
                )
            )
    return [
        InvoiceRow(
            invoice_id=row["invoice_id"],
            position=int(row["position"]),
            contract_id=row["contract_id"],
            month=row["month"],
            number=row["number"],
            issued_on=row["issued_on"],
            presence_days=int(row["presence_days"]),
            net_cents=int(row["net_cents"]),
            vat_cents=int(row["vat_cents"]),
            pass_through_cents=int(row["pass_through_cents"]),
            total_cents=int(row["total_cents"]),
            payable_cents=int(row["payable_cents"]),
            paid_cents=int(row["paid_cents"]),
            document=dict(row["document"]),
            payments=tuple(payments[row["invoice_id"]]),
        )
        for row in rows
    ], page

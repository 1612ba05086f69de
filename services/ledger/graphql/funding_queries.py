"""Funding queries and reports (admin and auditor)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from gateway.context import Info
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import NotFound, ValidationError
from services.common.graphql import Money, check_page_size, money
from services.common.money import decimal_to_cents
from services.common.months import month_bounds
from services.ledger.graphql.funding_mutations import parse_id
from services.ledger.graphql.funding_types import (
    Contract,
    ContractConnection,
    ContractInvoice,
    ContractInvoiceConnection,
    Donation,
    DonationConnection,
    DonationTotals,
    Grant,
    GrantConnection,
    NonCashContribution,
    NonCashReport,
    PresenceDay,
    PresenceRegister,
    PublicGrantReceiptLine,
    PublicGrantsReport,
    page_info,
)
from services.ledger.projections import funding_queries as queries

READ = allow(Role.ADMIN, Role.AUDITOR)
# Law 124/2017 art. 1 c. 125: the duty applies from this yearly total; a parameter,
# so a change in the law is a different argument, not a code change.
DEFAULT_PUBLICATION_THRESHOLD = "10000.00"
MIN_YEAR, MAX_YEAR = 2000, 2999


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError("year", f"must be between {MIN_YEAR} and {MAX_YEAR}")


@strawberry.type
class FundingQuery:
    @strawberry.field(permission_classes=READ, description="One grant with its tranches.")
    async def grant(self, info: Info, id: strawberry.ID) -> Grant:
        grant_id = parse_id(id, field="id")
        async with info.context.runtime.read_engine.connect() as conn:
            row = await queries.grant_by_id(conn, grant_id)
        if row is None:
            raise NotFound(f"grant {grant_id} does not exist")
        return Grant.from_row(row)

    @strawberry.field(
        permission_classes=READ,
        description="Grants with amounts awarded, received, recognised and outstanding.",
    )
    async def grants(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> GrantConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, page = await queries.grants(conn, first=first, after=after)
        return GrantConnection.from_rows(rows, page)

    @strawberry.field(
        permission_classes=READ,
        description="Public grants received in a year (payer, amount, date, purpose) for the "
        "publication due by 30 June of the next year.",
    )
    async def public_grants_report(
        self, info: Info, year: int, threshold: Money | None = None
    ) -> PublicGrantsReport:
        _check_year(year)
        threshold_cents = (
            decimal_to_cents(threshold, field="threshold")
            if threshold is not None
            else int(DEFAULT_PUBLICATION_THRESHOLD.replace(".", ""))
        )
        if threshold_cents < 0:
            raise ValidationError("threshold", "must not be negative")
        async with info.context.runtime.read_engine.connect() as conn:
            receipts = await queries.public_grant_receipts(conn, year)
        total = sum(r.amount_cents for r in receipts)
        return PublicGrantsReport(
            year=year,
            threshold=money(threshold_cents),
            total=money(total),
            duty_applies=total >= threshold_cents,
            publish_by=date(year + 1, 6, 30),
            receipts=[PublicGrantReceiptLine.from_row(r) for r in receipts],
        )

    @strawberry.field(
        permission_classes=READ,
        description="Cash and bank donations received in the period (reversed ones show "
        "reversedOn), with the period's totals as the ledger counts them.",
    )
    async def donations(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> DonationConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, page = await queries.donations(
                conn, from_date=from_, to_date=to, first=first, after=after
            )
            totals = await queries.donation_totals(conn, from_date=from_, to_date=to)
        return DonationConnection(
            nodes=[Donation.from_row(r) for r in rows],
            page_info=page_info(page),
            totals=DonationTotals.from_totals(totals),
        )

    @strawberry.field(
        permission_classes=READ,
        description="In-kind donations and volunteer time at fair value, with totals "
        "(reversals taken off in the period they are dated in).",
    )
    async def non_cash_contributions(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> NonCashReport:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, page = await queries.non_cash(
                conn, from_date=from_, to_date=to, first=first, after=after
            )
            totals = await queries.non_cash_totals(conn, from_date=from_, to_date=to)
        return NonCashReport(
            in_kind_fair_value=money(totals.in_kind_cents),
            volunteer_minutes=totals.volunteer_minutes,
            volunteer_fair_value=money(totals.volunteer_cents),
            nodes=[NonCashContribution.from_row(r) for r in rows],
            page_info=page_info(page),
        )

    @strawberry.field(permission_classes=READ, description="One reception contract.")
    async def contract(
        self,
        info: Info,
        id: strawberry.ID,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> Contract:
        contract_id = parse_id(id, field="id")
        async with info.context.runtime.read_engine.connect() as conn:
            rows, _ = await queries.contracts(
                conn, first=1, after=None, contract_id=contract_id, from_date=from_, to_date=to
            )
        if not rows:
            raise NotFound(f"contract {contract_id} does not exist")
        return Contract.from_row(rows[0])

    @strawberry.field(
        permission_classes=READ,
        description="Contracts with presence days, invoiced, paid and outstanding "
        "(presence by day and invoices by issue date within from..to; paid: their payments "
        "dated up to `to`, less reversals dated up to `to`, so with no `from` outstanding "
        "equals account 1110 as of `to`).",
    )
    async def contracts(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ContractConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, page = await queries.contracts(
                conn, first=first, after=after, from_date=from_, to_date=to
            )
        return ContractConnection(
            nodes=[Contract.from_row(r) for r in rows], page_info=page_info(page)
        )

    @strawberry.field(
        permission_classes=READ, description="A contract's presence register for one month."
    )
    async def presence_register(
        self, info: Info, contract_id: strawberry.ID, month: str
    ) -> PresenceRegister:
        contract = parse_id(contract_id, field="contractId")
        first_day, last_day = month_bounds(month)
        async with info.context.runtime.read_engine.connect() as conn:
            days = await queries.presence_days(conn, contract, first_day, last_day)
        return PresenceRegister(
            contract_id=strawberry.ID(str(contract)),
            month=month,
            days=[PresenceDay.from_row(d) for d in days],
            presence_days=sum(d.persons_present for d in days),
            corrections=sum(d.revision - 1 for d in days),
        )

    @strawberry.field(permission_classes=READ, description="One contract invoice.")
    async def contract_invoice(self, info: Info, id: strawberry.ID) -> ContractInvoice:
        invoice_id = parse_id(id, field="id")
        async with info.context.runtime.read_engine.connect() as conn:
            rows, _ = await queries.invoices(conn, first=1, after=None, invoice_id=invoice_id)
        if not rows:
            raise NotFound(f"invoice {invoice_id} does not exist")
        return ContractInvoice.from_row(rows[0])

    @strawberry.field(permission_classes=READ, description="A contract's invoices.")
    async def contract_invoices(
        self,
        info: Info,
        contract_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ContractInvoiceConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        contract = None if contract_id is None else parse_id(contract_id, field="contractId")
        async with info.context.runtime.read_engine.connect() as conn:
            rows, page = await queries.invoices(
                conn, first=first, after=after, contract_id=contract
            )
        return ContractInvoiceConnection(
            nodes=[ContractInvoice.from_row(r) for r in rows], page_info=page_info(page)
        )

"""GraphQL types of grants, donations and reception contracts."""

from __future__ import annotations

import datetime as dt
from datetime import date
from enum import Enum
from uuid import UUID

import strawberry

from gateway.permissions import allow
from services.common.auth import Role
from services.common.graphql import Money, PageInfo, money
from services.ledger.domain.contracts import payment_entry_id
from services.ledger.domain.donations import DonationMethod, NonCashKind, donation_entry_id
from services.ledger.domain.facts import format_percent_bp
from services.ledger.domain.fatturapa import render_invoice
from services.ledger.domain.grants import receipt_entry_id
from services.ledger.projections.funding_queries import (
    ContractRow,
    DonationRow,
    GrantRow,
    InvoiceRow,
    NonCashRow,
    Page,
    PaymentRow,
    PresenceDayRow,
    PublicGrantReceipt,
    ReceiptRow,
    TrancheRow,
)
from services.ledger.projections.funding_queries import DonationTotals as DonationTotalsRow

strawberry.enum(DonationMethod, name="DonationMethod")
strawberry.enum(NonCashKind, name="NonCashKind")

# Donor names are personal data: admins see them, auditors see the amounts.
ADMIN_ONLY = allow(Role.ADMIN)


def page_info(page: Page) -> PageInfo:
    return PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)


def _id(value: object) -> strawberry.ID:
    return strawberry.ID(str(value))


@strawberry.enum
class TrancheStatus(Enum):
    PENDING = "pending"
    ADVANCE = "advance"
    RECEIVABLE = "receivable"
    RECOGNISED = "recognised"
    CUT = "cut"
    CANCELLED = "cancelled"


# A reversal's reason is free text that may name a person: admins only, like a donor.
REVERSAL_REASON = "Why it was reversed (admins only: free text may name a person)."


@strawberry.type(description="One receipt of a tranche's money, reversed or not.")
class TrancheReceipt:
    receipt: int = strawberry.field(description="1 for the tranche's first receipt, and so on.")
    received_on: date
    amount: Money
    entry_id: strawberry.ID = strawberry.field(description="The journal entry it posted.")
    reversed_on: date | None = strawberry.field(
        description="Set once reversed (reverseGrantTrancheReceipt)."
    )
    reversal_entry_id: strawberry.ID | None = strawberry.field(
        description="The journal entry that reversed it."
    )
    reversal_reason: str | None = strawberry.field(
        permission_classes=ADMIN_ONLY, description=REVERSAL_REASON
    )

    @classmethod
    def from_row(cls, grant_id: UUID, number: int, row: ReceiptRow) -> TrancheReceipt:
        return cls(
            receipt=row.receipt,
            received_on=row.received_on,
            amount=money(row.amount_cents),
            entry_id=_id(receipt_entry_id(grant_id, number, row.receipt)),
            reversed_on=row.reversed_on,
            reversal_entry_id=(
                None if row.reversal_entry_id is None else _id(row.reversal_entry_id)
            ),
            reversal_reason=row.reversal_reason,
        )


@strawberry.type
class GrantTranche:
    number: int
    amount: Money
    condition: str
    expected_date: date | None
    received_on: date | None = strawberry.field(
        description="The current receipt's date; null if never received or reversed."
    )
    condition_met_on: date | None
    cancelled_on: date | None
    status: TrancheStatus
    receipts: list[TrancheReceipt] = strawberry.field(
        description="Every receipt of this tranche, reversed ones included, oldest first."
    )

    @classmethod
    def from_row(cls, grant_id: UUID, row: TrancheRow) -> GrantTranche:
        return cls(
            number=row.number,
            amount=money(row.amount_cents),
            condition=row.condition,
            expected_date=row.expected_on,
            received_on=row.received_on,
            condition_met_on=row.condition_met_on,
            cancelled_on=row.cancelled_on,
            status=TrancheStatus(row.status),
            receipts=[TrancheReceipt.from_row(grant_id, row.number, r) for r in row.receipts],
        )


@strawberry.type
class Grant:
    id: strawberry.ID
    funder: str
    purpose: str
    restricted: bool
    public_funder: bool
    awarded_on: date
    original_amount: Money = strawberry.field(description="The award before any pro-rata cut.")
    awarded: Money = strawberry.field(description="The award as it stands now.")
    received: Money
    recognised: Money = strawberry.field(description="Recognised as revenue (conditions met).")
    outstanding: Money = strawberry.field(description="Awarded, not yet received.")
    advances: Money = strawberry.field(
        description="Received before the condition was met: a refundable liability."
    )
    reduced_on: date | None
    closed_on: date | None
    tranches: list[GrantTranche]

    @classmethod
    def from_row(cls, row: GrantRow) -> Grant:
        return cls(
            id=_id(row.grant_id),
            funder=row.funder,
            purpose=row.purpose,
            restricted=row.restricted,
            public_funder=row.public_funder,
            awarded_on=row.awarded_on,
            original_amount=money(row.original_cents),
            awarded=money(row.awarded_cents),
            received=money(row.received_cents),
            recognised=money(row.recognised_cents),
            outstanding=money(row.outstanding_cents),
            advances=money(row.advances_cents),
            reduced_on=row.reduced_on,
            closed_on=row.closed_on,
            tranches=[GrantTranche.from_row(row.grant_id, t) for t in row.tranches],
        )


@strawberry.type
class GrantTotals:
    awarded: Money
    received: Money
    recognised: Money
    outstanding: Money
    advances: Money


@strawberry.type
class GrantConnection:
    nodes: list[Grant]
    page_info: PageInfo
    totals: GrantTotals = strawberry.field(description="Totals of the grants on this page.")

    @classmethod
    def from_rows(cls, rows: list[GrantRow], page: Page) -> GrantConnection:
        return cls(
            nodes=[Grant.from_row(r) for r in rows],
            page_info=page_info(page),
            totals=GrantTotals(
                awarded=money(sum(r.awarded_cents for r in rows)),
                received=money(sum(r.received_cents for r in rows)),
                recognised=money(sum(r.recognised_cents for r in rows)),
                outstanding=money(sum(r.outstanding_cents for r in rows)),
                advances=money(sum(r.advances_cents for r in rows)),
            ),
        )


@strawberry.type
class PublicGrantReceiptLine:
    grant_id: strawberry.ID
    payer: str
    purpose: str
    tranche: int
    amount: Money
    received_on: date

    @classmethod
    def from_row(cls, row: PublicGrantReceipt) -> PublicGrantReceiptLine:
        return cls(
            grant_id=_id(row.grant_id),
            payer=row.payer,
            purpose=row.purpose,
            tranche=row.tranche,
            amount=money(row.amount_cents),
            received_on=row.received_on,
        )


@strawberry.type(
    description="Public grants received in a year, for the publication due by 30 June "
    "of the next year when their total reaches the threshold (law 124/2017)."
)
class PublicGrantsReport:
    year: int
    threshold: Money
    total: Money
    duty_applies: bool
    publish_by: date
    receipts: list[PublicGrantReceiptLine]


@strawberry.type
class Donation:
    id: strawberry.ID
    date: date
    amount: Money
    restricted: bool
    method: DonationMethod
    purpose: str | None
    entry_id: strawberry.ID = strawberry.field(description="The journal entry it posted.")
    reversed_on: dt.date | None = strawberry.field(
        description="Set once reversed (reverseDonation): it no longer counts from that date."
    )
    reversal_entry_id: strawberry.ID | None = strawberry.field(
        description="The journal entry that reversed it."
    )
    donor: str | None = strawberry.field(permission_classes=ADMIN_ONLY)
    reversal_reason: str | None = strawberry.field(
        permission_classes=ADMIN_ONLY, description=REVERSAL_REASON
    )

    @classmethod
    def from_row(cls, row: DonationRow) -> Donation:
        return cls(
            id=_id(row.donation_id),
            date=row.received_on,
            amount=money(row.amount_cents),
            restricted=row.restricted,
            method=DonationMethod(row.method),
            purpose=row.purpose,
            entry_id=_id(donation_entry_id(row.donation_id)),
            reversed_on=row.reversed_on,
            reversal_entry_id=(
                None if row.reversal_entry_id is None else _id(row.reversal_entry_id)
            ),
            donor=row.donor,
            reversal_reason=row.reversal_reason,
        )


@strawberry.type(
    description="Money donations in the period as the ledger counts them: each donation "
    "on its date, each reversal on its own date. `net` equals the period's movement on "
    "the donation accounts (4400 + 4410); a donation reversed within the period nets to 0."
)
class DonationTotals:
    received: Money = strawberry.field(description="Donations dated in the period.")
    reversed: Money = strawberry.field(description="Reversals dated in the period.")
    net: Money = strawberry.field(description="received - reversed.")
    unrestricted: Money = strawberry.field(description="Net, unrestricted (account 4400).")
    restricted: Money = strawberry.field(description="Net, restricted (account 4410).")
    cash: Money = strawberry.field(description="Net, received in cash.")
    bank: Money = strawberry.field(description="Net, received by bank.")

    @classmethod
    def from_totals(cls, totals: DonationTotalsRow) -> DonationTotals:
        return cls(
            received=money(totals.received_cents),
            reversed=money(totals.reversed_cents),
            net=money(totals.net_cents),
            unrestricted=money(totals.unrestricted_cents),
            restricted=money(totals.restricted_cents),
            cash=money(totals.cash_cents),
            bank=money(totals.bank_cents),
        )


@strawberry.type
class DonationConnection:
    nodes: list[Donation]
    page_info: PageInfo
    totals: DonationTotals = strawberry.field(
        description="Over the whole period (from..to), not just this page."
    )


@strawberry.type(description="Goods in kind or volunteer time at fair value; never posted.")
class NonCashContribution:
    id: strawberry.ID
    kind: NonCashKind
    date: date
    description: str
    fair_value: Money
    minutes: int | None
    restricted: bool
    reversed_on: dt.date | None = strawberry.field(
        description="Set once reversed (reverseDonation): it no longer counts from that date."
    )
    donor: str | None = strawberry.field(permission_classes=ADMIN_ONLY)
    reversal_reason: str | None = strawberry.field(
        permission_classes=ADMIN_ONLY, description=REVERSAL_REASON
    )

    @classmethod
    def from_row(cls, row: NonCashRow) -> NonCashContribution:
        return cls(
            id=_id(row.contribution_id),
            kind=NonCashKind(row.kind),
            date=row.contributed_on,
            description=row.description,
            fair_value=money(row.fair_value_cents),
            minutes=row.minutes,
            restricted=row.restricted,
            reversed_on=row.reversed_on,
            donor=row.donor,
            reversal_reason=row.reversal_reason,
        )


@strawberry.type
class NonCashReport:
    in_kind_fair_value: Money = strawberry.field(
        description="Goods dated in the period, less reversals dated in it."
    )
    volunteer_minutes: int = strawberry.field(
        description="Minutes dated in the period, less reversals dated in it."
    )
    volunteer_fair_value: Money
    nodes: list[NonCashContribution]
    page_info: PageInfo


@strawberry.type
class PassThroughItem:
    description: str
    amount_per_person_day: Money
    vat_nature: str


@strawberry.type
class Contract:
    id: strawberry.ID
    authority: str
    cig: str
    daily_rate: Money
    vat_rate: str = strawberry.field(description='Percent, e.g. "5.00".')
    vat_nature: str | None
    split_payment: bool
    capacity: int
    start_date: date
    end_date: date | None
    pass_through_items: list[PassThroughItem]
    presence_days: int = strawberry.field(description="Person-days present (in the period).")
    invoiced: Money = strawberry.field(description="Invoice totals (in the period).")
    payable: Money = strawberry.field(description="Invoiced less VAT paid by split payment.")
    paid: Money = strawberry.field(
        description="Payments of those invoices dated up to `to`, less reversals dated up "
        "to `to` (as the ledger counts them on `to`)."
    )
    outstanding: Money = strawberry.field(description="Payable less paid: still due on `to`.")

    @classmethod
    def from_row(cls, row: ContractRow) -> Contract:
        return cls(
            id=_id(row.contract_id),
            authority=row.authority,
            cig=row.cig,
            daily_rate=money(row.daily_rate_cents),
            vat_rate=format_percent_bp(row.vat_rate_bp),
            vat_nature=row.vat_nature,
            split_payment=row.split_payment,
            capacity=row.capacity,
            start_date=row.starts_on,
            end_date=row.ends_on,
            pass_through_items=[
                PassThroughItem(
                    description=item["description"],
                    amount_per_person_day=money(int(item["amount_per_person_day_cents"])),
                    vat_nature=item["vat_nature"],
                )
                for item in row.pass_through_items
            ],
            presence_days=row.presence_days,
            invoiced=money(row.invoiced_cents),
            payable=money(row.payable_cents),
            paid=money(row.paid_cents),
            outstanding=money(row.outstanding_cents),
        )


@strawberry.type
class ContractConnection:
    nodes: list[Contract]
    page_info: PageInfo


@strawberry.type
class PresenceRecord:
    contract_id: strawberry.ID
    date: date
    persons_present: int
    revision: int = strawberry.field(description="1 for the first record; more for corrections.")


@strawberry.type
class PresenceDay:
    date: date
    persons_present: int
    revision: int

    @classmethod
    def from_row(cls, row: PresenceDayRow) -> PresenceDay:
        return cls(date=row.day, persons_present=row.persons_present, revision=row.revision)


@strawberry.type
class PresenceRegister:
    contract_id: strawberry.ID
    month: str
    days: list[PresenceDay]
    presence_days: int
    corrections: int


@strawberry.type
class InvoicePassThroughLine:
    description: str
    quantity: int
    unit_amount: Money
    amount: Money
    vat_nature: str


@strawberry.type(description="One payment received on an invoice, reversed or not.")
class ContractPayment:
    number: int = strawberry.field(description="1 for the invoice's first payment, and so on.")
    date: dt.date
    amount: Money
    entry_id: strawberry.ID = strawberry.field(description="The journal entry it posted.")
    reversed_on: dt.date | None = strawberry.field(
        description="Set once reversed (reverseContractPayment): no longer counted as paid."
    )
    reversal_entry_id: strawberry.ID | None = strawberry.field(
        description="The journal entry that reversed it."
    )
    reversal_reason: str | None = strawberry.field(
        permission_classes=ADMIN_ONLY, description=REVERSAL_REASON
    )

    @classmethod
    def from_row(cls, invoice_id: UUID, row: PaymentRow) -> ContractPayment:
        return cls(
            number=row.number,
            date=row.paid_on,
            amount=money(row.amount_cents),
            entry_id=_id(payment_entry_id(invoice_id, row.number)),
            reversed_on=row.reversed_on,
            reversal_entry_id=(
                None if row.reversal_entry_id is None else _id(row.reversal_entry_id)
            ),
            reversal_reason=row.reversal_reason,
        )


@strawberry.type
class ContractInvoice:
    id: strawberry.ID
    contract_id: strawberry.ID
    month: str
    number: str
    issue_date: date
    presence_days: int
    daily_rate: Money
    net: Money
    vat_rate: str
    vat: Money
    split_payment: bool
    pass_through: list[InvoicePassThroughLine]
    pass_through_total: Money
    total: Money
    payable: Money = strawberry.field(description="What the public body pays us.")
    paid: Money = strawberry.field(description="Payments not reversed.")
    outstanding: Money
    stamp_duty: Money = strawberry.field(
        description="Virtual stamp duty (imposta di bollo) owed on the invoice, decided at "
        "issue: due when its amounts outside VAT (Natura N1) exceed the threshold in force "
        "then; 0.00 when none. The cooperative's cost, payable to the State: not part of "
        "the total or of what the public body pays."
    )
    cig: str
    payments: list[ContractPayment] = strawberry.field(
        description="Every payment recorded, reversed ones included, in order."
    )
    document: strawberry.Private[dict[str, object]]

    @strawberry.field(description="The FatturaPA (FPA12) XML document.")
    def xml(self) -> str:
        return render_invoice(self.document)

    @classmethod
    def from_row(cls, row: InvoiceRow) -> ContractInvoice:
        doc = row.document
        return cls(
            id=_id(row.invoice_id),
            contract_id=_id(row.contract_id),
            month=row.month,
            number=row.number,
            issue_date=row.issued_on,
            presence_days=row.presence_days,
            daily_rate=money(int(doc["daily_rate_cents"])),
            net=money(row.net_cents),
            vat_rate=format_percent_bp(int(doc["vat_rate_bp"])),
            vat=money(row.vat_cents),
            split_payment=bool(doc["split_payment"]),
            pass_through=[
                InvoicePassThroughLine(
                    description=item["description"],
                    quantity=int(item["quantity"]),
                    unit_amount=money(int(item["unit_cents"])),
                    amount=money(int(item["amount_cents"])),
                    vat_nature=item["vat_nature"],
                )
                for item in doc["pass_through"]
            ],
            pass_through_total=money(row.pass_through_cents),
            total=money(row.total_cents),
            payable=money(row.payable_cents),
            paid=money(row.paid_cents),
            outstanding=money(row.outstanding_cents),
            # Invoices issued before stamp duty was recorded owe none.
            stamp_duty=money(int(doc.get("stamp_duty_cents") or 0)),
            cig=str(doc["cig"]),
            payments=[ContractPayment.from_row(row.invoice_id, p) for p in row.payments],
            document=doc,
        )


@strawberry.type
class ContractInvoiceConnection:
    nodes: list[ContractInvoice]
    page_info: PageInfo


@strawberry.type(description="A year's contract invoice numbers (PA-<year>-<number>).")
class InvoiceNumbering:
    year: int
    last_number: int = strawberry.field(description="0 before the year's first invoice.")
    last_issued_on: date | None
    next_invoice_number: str


@strawberry.type
class InvoicingProfile:
    name: str
    vat_number: str
    tax_code: str | None
    tax_regime: str
    iban: str | None

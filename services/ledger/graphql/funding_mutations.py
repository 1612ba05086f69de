"""Funding mutations: grants, donations, non-cash contributions, reception contracts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, TypeVar
from uuid import UUID

import strawberry

from gateway.context import Info, run_mutation
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import NotFound, ValidationError
from services.common.graphql import (
    ConflictResult,
    IdempotencyKeyReusedResult,
    Money,
    NotFoundResult,
    ValidationErrorResult,
)
from services.common.idempotency import Outcome
from services.common.money import decimal_to_cents, parse_percent_bp
from services.common.months import parse_month
from services.ledger.domain.contracts import Address, PassThroughItem
from services.ledger.domain.donations import DonationMethod
from services.ledger.domain.donations import NonCashContribution as DomainNonCash
from services.ledger.domain.grants import TrancheTerms
from services.ledger.funding import PresenceResult
from services.ledger.graphql.funding_types import (
    Contract,
    ContractInvoice,
    Donation,
    Grant,
    InvoiceNumbering,
    InvoicingProfile,
    NonCashContribution,
    PresenceRecord,
)
from services.ledger.projections import funding_queries as queries

T = TypeVar("T")
M = TypeVar("M")

GrantResult = Annotated[
    Grant | ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult,
    strawberry.union("GrantResult"),
]
DonationResult = Annotated[
    Donation | ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult,
    strawberry.union("DonationResult"),
]
NonCashResult = Annotated[
    NonCashContribution
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("NonCashContributionResult"),
]
InvoicingProfileResult = Annotated[
    InvoicingProfile
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("InvoicingProfileResult"),
]
InvoiceNumberingResult = Annotated[
    InvoiceNumbering
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("InvoiceNumberingResult"),
]
ContractResult = Annotated[
    Contract | ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult,
    strawberry.union("ContractResult"),
]
PresenceResultUnion = Annotated[
    PresenceRecord
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("PresenceRecordResult"),
]
ReverseDonationResult = Annotated[
    Donation
    | NonCashContribution
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("ReverseDonationResult"),
]
ContractInvoiceResult = Annotated[
    ContractInvoice
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("ContractInvoiceResult"),
]


def parse_id(value: str, *, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(field, "not an id returned by this API") from None


def cents(amount: Money, field: str) -> int:
    return decimal_to_cents(amount, field=field)


async def _read(info: Info, fetch: Callable[[Any], Awaitable[T | None]], what: str) -> T:
    async with info.context.runtime.read_engine.connect() as conn:
        row = await fetch(conn)
    if row is None:  # the read-your-writes wait guarantees the projection has it
        raise NotFound(f"{what} is not projected yet")
    return row


# -- inputs -------------------------------------------------------------------------


@strawberry.input
class TrancheInput:
    amount: Money
    condition: str
    expected_date: date | None = None


@strawberry.input
class AwardGrantInput:
    idempotency_key: str
    funder: str
    purpose: str
    amount: Money
    tranches: list[TrancheInput]
    restricted: bool = False
    public_funder: bool = strawberry.field(
        default=False, description="A public body: counts for the yearly publication duty."
    )
    awarded_on: date | None = None


@strawberry.input
class GrantTrancheInput:
    idempotency_key: str
    grant_id: strawberry.ID
    tranche: int = strawberry.field(description="The tranche's number, from 1.")
    date: date | None = strawberry.field(default=None, description="Default: today.")


@strawberry.input
class ReverseGrantTrancheReceiptInput:
    idempotency_key: str
    grant_id: strawberry.ID
    tranche: int = strawberry.field(description="The number of the tranche received wrong.")
    effective_date: date = strawberry.field(
        description="The correction's date: not before the receipt's, not in the future."
    )
    reason: str = strawberry.field(
        description="Why (1-500 characters). Kept on the receipt's record for admins, "
        "never in the ledger."
    )


@strawberry.input
class ReduceGrantInput:
    idempotency_key: str
    grant_id: strawberry.ID
    budgeted_costs: Money
    reported_costs: Money
    date: date | None = None


@strawberry.input
class CloseGrantInput:
    idempotency_key: str
    grant_id: strawberry.ID
    date: date | None = None


@strawberry.input
class RecordDonationInput:
    idempotency_key: str
    amount: Money
    restricted: bool = False
    donor: str | None = None
    purpose: str | None = strawberry.field(
        default=None, description="Required for a restricted donation."
    )
    method: DonationMethod = DonationMethod.BANK
    date: date | None = None


@strawberry.input
class RecordInKindDonationInput:
    idempotency_key: str
    description: str
    fair_value: Money
    restricted: bool = False
    donor: str | None = None
    date: date | None = None


@strawberry.input
class RecordVolunteerHoursInput:
    idempotency_key: str
    activity: str
    minutes: int
    hourly_fair_value: Money
    date: date | None = None


@strawberry.input
class ReverseDonationInput:
    idempotency_key: str
    donation_id: strawberry.ID = strawberry.field(
        description="From recordDonation, recordInKindDonation or recordVolunteerHours."
    )
    effective_date: date = strawberry.field(
        description="The correction's date: not before the donation's, not in the future."
    )
    reason: str = strawberry.field(
        description="Why (1-500 characters). Kept on the donation record for admins, "
        "never in the ledger."
    )


@strawberry.input
class InvoiceAddressInput:
    street: str
    postcode: str
    municipality: str
    province: str | None = None
    country: str = "IT"

    def to_domain(self) -> Address:
        return Address(self.street, self.postcode, self.municipality, self.province, self.country)


@strawberry.input
class SetInvoicingProfileInput:
    idempotency_key: str
    name: str
    vat_number: str
    address: InvoiceAddressInput
    tax_code: str | None = None
    tax_regime: str = "RF01"
    iban: str | None = None


@strawberry.input
class ContinueInvoiceNumberingInput:
    idempotency_key: str
    year: int
    last_number: int = strawberry.field(
        description="The last number the cooperative issued this year in another system."
    )
    last_issued_on: date = strawberry.field(description="That invoice's date.")


@strawberry.input
class PassThroughItemInput:
    description: str
    amount_per_person_day: Money
    vat_nature: str = "N1"


@strawberry.input
class RegisterContractInput:
    idempotency_key: str
    authority: str
    cig: str
    daily_rate: Money
    authority_tax_code: str
    authority_office_code: str = strawberry.field(
        description="The public body's 6-character office code for e-invoices."
    )
    authority_address: InvoiceAddressInput
    capacity: int
    start_date: date
    vat_rate: str = strawberry.field(default="5", description='Percent, e.g. "5".')
    vat_nature: str | None = None
    split_payment: bool = True
    end_date: date | None = None
    agreement_reference: str | None = None
    pass_through_items: list[PassThroughItemInput] = strawberry.field(default_factory=list)


@strawberry.input
class RecordPresenceInput:
    idempotency_key: str
    contract_id: strawberry.ID
    date: date
    persons_present: int


@strawberry.input
class InvoiceContractInput:
    idempotency_key: str
    contract_id: strawberry.ID
    month: str = strawberry.field(description="YYYY-MM")
    issue_date: date | None = strawberry.field(
        default=None,
        description="Default: today. From the first day after the month: invoicing closes "
        "its presence register.",
    )


@strawberry.input
class RecordContractPaymentInput:
    idempotency_key: str
    invoice_id: strawberry.ID
    amount: Money
    date: date | None = None


@strawberry.input
class ReverseContractPaymentInput:
    idempotency_key: str
    invoice_id: strawberry.ID
    payment_number: int = strawberry.field(
        description="The payment's number on the invoice (ContractInvoice.payments), from 1."
    )
    effective_date: date = strawberry.field(
        description="The correction's date: not before the payment's, not in the future."
    )
    reason: str = strawberry.field(
        description="Why (1-500 characters). Kept on the payment's record for admins, "
        "never in the ledger."
    )


# -- resolvers ------------------------------------------------------------------------

ADMIN = allow(Role.ADMIN)


async def _grant(info: Info, outcome: Outcome[Any]) -> Grant:
    row = await _read(info, lambda c: queries.grant_by_id(c, outcome.result.id), "grant")
    return Grant.from_row(row)


async def _invoice(info: Info, invoice_id: UUID) -> ContractInvoice:
    async def fetch(conn: Any) -> queries.InvoiceRow | None:
        rows, _ = await queries.invoices(conn, first=1, after=None, invoice_id=invoice_id)
        return rows[0] if rows else None

    return ContractInvoice.from_row(await _read(info, fetch, "invoice"))


@strawberry.type
class FundingMutation:
    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Award a grant in tranches, each paid on a condition. Posts nothing yet.",
    )
    async def award_grant(self, info: Info, input: AwardGrantInput) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.award_grant(
                key=input.idempotency_key,
                actor=actor,
                funder=input.funder,
                purpose=input.purpose,
                amount_cents=cents(input.amount, "amount"),
                restricted=input.restricted,
                public_funder=input.public_funder,
                awarded_on=input.awarded_on,
                tranches=[
                    TrancheTerms(
                        cents(t.amount, f"tranches[{i}].amount"), t.condition, t.expected_date
                    )
                    for i, t in enumerate(input.tranches)
                ],
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Record a tranche's money: an advance (liability) until its condition is met.",
    )
    async def receive_grant_tranche(self, info: Info, input: GrantTrancheInput) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.receive_grant_tranche(
                key=input.idempotency_key,
                actor=actor,
                grant_id=parse_id(input.grant_id, field="grantId"),
                tranche=input.tranche,
                received_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Correct a tranche received wrong (the money was another tranche's, or "
        "never came): the tranche is not received any more (it can be received again) and "
        "its receipt's journal entry is reversed in the same save. Refused (Conflict) once a "
        "later step was decided on the receipt: the condition met after it, a pro-rata cut, "
        "the closing.",
    )
    async def reverse_grant_tranche_receipt(
        self, info: Info, input: ReverseGrantTrancheReceiptInput
    ) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.reverse_grant_tranche_receipt(
                key=input.idempotency_key,
                actor=actor,
                grant_id=parse_id(input.grant_id, field="grantId"),
                tranche=input.tranche,
                reversed_on=input.effective_date,
                reason=input.reason,
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Mark a tranche's condition met: the tranche becomes grant revenue.",
    )
    async def meet_grant_condition(self, info: Info, input: GrantTrancheInput) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.meet_grant_condition(
                key=input.idempotency_key,
                actor=actor,
                grant_id=parse_id(input.grant_id, field="grantId"),
                tranche=input.tranche,
                met_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Cut the award pro rata (award x reported / budgeted, floored to the cent) "
        "from the last unpaid tranche back.",
    )
    async def reduce_grant(self, info: Info, input: ReduceGrantInput) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.reduce_grant(
                key=input.idempotency_key,
                actor=actor,
                grant_id=parse_id(input.grant_id, field="grantId"),
                budget_cents=cents(input.budgeted_costs, "budgetedCosts"),
                reported_cents=cents(input.reported_costs, "reportedCosts"),
                reduced_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Close a grant: unpaid tranches are cancelled (recognised ones written off).",
    )
    async def close_grant(self, info: Info, input: CloseGrantInput) -> GrantResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.close_grant(
                key=input.idempotency_key,
                actor=actor,
                grant_id=parse_id(input.grant_id, field="grantId"),
                closed_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _grant(info, o))

    @strawberry.mutation(permission_classes=ADMIN, description="Record a cash or bank donation.")
    async def record_donation(self, info: Info, input: RecordDonationInput) -> DonationResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.record_donation(
                key=input.idempotency_key,
                actor=actor,
                amount_cents=cents(input.amount, "amount"),
                restricted=input.restricted,
                method=input.method,
                donor=input.donor,
                purpose=input.purpose,
                received_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _donation(info, o.result.id))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Correct a donation recorded wrong (amount, date, donor...): reverse it "
        "(once) and record the right one anew. For money, its journal entry is reversed in "
        "the same save; goods in kind and volunteer time were never posted.",
    )
    async def reverse_donation(
        self, info: Info, input: ReverseDonationInput
    ) -> ReverseDonationResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.reverse_donation(
                key=input.idempotency_key,
                actor=actor,
                donation_id=parse_id(input.donation_id, field="donationId"),
                reversed_on=input.effective_date,
                reason=input.reason,
            )

        async def read(outcome: Outcome[Any]) -> Donation | NonCashContribution:
            if isinstance(outcome.result, DomainNonCash):
                return await _non_cash(info, outcome)
            return await _donation(info, outcome.result.id)

        return await run_mutation(info, command, read)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Record goods donated in kind at fair value (reported, not posted).",
    )
    async def record_in_kind_donation(
        self, info: Info, input: RecordInKindDonationInput
    ) -> NonCashResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.record_in_kind_donation(
                key=input.idempotency_key,
                actor=actor,
                description=input.description,
                fair_value_cents=cents(input.fair_value, "fairValue"),
                restricted=input.restricted,
                donor=input.donor,
                received_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _non_cash(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Record volunteer time at a fair hourly value (reported, not posted).",
    )
    async def record_volunteer_hours(
        self, info: Info, input: RecordVolunteerHoursInput
    ) -> NonCashResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.record_volunteer_time(
                key=input.idempotency_key,
                actor=actor,
                activity=input.activity,
                minutes=input.minutes,
                hourly_fair_value_cents=cents(input.hourly_fair_value, "hourlyFairValue"),
                worked_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _non_cash(info, o))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="The cooperative's data as invoice issuer (applies to invoices issued later).",
    )
    async def set_invoicing_profile(
        self, info: Info, input: SetInvoicingProfileInput
    ) -> InvoicingProfileResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.set_invoicing_profile(
                key=input.idempotency_key,
                actor=actor,
                name=input.name,
                vat_number=input.vat_number,
                tax_code=input.tax_code,
                tax_regime=input.tax_regime,
                address=input.address.to_domain(),
                iban=input.iban,
            )

        async def read(outcome: Outcome[Any]) -> InvoicingProfile:
            details = outcome.result.details
            return InvoicingProfile(
                name=details["name"],
                vat_number=details["vat_number"],
                tax_code=details["tax_code"],
                tax_regime=details["tax_regime"],
                iban=details["iban"],
            )

        return await run_mutation(info, command, read)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Carry a year's contract invoice numbers on from another system's last "
        "one (going live mid-year: a number never repeats within a year). Only before the "
        "year's first invoice here.",
    )
    async def continue_invoice_numbering(
        self, info: Info, input: ContinueInvoiceNumberingInput
    ) -> InvoiceNumberingResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.continue_invoice_numbering(
                key=input.idempotency_key,
                actor=actor,
                year=input.year,
                last_number=input.last_number,
                last_issued_on=input.last_issued_on,
            )

        async def read(outcome: Outcome[Any]) -> InvoiceNumbering:
            sequence = outcome.result
            return InvoiceNumbering(
                year=sequence.year,
                last_number=sequence.last_number,
                last_issued_on=sequence.last_issued_on,
                next_invoice_number=sequence.number_of(sequence.last_number + 1),
            )

        return await run_mutation(info, command, read)

    @strawberry.mutation(
        permission_classes=ADMIN, description="Register a reception contract (one per CIG)."
    )
    async def register_contract(self, info: Info, input: RegisterContractInput) -> ContractResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.register_contract(
                key=input.idempotency_key,
                actor=actor,
                authority=input.authority,
                authority_tax_code=input.authority_tax_code,
                authority_office_code=input.authority_office_code,
                authority_address=input.authority_address.to_domain(),
                cig=input.cig,
                agreement_reference=input.agreement_reference,
                daily_rate_cents=cents(input.daily_rate, "dailyRate"),
                vat_rate_bp=parse_percent_bp(input.vat_rate, field="vatRate"),
                vat_nature=input.vat_nature,
                split_payment=input.split_payment,
                capacity=input.capacity,
                starts_on=input.start_date,
                ends_on=input.end_date,
                pass_through_items=[
                    PassThroughItem(
                        item.description,
                        cents(
                            item.amount_per_person_day, f"passThroughItems[{i}].amountPerPersonDay"
                        ),
                        item.vat_nature,
                    )
                    for i, item in enumerate(input.pass_through_items)
                ],
            )

        async def read(outcome: Outcome[Any]) -> Contract:
            async def fetch(conn: Any) -> queries.ContractRow | None:
                rows, _ = await queries.contracts(
                    conn, first=1, after=None, contract_id=outcome.result.id
                )
                return rows[0] if rows else None

            return Contract.from_row(await _read(info, fetch, "contract"))

        return await run_mutation(info, command, read)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Record the persons present on a day; a second record supersedes the first.",
    )
    async def record_presence(self, info: Info, input: RecordPresenceInput) -> PresenceResultUnion:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[PresenceResult]:
            return funding.record_presence(
                key=input.idempotency_key,
                actor=actor,
                contract_id=parse_id(input.contract_id, field="contractId"),
                day=input.date,
                persons_present=input.persons_present,
            )

        async def read(outcome: Outcome[PresenceResult]) -> PresenceRecord:
            result = outcome.result
            return PresenceRecord(
                contract_id=strawberry.ID(str(result.contract_id)),
                date=result.day,
                persons_present=result.persons_present,
                revision=result.revision,
            )

        return await run_mutation(info, command, read)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Invoice a month of a contract (once): persons x days x rate, pass-through "
        "items, VAT with split payment.",
    )
    async def invoice_contract(
        self, info: Info, input: InvoiceContractInput
    ) -> ContractInvoiceResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            parse_month(input.month)
            return funding.invoice_contract(
                key=input.idempotency_key,
                actor=actor,
                contract_id=parse_id(input.contract_id, field="contractId"),
                month=input.month,
                issued_on=input.issue_date,
            )

        return await run_mutation(info, command, lambda o: _invoice(info, o.result.id))

    @strawberry.mutation(
        permission_classes=ADMIN, description="Record money received from the public body."
    )
    async def record_contract_payment(
        self, info: Info, input: RecordContractPaymentInput
    ) -> ContractInvoiceResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.record_contract_payment(
                key=input.idempotency_key,
                actor=actor,
                invoice_id=parse_id(input.invoice_id, field="invoiceId"),
                amount_cents=cents(input.amount, "amount"),
                paid_on=input.date,
            )

        return await run_mutation(info, command, lambda o: _invoice(info, o.result.id))

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Correct a payment recorded wrong (amount, date, invoice): reverse it "
        "(once), so the amount is outstanding again, and record the right one anew. Its "
        "journal entry is reversed in the same save.",
    )
    async def reverse_contract_payment(
        self, info: Info, input: ReverseContractPaymentInput
    ) -> ContractInvoiceResult:
        funding = info.context.runtime.funding
        actor = info.context.actor

        def command() -> Outcome[Any]:
            return funding.reverse_contract_payment(
                key=input.idempotency_key,
                actor=actor,
                invoice_id=parse_id(input.invoice_id, field="invoiceId"),
                payment_number=input.payment_number,
                reversed_on=input.effective_date,
                reason=input.reason,
            )

        return await run_mutation(info, command, lambda o: _invoice(info, o.result.id))


async def _donation(info: Info, donation_id: UUID) -> Donation:
    async def fetch(conn: Any) -> queries.DonationRow | None:
        rows, _ = await queries.donations(
            conn, from_date=None, to_date=None, first=1, after=None, donation_id=donation_id
        )
        return rows[0] if rows else None

    return Donation.from_row(await _read(info, fetch, "donation"))


async def _non_cash(info: Info, outcome: Outcome[Any]) -> NonCashContribution:
    async def fetch(conn: Any) -> queries.NonCashRow | None:
        rows, _ = await queries.non_cash(
            conn,
            from_date=None,
            to_date=None,
            first=1,
            after=None,
            contribution_id=outcome.result.id,
        )
        return rows[0] if rows else None

    return NonCashContribution.from_row(await _read(info, fetch, "contribution"))

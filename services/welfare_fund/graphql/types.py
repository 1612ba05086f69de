"""GraphQL types of the welfare fund."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import strawberry

from gateway.context import Info
from services.common.auth import Role
from services.common.errors import ValidationError
from services.common.graphql import Money, PageInfo, money
from services.welfare_fund.domain import (
    DisbursementKind,
    DisbursementStatus,
    PaymentReversalReason,
    PolicyVersion,
    Program,
    StipendRules,
    Stream,
    format_percent,
)
from services.welfare_fund.domain.policy import PPM_PER_UNIT
from services.welfare_fund.projections.queries import (
    AttendanceRow,
    BalanceView,
    DisbursementRow,
    ProgramTotals,
    SourceRow,
    StreamTotals,
)

strawberry.enum(Stream, name="IncomeStream")


def _parse_program(value: object) -> Program:
    if not isinstance(value, str):
        raise ValueError("a program code is a string such as INTERNSHIP")
    try:
        return Program(value)
    except ValidationError as exc:
        raise ValueError(exc.message) from None


# A scalar, not an enum: programs beyond INTERNSHIP and HOUSING come from configuration
# (COOP_WELFARE_PROGRAMS). Both `program: INTERNSHIP` and `program: "INTERNSHIP"` are
# accepted in a query; registered through the schema's scalar_map (gateway/schema.py).
PROGRAM_SCALAR = strawberry.scalar(
    name="Program",
    description="A welfare program's code as configured (COOP_WELFARE_PROGRAMS): "
    "INTERNSHIP and HOUSING by default. Unknown codes are refused with a ValidationError.",
    serialize=str,
    parse_value=_parse_program,
)
strawberry.enum(DisbursementKind, name="DisbursementKind")
strawberry.enum(DisbursementStatus, name="DisbursementStatus")
strawberry.enum(
    PaymentReversalReason,
    name="PaymentReversalReason",
    description="Why a payment is reversed: a code, never free text (it would name the "
    "beneficiary in records kept for good).",
)


def is_fund_officer(info: Info) -> bool:
    principal = info.context.principal
    return principal is not None and Role.FUND_OFFICER in principal.roles


@strawberry.type
class StreamBalance:
    stream: Stream
    base: Money = strawberry.field(description="Net revenue of the stream's income postings.")
    accrued: Money

    @classmethod
    def from_totals(cls, totals: StreamTotals) -> StreamBalance:
        return cls(
            stream=totals.stream, base=money(totals.base_cents), accrued=money(totals.accrued_cents)
        )


@strawberry.type
class ProgramBalance:
    program: Program
    accrued: Money
    committed: Money = strawberry.field(description="Committed and not yet paid.")
    disbursed: Money
    available: Money

    @classmethod
    def from_totals(cls, totals: ProgramTotals) -> ProgramBalance:
        return cls(
            program=totals.program,
            accrued=money(totals.accrued_cents),
            committed=money(totals.committed_cents),
            disbursed=money(totals.disbursed_cents),
            available=money(totals.available_cents),
        )


@strawberry.type
class FundBalance:
    as_of: date
    accrued: Money
    committed: Money
    disbursed: Money
    available: Money
    by_program: list[ProgramBalance]
    by_stream: list[StreamBalance]

    @classmethod
    def from_view(cls, view: BalanceView) -> FundBalance:
        return cls(
            as_of=view.as_of,
            accrued=money(view.accrued_cents),
            committed=money(view.committed_cents),
            disbursed=money(view.disbursed_cents),
            available=money(view.available_cents),
            by_program=[ProgramBalance.from_totals(p) for p in view.programs],
            by_stream=[StreamBalance.from_totals(s) for s in view.streams],
        )


@strawberry.type
class FundStatement:
    from_: date = strawberry.field(name="from")
    to: date
    opening: FundBalance = strawberry.field(description="As of the day before `from`.")
    closing: FundBalance = strawberry.field(description="As of `to`.")
    accrued: Money = strawberry.field(description="Accrued in the period.")
    committed: Money = strawberry.field(description="Change in outstanding commitments.")
    disbursed: Money = strawberry.field(description="Paid in the period.")
    by_program: list[ProgramBalance] = strawberry.field(description="Movements in the period.")
    by_stream: list[StreamBalance] = strawberry.field(description="Movements in the period.")

    @classmethod
    def from_views(
        cls, start: date, end: date, opening: BalanceView, closing: BalanceView
    ) -> FundStatement:
        programs = [
            ProgramTotals(
                c.program,
                c.accrued_cents - o.accrued_cents,
                c.committed_cents - o.committed_cents,
                c.disbursed_cents - o.disbursed_cents,
            )
            for o, c in zip(opening.programs, closing.programs, strict=True)
        ]
        streams = [
            StreamTotals(c.stream, c.base_cents - o.base_cents, c.accrued_cents - o.accrued_cents)
            for o, c in zip(opening.streams, closing.streams, strict=True)
        ]
        return cls(
            from_=start,
            to=end,
            opening=FundBalance.from_view(opening),
            closing=FundBalance.from_view(closing),
            accrued=money(closing.accrued_cents - opening.accrued_cents),
            committed=money(closing.committed_cents - opening.committed_cents),
            disbursed=money(closing.disbursed_cents - opening.disbursed_cents),
            by_program=[ProgramBalance.from_totals(p) for p in programs],
            by_stream=[StreamBalance.from_totals(s) for s in streams],
        )


@strawberry.type
class StreamShare:
    stream: Stream
    percent: str


@strawberry.type
class ProgramShare:
    program: Program
    percent: str


@strawberry.type
class AccountStream:
    account_prefix: str
    stream: Stream


@strawberry.type
class RedistributionPolicy:
    effective_from: date
    shares: list[StreamShare] = strawberry.field(description="Streams not listed share 0%.")
    program_shares: list[ProgramShare]
    account_streams: list[AccountStream]
    withdrawn: bool = strawberry.field(
        default=False,
        description="Withdrawn (withdrawRedistributionPolicy) before any income from its "
        "day was accrued: it governs nothing, and is listed so that it is seen to have "
        "been set.",
    )
    withdrawn_on: date | None = strawberry.field(
        default=None, description="The day it was withdrawn; null when it was not."
    )

    @classmethod
    def from_version(
        cls, version: PolicyVersion, withdrawn_on: date | None = None
    ) -> RedistributionPolicy:
        return cls(
            effective_from=version.effective_from,
            withdrawn=withdrawn_on is not None,
            withdrawn_on=withdrawn_on,
            shares=[
                StreamShare(stream=s, percent=format_percent(version.rate_ppm(s))) for s in Stream
            ],
            program_shares=[
                ProgramShare(program=p, percent=format_percent(ppm))
                for p, ppm in version.program_shares_ppm
            ],
            account_streams=[
                AccountStream(account_prefix=prefix, stream=s)
                for prefix, s in version.account_streams
            ],
        )


@strawberry.type
class StipendRuleSet:
    effective_from: date
    full_amount: Money
    with_meals_amount: Money
    part_time_amount: Money
    floor_amount: Money
    full_attendance_percent: str
    max_months: int = strawberry.field(
        description="Months an internship lasts at most, from the enrolment day (12 from "
        "20 January end on 19 January)."
    )
    withdrawn: bool = strawberry.field(
        default=False,
        description="Withdrawn (withdrawStipendRules) before its first month began: it "
        "governs no month, and is listed so that it is seen to have been set.",
    )
    withdrawn_on: date | None = strawberry.field(
        default=None, description="The day it was withdrawn; null when it was not."
    )

    @classmethod
    def from_rules(cls, rules: StipendRules, withdrawn_on: date | None = None) -> StipendRuleSet:
        return cls(
            effective_from=rules.effective_from,
            withdrawn=withdrawn_on is not None,
            withdrawn_on=withdrawn_on,
            full_amount=money(rules.full_cents),
            with_meals_amount=money(rules.with_meals_cents),
            part_time_amount=money(rules.part_time_cents),
            floor_amount=money(rules.floor_cents),
            full_attendance_percent=format_percent(rules.full_attendance_ppm),
            max_months=rules.max_months,
        )


@strawberry.type
class Attendance:
    month: str
    scheduled_days: int
    attended_days: int
    attendance_percent: str = strawberry.field(
        description="attendedDays / scheduledDays in percent, cut (not rounded) to two "
        "decimals: 89.996 shows 89.99, so it never shows the full-attendance threshold "
        "reached when it was not (the stipend compares the exact ratio)."
    )
    meals_provided: bool
    part_time: bool
    stipend: Money

    @classmethod
    def from_row(cls, row: AttendanceRow) -> Attendance:
        ppm = row.attended_days * PPM_PER_UNIT // row.scheduled_days
        return cls(
            month=row.month,
            scheduled_days=row.scheduled_days,
            attended_days=row.attended_days,
            attendance_percent=format_percent(ppm // 100 * 100),
            meals_provided=row.meals_provided,
            part_time=row.part_time,
            stipend=money(row.stipend_cents),
        )


@strawberry.type(description="Pseudonymous: nothing here names a person.")
class Beneficiary:
    beneficiary_ref: str
    program: Program
    enrolled_on: date
    forgotten: bool
    case_note: str | None = strawberry.field(
        description="Decrypted for the fund officer; null once the beneficiary is forgotten."
    )
    attendance: list[Attendance]


@strawberry.type
class Disbursement:
    id: strawberry.ID
    program: Program
    kind: DisbursementKind
    month: str
    amount: Money
    paid: Money
    released: Money
    status: DisbursementStatus
    committed_on: date
    approved_on: date | None
    last_paid_on: date | None
    cancelled_on: date | None
    beneficiary_id: strawberry.Private[UUID]

    @strawberry.field(description="Fund officers only; null for every other role.")
    def beneficiary_ref(self, info: Info) -> str | None:
        return str(self.beneficiary_id) if is_fund_officer(info) else None

    @classmethod
    def from_row(cls, row: DisbursementRow) -> Disbursement:
        return cls(
            id=strawberry.ID(str(row.disbursement_id)),
            program=Program(row.program),
            kind=DisbursementKind(row.kind),
            month=row.month,
            amount=money(row.amount_cents),
            paid=money(row.paid_cents),
            released=money(row.released_cents),
            status=DisbursementStatus(row.status),
            committed_on=row.committed_on,
            approved_on=row.approved_on,
            last_paid_on=row.latest_standing_payment_on,
            cancelled_on=row.cancelled_on,
            beneficiary_id=row.beneficiary_id,
        )


# These two connections first carried hasNextPage and endCursor on the connection
# itself; every other list has them under pageInfo, so a client's one paginator failed
# here. Both shapes are served; the old fields are deprecated, not removed, because a
# client may already read them.
_PAGE_FIELDS_MOVED = "Read pageInfo { hasNextPage endCursor }, as on every other list."


@strawberry.type
class _PagedWithMovedFields:
    """A connection that also serves the page fields it first carried (not in the
    schema on its own: its subclasses are)."""

    page_info: PageInfo

    @strawberry.field(deprecation_reason=_PAGE_FIELDS_MOVED)
    def has_next_page(self) -> bool:
        return self.page_info.has_next_page

    @strawberry.field(deprecation_reason=_PAGE_FIELDS_MOVED)
    def end_cursor(self) -> str | None:
        return self.page_info.end_cursor


@strawberry.type
class DisbursementConnection(_PagedWithMovedFields):
    nodes: list[Disbursement]


@strawberry.type
class BeneficiaryConnection(_PagedWithMovedFields):
    nodes: list[Beneficiary]


@strawberry.type
class ProvenanceSource:
    journal_entry_id: strawberry.ID
    effective_date: date
    stream: Stream
    base: Money = strawberry.field(description="The posting's net base in this stream.")
    accrued: Money = strawberry.field(description="What the posting accrued in this stream.")
    share: Money = strawberry.field(description="The program's part of that accrual.")
    amount: Money = strawberry.field(description="The part of the share funding this.")

    @classmethod
    def from_row(cls, row: SourceRow) -> ProvenanceSource:
        return cls(
            journal_entry_id=strawberry.ID(str(row.entry_id)),
            effective_date=row.effective_date,
            stream=Stream(row.stream),
            base=money(row.base_cents),
            accrued=money(row.accrued_cents),
            share=money(row.share_cents),
            amount=money(row.used_cents),
        )


@strawberry.type
class Provenance:
    disbursement_id: strawberry.ID
    program: Program
    amount: Money = strawberry.field(description="Committed amount still live (paid or not).")
    rule: str
    sources: list[ProvenanceSource] = strawberry.field(
        description="A page of the income postings funding it, in queue order "
        "(provenance's first and after; pageInfo says whether more follow)."
    )
    page_info: PageInfo


@strawberry.type(description="The commitment exceeds what the program has available.")
class InsufficientFunds:
    message: str
    program: Program
    requested: Money
    available: Money


@strawberry.type(description="The payment exceeds what is approved and not yet paid.")
class PaymentExceedsApproval:
    message: str
    approved: Money
    paid: Money


@strawberry.type(description="Only a fund officer of the territorial enterprise approves.")
class ApprovalNotAllowed:
    message: str


@strawberry.type(
    description="The payment is by the person who approved the disbursement: someone "
    "else pays it (four eyes)."
)
class PaymentByApprover:
    message: str


@strawberry.type(
    description="The approval is by the person who committed the disbursement: another "
    "fund officer approves it (maker and checker)."
)
class ApprovalByCommitter:
    message: str


@strawberry.type(
    description="Committing, approving and paying a disbursement take a person signed "
    "in (a bearer token), not a device's API key."
)
class PersonRequired:
    message: str

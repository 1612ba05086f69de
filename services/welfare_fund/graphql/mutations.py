"""Welfare fund mutations. Inputs are converted inside the command function, so bad
input comes back as a ValidationError member and nothing is stored.

Dates a client may leave out (effectiveDate, paidOn, enrolledOn) go to the application
as sent: it fills in today after hashing the request, so a retry after midnight is the
same request and gets the stored answer (see WelfareFundApplication._dated)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import strawberry

from gateway.context import Info, run_mutation
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import CoopError, NotFound
from services.common.graphql import (
    ConflictResult,
    IdempotencyKeyReusedResult,
    Money,
    NotFoundResult,
    ValidationErrorResult,
    money,
)
from services.common.idempotency import Outcome
from services.common.money import decimal_to_cents
from services.welfare_fund import domain
from services.welfare_fund.domain import (
    DEFAULT_INTERNSHIP_MONTHS,
    DisbursementKind,
    PaymentReversalReason,
    Program,
    StipendRules,
    Stream,
)
from services.welfare_fund.graphql.queries import load_beneficiary, parse_id
from services.welfare_fund.graphql.types import (
    ApprovalByCommitter,
    ApprovalNotAllowed,
    Beneficiary,
    Disbursement,
    InsufficientFunds,
    PaymentByApprover,
    PaymentExceedsApproval,
    PersonRequired,
    RedistributionPolicy,
    StipendRuleSet,
    is_fund_officer,
)
from services.welfare_fund.projections import queries

FundErrorResult = (
    InsufficientFunds
    | PaymentExceedsApproval
    | ApprovalNotAllowed
    | ApprovalByCommitter
    | PaymentByApprover
    | PersonRequired
)

PolicyResult = Annotated[
    RedistributionPolicy
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("SetRedistributionPolicyResult"),
]
WithdrawPolicyResult = Annotated[
    RedistributionPolicy
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("WithdrawRedistributionPolicyResult"),
]
StipendRulesResult = Annotated[
    StipendRuleSet
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("SetStipendRulesResult"),
]
WithdrawStipendRulesResult = Annotated[
    StipendRuleSet
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("WithdrawStipendRulesResult"),
]
BeneficiaryResult = Annotated[
    Beneficiary
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("BeneficiaryResult"),
]
DisbursementResult = Annotated[
    Disbursement
    | InsufficientFunds
    | PaymentExceedsApproval
    | ApprovalNotAllowed
    | ApprovalByCommitter
    | PaymentByApprover
    | PersonRequired
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("DisbursementResult"),
]


@strawberry.input
class StreamShareInput:
    stream: Stream
    percent: str


@strawberry.input
class ProgramShareInput:
    program: Program
    percent: str


@strawberry.input
class AccountStreamInput:
    account_prefix: str
    stream: Stream


@strawberry.input
class SetRedistributionPolicyInput:
    idempotency_key: str
    effective_from: date
    shares: list[StreamShareInput]
    program_shares: list[ProgramShareInput] | None = strawberry.field(
        default=None,
        description="Default: the version's in force on effectiveFrom (before the first "
        "version, the configured default split).",
    )
    account_streams: list[AccountStreamInput] | None = strawberry.field(
        default=None,
        description="Revenue account prefix -> stream. Default: the version's in force on "
        "effectiveFrom (before the first version, the chart's).",
    )


@strawberry.input
class WithdrawRedistributionPolicyInput:
    idempotency_key: str
    effective_from: date = strawberry.field(description="The day of the version to withdraw.")


@strawberry.input
class SetStipendRulesInput:
    idempotency_key: str
    effective_from: date
    full_amount: Money
    with_meals_amount: Money
    part_time_amount: Money
    floor_amount: Money
    full_attendance_percent: str
    max_months: int | None = strawberry.field(
        default=None,
        description="Months an internship lasts at most, from the enrolment day: "
        "attendance of a month that begins after its last day is refused. Default: as in "
        "the version in force on effectiveFrom (12 in the fund's starting version).",
    )


@strawberry.input
class WithdrawStipendRulesInput:
    idempotency_key: str
    effective_from: date = strawberry.field(description="The day of the version to withdraw.")


@strawberry.input
class EnrollBeneficiaryInput:
    idempotency_key: str
    program: Program
    enrolled_on: date | None = None
    case_note: str | None = strawberry.field(
        default=None, description="Encrypted with the beneficiary's own key; never logged."
    )


@strawberry.input
class RecordAttendanceInput:
    idempotency_key: str
    beneficiary_ref: str
    month: str = strawberry.field(description='"YYYY-MM"')
    scheduled_days: int
    attended_days: int
    meals_provided: bool = False
    part_time: bool = False


@strawberry.input
class CommitDisbursementInput:
    idempotency_key: str
    beneficiary_ref: str
    kind: DisbursementKind
    month: str = strawberry.field(description='"YYYY-MM"')
    amount: Money | None = strawberry.field(
        default=None, description="Housing only; a stipend follows from the attendance."
    )
    effective_date: date | None = None


@strawberry.input
class ApproveDisbursementInput:
    idempotency_key: str
    disbursement_id: strawberry.ID
    effective_date: date | None = None


@strawberry.input
class PayDisbursementInput:
    idempotency_key: str
    disbursement_id: strawberry.ID
    amount: Money
    paid_on: date | None = None


@strawberry.input
class CancelDisbursementInput:
    idempotency_key: str
    disbursement_id: strawberry.ID
    effective_date: date | None = None


@strawberry.input
class ReverseDisbursementPaymentInput:
    idempotency_key: str
    disbursement_id: strawberry.ID
    payment: int = strawberry.field(
        description="The payment's number: 1 for the disbursement's first payment (its "
        "journal entry's cause is welfare:payment:<disbursement id>:<number>)."
    )
    reason: PaymentReversalReason
    effective_date: date | None = None


@strawberry.input
class ForgetBeneficiaryInput:
    idempotency_key: str
    beneficiary_ref: str


def _fund_error(exc: CoopError) -> FundErrorResult | None:
    """The fund's own union members; None: the shared mapping applies."""
    if isinstance(exc, domain.InsufficientFunds):
        return InsufficientFunds(
            message=exc.message,
            program=Program(exc.program),
            requested=money(exc.requested_cents),
            available=money(exc.available_cents),
        )
    if isinstance(exc, domain.PaymentExceedsApproval):
        return PaymentExceedsApproval(
            message=exc.message, approved=money(exc.approved_cents), paid=money(exc.paid_cents)
        )
    if isinstance(exc, domain.ApprovalNotAllowed):
        return ApprovalNotAllowed(message=exc.message)
    if isinstance(exc, domain.ApprovalByCommitter):
        return ApprovalByCommitter(message=exc.message)
    if isinstance(exc, domain.PaymentByApprover):
        return PaymentByApprover(message=exc.message)
    if isinstance(exc, domain.PersonRequired):
        return PersonRequired(message=exc.message)
    return None


async def _disbursement(info: Info, disbursement_id: UUID) -> Disbursement:
    async with info.context.runtime.read_engine.connect() as conn:
        try:
            row = await queries.disbursement(conn, disbursement_id)
        except NotFound:  # the command just wrote it: read models emptied by a rebuild
            raise NotFound(f"disbursement {disbursement_id} is not projected yet") from None
    return Disbursement.from_row(row)


async def _beneficiary(info: Info, beneficiary_id: UUID) -> Beneficiary:
    try:
        return await load_beneficiary(info, beneficiary_id)
    except NotFound:  # as for a disbursement above
        raise NotFound(f"beneficiary {beneficiary_id} is not projected yet") from None


@strawberry.type
class WelfareFundMutation:
    # The fund's rules (this policy and the stipend rules) are the territorial
    # enterprise's to set and to withdraw: the cooperative (admin) pays into the fund,
    # so it must not be able to lower its own contribution (withdrawing a version that
    # raises the rate lowers it as surely as setting a lower one).
    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Add a version of the redistribution policy (shares per income stream); "
        "fund officers only. Refused if income on or after effectiveFrom was already accrued.",
    )
    async def set_redistribution_policy(
        self, info: Info, input: SetRedistributionPolicyInput
    ) -> PolicyResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.PolicyVersion]:
            shares = [
                (s.stream, domain.parse_percent(s.percent, field=f"shares[{i}].percent"))
                for i, s in enumerate(input.shares)
            ]
            programs = None
            if input.program_shares is not None:
                programs = [
                    (
                        p.program,
                        domain.parse_percent(p.percent, field=f"programShares[{i}].percent"),
                    )
                    for i, p in enumerate(input.program_shares)
                ]
            accounts = None
            if input.account_streams is not None:
                accounts = [(a.account_prefix, a.stream) for a in input.account_streams]
            return app.set_policy(
                key=input.idempotency_key,
                actor=actor,
                effective_from=input.effective_from,
                shares=shares,
                program_shares=programs,
                account_streams=accounts,
            )

        async def present(o: Outcome[domain.PolicyVersion]) -> RedistributionPolicy:
            return RedistributionPolicy.from_version(o.result)

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Withdraw the policy version from effectiveFrom (one set by mistake); "
        "fund officers only. Refused (ValidationError) once income on or after "
        "effectiveFrom is accrued. Its days fall to the version before it; it stays "
        "listed, withdrawn, and its day may take a new version.",
    )
    async def withdraw_redistribution_policy(
        self, info: Info, input: WithdrawRedistributionPolicyInput
    ) -> WithdrawPolicyResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.PolicyWithdrawal]:
            return app.withdraw_policy(
                key=input.idempotency_key, actor=actor, effective_from=input.effective_from
            )

        async def present(o: Outcome[domain.PolicyWithdrawal]) -> RedistributionPolicy:
            return RedistributionPolicy.from_version(o.result.version, o.result.withdrawn_on)

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Add a version of the internship stipend rules; fund officers only. A "
        "month is paid by the version in force on its 1st. Refused (ValidationError) when "
        "it would govern a month whose attendance is already recorded: a month's rules are "
        "fixed by its first recorded attendance.",
    )
    async def set_stipend_rules(
        self, info: Info, input: SetStipendRulesInput
    ) -> StipendRulesResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[StipendRules]:
            rules = StipendRules(
                effective_from=input.effective_from,
                full_cents=decimal_to_cents(input.full_amount, field="fullAmount"),
                with_meals_cents=decimal_to_cents(input.with_meals_amount, field="withMealsAmount"),
                part_time_cents=decimal_to_cents(input.part_time_amount, field="partTimeAmount"),
                floor_cents=decimal_to_cents(input.floor_amount, field="floorAmount"),
                full_attendance_ppm=domain.parse_percent(
                    input.full_attendance_percent, field="fullAttendancePercent"
                ),
                max_months=DEFAULT_INTERNSHIP_MONTHS
                if input.max_months is None
                else input.max_months,
            )
            return app.set_stipend_rules(
                key=input.idempotency_key,
                actor=actor,
                rules=rules,
                max_months_left_out=input.max_months is None,
            )

        async def present(o: Outcome[StipendRules]) -> StipendRuleSet:
            return StipendRuleSet.from_rules(o.result)

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Withdraw the stipend rules version from effectiveFrom (one set by "
        "mistake); fund officers only. Refused (ValidationError) once its first month "
        "(effectiveFrom's, if a 1st, else the next) has begun: that month's attendance may "
        "already be recorded with it. The fund's starting version is never withdrawn. Its "
        "months fall to the version before it; it stays listed, withdrawn, and its day may "
        "take a new version.",
    )
    async def withdraw_stipend_rules(
        self, info: Info, input: WithdrawStipendRulesInput
    ) -> WithdrawStipendRulesResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.StipendRulesWithdrawal]:
            return app.withdraw_stipend_rules(
                key=input.idempotency_key, actor=actor, effective_from=input.effective_from
            )

        async def present(o: Outcome[domain.StipendRulesWithdrawal]) -> StipendRuleSet:
            return StipendRuleSet.from_rules(o.result.rules, o.result.withdrawn_on)

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Enrol a beneficiary; returns a pseudonymous reference.",
    )
    async def enroll_beneficiary(
        self, info: Info, input: EnrollBeneficiaryInput
    ) -> BeneficiaryResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Beneficiary]:
            return app.enroll(
                key=input.idempotency_key,
                actor=actor,
                program=input.program,
                enrolled_on=input.enrolled_on,
                case_note=input.case_note,
            )

        return await run_mutation(info, command, lambda o: _beneficiary(info, o.result.id))

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Record an intern's attendance for a month; computes the stipend.",
    )
    async def record_attendance(
        self, info: Info, input: RecordAttendanceInput
    ) -> BeneficiaryResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Beneficiary]:
            return app.record_attendance(
                key=input.idempotency_key,
                actor=actor,
                beneficiary_id=parse_id(input.beneficiary_ref, "beneficiaryRef"),
                month=input.month,
                scheduled_days=input.scheduled_days,
                attended_days=input.attended_days,
                meals_provided=input.meals_provided,
                part_time=input.part_time,
            )

        return await run_mutation(info, command, lambda o: _beneficiary(info, o.result.id))

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Commit a disbursement, reserving the program's available funds. "
        "By a person signed in (PersonRequired).",
    )
    async def commit_disbursement(
        self, info: Info, input: CommitDisbursementInput
    ) -> DisbursementResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Disbursement]:
            amount = None
            if input.amount is not None:
                amount = decimal_to_cents(input.amount, field="amount")
            return app.commit(
                key=input.idempotency_key,
                actor=actor,
                beneficiary_id=parse_id(input.beneficiary_ref, "beneficiaryRef"),
                kind=input.kind,
                month=input.month,
                amount_cents=amount,
                committed_on=input.effective_date,
            )

        return await run_mutation(
            info, command, lambda o: _disbursement(info, o.result.id), _fund_error
        )

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER, Role.ADMIN),
        description="Approve a committed disbursement: fund officers only "
        "(other roles get ApprovalNotAllowed), signed in as a person (PersonRequired), "
        "not whoever committed it (ApprovalByCommitter).",
    )
    async def approve_disbursement(
        self, info: Info, input: ApproveDisbursementInput
    ) -> DisbursementResult:
        app = info.context.runtime.welfare
        actor = info.context.actor
        officer = is_fund_officer(info)

        def command() -> Outcome[domain.Disbursement]:
            return app.approve(
                key=input.idempotency_key,
                actor=actor,
                approver_is_fund_officer=officer,
                disbursement_id=parse_id(input.disbursement_id, "disbursementId"),
                approved_on=input.effective_date,
            )

        return await run_mutation(
            info, command, lambda o: _disbursement(info, o.result.id), _fund_error
        )

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER, Role.ADMIN),
        description="Pay (part of) an approved disbursement: Dr 2400 / Cr 1010. By a "
        "person signed in (PersonRequired), not whoever approved it (PaymentByApprover).",
    )
    async def pay_disbursement(self, info: Info, input: PayDisbursementInput) -> DisbursementResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Disbursement]:
            return app.pay(
                key=input.idempotency_key,
                actor=actor,
                disbursement_id=parse_id(input.disbursement_id, "disbursementId"),
                amount_cents=decimal_to_cents(input.amount, field="amount"),
                paid_on=input.paid_on,
            )

        return await run_mutation(
            info, command, lambda o: _disbursement(info, o.result.id), _fund_error
        )

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER, Role.ADMIN),
        description="Cancel a disbursement; the unpaid amount returns to the fund.",
    )
    async def cancel_disbursement(
        self, info: Info, input: CancelDisbursementInput
    ) -> DisbursementResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Disbursement]:
            return app.cancel(
                key=input.idempotency_key,
                actor=actor,
                disbursement_id=parse_id(input.disbursement_id, "disbursementId"),
                cancelled_on=input.effective_date,
            )

        return await run_mutation(
            info, command, lambda o: _disbursement(info, o.result.id), _fund_error
        )

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER, Role.ADMIN),
        description="Reverse a payment recorded in error (Dr 1010 / Cr 2400): its amount "
        "is unpaid again and stays reserved for the disbursement (pay it right, or cancel "
        "to release it). Before a cancellation only.",
    )
    async def reverse_disbursement_payment(
        self, info: Info, input: ReverseDisbursementPaymentInput
    ) -> DisbursementResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Disbursement]:
            return app.reverse_payment(
                key=input.idempotency_key,
                actor=actor,
                disbursement_id=parse_id(input.disbursement_id, "disbursementId"),
                payment=input.payment,
                reversed_on=input.effective_date,
                reason=input.reason,
            )

        return await run_mutation(
            info, command, lambda o: _disbursement(info, o.result.id), _fund_error
        )

    @strawberry.mutation(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Erase a beneficiary's personal details (their key is destroyed); "
        "the accounting facts and every fund total stay.",
    )
    async def forget_beneficiary(
        self, info: Info, input: ForgetBeneficiaryInput
    ) -> BeneficiaryResult:
        app = info.context.runtime.welfare
        actor = info.context.actor

        def command() -> Outcome[domain.Beneficiary]:
            return app.forget(
                key=input.idempotency_key,
                actor=actor,
                beneficiary_id=parse_id(input.beneficiary_ref, "beneficiaryRef"),
            )

        return await run_mutation(info, command, lambda o: _beneficiary(info, o.result.id))

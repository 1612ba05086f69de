"""Shop mutations: the till's day (open, ring, refund, cash in/out, close), donated
goods intake, and the admin's configuration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import strawberry

from gateway.context import Info, run_command
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import CoopError, NotFound, ValidationError
from services.common.graphql import (
    ERROR_TYPES,
    ConflictResult,
    ErrorResult,
    IdempotencyKeyReusedResult,
    Money,
    NotFoundResult,
    ValidationErrorResult,
)
from services.common.idempotency import Outcome
from services.common.money import decimal_to_cents, parse_percent_bp
from services.shop.domain import (
    CashDirection,
    CashReason,
    Category,
    LineInput,
    PaymentInput,
    PaymentMethod,
    ShopPolicy,
    ShopPolicyWithdrawal,
    WrongTill,
)
from services.shop.domain import (
    CashSession as CashSessionModel,
)
from services.shop.domain import (
    GoodsIntake as GoodsIntakeModel,
)
from services.shop.domain import RefundLineInput as RefundLine
from services.shop.domain import Sale as SaleModel
from services.shop.graphql.types import (
    CashSession,
    GoodsIntake,
    Sale,
    SaleRefund,
    ShopPolicyVersion,
    ShopPolicyWithdrawn,
    WrongTillResult,
    ZReport,
)
from services.shop.projections import queries

T = TypeVar("T")
ERRORS = (*ERROR_TYPES, WrongTillResult)
SHOP_ROLES = allow(Role.VOLUNTEER, Role.ADMIN)

CashSessionResult = Annotated[
    CashSession
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult
    | WrongTillResult,
    strawberry.union("CashSessionResult"),
]
SaleResult = Annotated[
    Sale
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult
    | WrongTillResult,
    strawberry.union("SaleResult"),
]
RefundResult = Annotated[
    SaleRefund
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult
    | WrongTillResult,
    strawberry.union("RefundResult"),
]
ZReportResult = Annotated[
    ZReport
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult
    | WrongTillResult,
    strawberry.union("ZReportResult"),
]
# Every mutation's union carries the four shared members (API.md), NotFound included
# where nothing is looked up: a client spreads the same error fragments on all of them.
GoodsIntakeResult = Annotated[
    GoodsIntake
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("GoodsIntakeResult"),
]
ShopPolicyResult = Annotated[
    ShopPolicyVersion
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("ShopPolicyResult"),
]
WithdrawShopPolicyResult = Annotated[
    ShopPolicyWithdrawn
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("WithdrawShopPolicyResult"),
]

MAX_DENOMINATIONS = 30
MAX_DENOMINATION_COUNT = 100_000


@strawberry.input
class OpenCashSessionInput:
    idempotency_key: str
    till_id: str
    opening_float: Money


@strawberry.input
class SaleLineInput:
    category: str
    description: str
    quantity: int
    unit_price: Money = strawberry.field(description="VAT included.")


@strawberry.input(name="ShopPaymentInput")
class ShopPaymentInput:
    method: PaymentMethod
    amount: Money = strawberry.field(description="As tendered; cash over the total is change.")


@strawberry.input
class RingSaleInput:
    idempotency_key: str
    session_id: strawberry.ID
    lines: list[SaleLineInput]
    payments: list[ShopPaymentInput]


@strawberry.input
class RefundLineInput:
    line_no: int = strawberry.field(description="As printed on the receipt, from 1.")
    quantity: int


@strawberry.input
class RefundSaleInput:
    idempotency_key: str
    sale_id: strawberry.ID
    lines: list[RefundLineInput] | None = strawberry.field(
        default=None, description="Leave out to refund everything not yet refunded (a void)."
    )
    session_id: strawberry.ID | None = strawberry.field(
        default=None, description="The session paying it out; default: your till's open one."
    )
    refund_method: PaymentMethod | None = strawberry.field(
        default=None, description="Default: the original method (card first, as far as it paid)."
    )


@strawberry.input
class RecordCashMovementInput:
    idempotency_key: str
    session_id: strawberry.ID
    amount: Money
    direction: CashDirection
    reason: str = strawberry.field(description="A configured reason code, e.g. SUPPLIES.")
    note: str = ""


@strawberry.input
class DenominationInput:
    value: Money
    count: int


@strawberry.input
class CloseCashSessionInput:
    idempotency_key: str
    session_id: strawberry.ID
    counted_cash: Money
    denominations: list[DenominationInput] | None = strawberry.field(
        default=None,
        description="The count by coin and note, if given: must add up to countedCash. "
        "Kept on the Z report.",
    )
    card_terminal_total: Money | None = strawberry.field(
        default=None, description="The card terminal's total, to check against the till's."
    )


@strawberry.input
class RecordGoodsIntakeInput:
    idempotency_key: str
    received_on: date
    category: str
    bags: int
    items: int


@strawberry.input
class ShopCategoryInput:
    code: str
    name: str
    vat_rate: str = strawberry.field(description='Percent, e.g. "22" or "5.5".')
    revenue_account: str
    vat_account: str


@strawberry.input
class CashReasonInput:
    code: str
    name: str
    account: str
    directions: list[CashDirection]


@strawberry.input
class WithdrawShopPolicyInput:
    idempotency_key: str
    effective_from: date


@strawberry.input
class SetShopPolicyInput:
    idempotency_key: str
    effective_from: date
    categories: list[ShopCategoryInput]
    cash_reasons: list[CashReasonInput]
    z_tolerance: Money
    cash_account: str = "1000"
    card_account: str = "1020"
    over_short_account: str = "5100"


def parse_id(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(field, "not an id returned by this API") from None


def till_scope(info: Info) -> str | None:
    """The till a caller may act on: a volunteer's credential names one; admins may omit it."""
    principal = info.context.principal
    assert principal is not None  # the permission check ran first
    if principal.till_id is not None:
        return principal.till_id
    if Role.ADMIN in principal.roles:
        return None
    raise WrongTill("your credentials are not scoped to a till; ask an admin for a till key")


def now() -> datetime:
    return datetime.now(UTC)


async def shop_command(
    info: Info, command: Callable[[], Outcome[T]]
) -> Outcome[T] | ErrorResult | WrongTillResult:
    """`run_command`, plus the shop's own union member for a session of another till."""
    try:
        scope_error: WrongTill | None = None
        till_scope(info)
    except WrongTill as exc:
        scope_error = exc
    if scope_error is not None:
        return WrongTillResult(message=scope_error.message)
    return await run_command(info, command, _wrong_till)


def _wrong_till(exc: CoopError) -> WrongTillResult | None:
    return WrongTillResult(message=exc.message) if isinstance(exc, WrongTill) else None


async def session_report(
    info: Info, session_id: UUID, *, written: bool = True
) -> queries.SessionReport:
    """The session's report from the read model. `written`: the caller's command has
    just written it and run_command waited for the projections to reach it, so a
    missing row is a lag; otherwise (a query for an id) it does not exist."""
    async with info.context.runtime.read_engine.connect() as conn:
        row = await queries.session_by_id(conn, session_id)
        if row is None:
            if written:
                raise NotFound(f"cash session {session_id} is not projected yet")
            raise NotFound(f"cash session {session_id} does not exist")
        return await queries.session_report(conn, row)


async def sale_payload(info: Info, sale_id: UUID) -> Sale:
    async with info.context.runtime.read_engine.connect() as conn:
        document = await queries.document_by_id(conn, sale_id)
        if document is None:
            raise NotFound(f"sale {sale_id} is not projected yet")
        refunds = await queries.refunds_of(conn, [sale_id])
    return Sale.of(document, refunds.get(sale_id, []))


def _policy(input: SetShopPolicyInput) -> ShopPolicy:
    return ShopPolicy(
        effective_from=input.effective_from,
        categories=tuple(
            Category(
                code=c.code,
                name=c.name.strip(),
                vat_rate_bp=parse_percent_bp(c.vat_rate, field=f"categories[{i}].vatRate"),
                revenue_account=c.revenue_account,
                vat_account=c.vat_account,
            )
            for i, c in enumerate(input.categories)
        ),
        cash_reasons=tuple(
            CashReason(
                code=r.code,
                name=r.name.strip(),
                account=r.account,
                directions=tuple(dict.fromkeys(r.directions)),
            )
            for r in input.cash_reasons
        ),
        z_tolerance_cents=decimal_to_cents(input.z_tolerance, field="zTolerance"),
        cash_account=input.cash_account,
        card_account=input.card_account,
        over_short_account=input.over_short_account,
    )


def _denominations(input: CloseCashSessionInput) -> list[tuple[int, int]] | None:
    """The count by denomination as (value in cents, how many) lines; the close checks
    them against the counted cash (`count_sheet`)."""
    if input.denominations is None:
        return None
    if len(input.denominations) > MAX_DENOMINATIONS:
        raise ValidationError("denominations", f"at most {MAX_DENOMINATIONS} denominations")
    lines = []
    for index, denomination in enumerate(input.denominations):
        value = decimal_to_cents(denomination.value, field=f"denominations[{index}].value")
        if not 0 <= denomination.count <= MAX_DENOMINATION_COUNT:
            raise ValidationError(
                f"denominations[{index}].count", f"must be 0 to {MAX_DENOMINATION_COUNT}"
            )
        lines.append((value, denomination.count))
    return lines


@strawberry.type
class ShopMutation:
    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Open a cash session on a till with its opening float (one open per till).",
    )
    async def open_cash_session(self, info: Info, input: OpenCashSessionInput) -> CashSessionResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[CashSessionModel]:
            return shop.open_session(
                key=input.idempotency_key,
                actor=actor,
                till_scope=till_scope(info),
                till_id=input.till_id,
                opening_float_cents=decimal_to_cents(input.opening_float, field="openingFloat"),
                at=now(),
            )

        outcome = await shop_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        return CashSession.of(await session_report(info, outcome.result.id))

    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Ring a sale on an open session: lines by category, cash and/or card.",
    )
    async def ring_sale(self, info: Info, input: RingSaleInput) -> SaleResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[SaleModel]:
            return shop.ring_sale(
                key=input.idempotency_key,
                actor=actor,
                till_scope=till_scope(info),
                session_id=parse_id(input.session_id, "sessionId"),
                lines=[
                    LineInput(
                        category=line.category,
                        description=line.description,
                        quantity=line.quantity,
                        unit_price_cents=decimal_to_cents(
                            line.unit_price, field=f"lines[{index}].unitPrice"
                        ),
                    )
                    for index, line in enumerate(input.lines)
                ],
                payments=[
                    PaymentInput(
                        method=payment.method,
                        amount_cents=decimal_to_cents(
                            payment.amount, field=f"payments[{index}].amount"
                        ),
                    )
                    for index, payment in enumerate(input.payments)
                ],
                at=now(),
            )

        outcome = await shop_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        if outcome.replayed:
            # A retried key: the sale may have been refunded since; read what is now.
            return await sale_payload(info, outcome.result.id)
        # A new sale has no refunds, and the aggregate holds exactly what the read
        # model was given: answer from it instead of reading it back (measured: a
        # seventh of a worker's time under sales load). The wait for the read models
        # (read-your-writes) happened all the same.
        return Sale.of(queries.rung_sale_document(outcome.result, outcome.position), [])

    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Refund a sale, fully (a void) or some lines, as a new document.",
    )
    async def refund_sale(self, info: Info, input: RefundSaleInput) -> RefundResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[dict[str, Any]]:
            return shop.refund_sale(
                key=input.idempotency_key,
                actor=actor,
                till_scope=till_scope(info),
                sale_id=parse_id(input.sale_id, "saleId"),
                session_id=None
                if input.session_id is None
                else parse_id(input.session_id, "sessionId"),
                lines=None
                if input.lines is None
                else [RefundLine(line.line_no, line.quantity) for line in input.lines],
                method=input.refund_method,
                at=now(),
            )

        outcome = await shop_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        refund_id = UUID(outcome.result["refund_id"])
        sale_id = UUID(outcome.result["sale_id"])
        async with info.context.runtime.read_engine.connect() as conn:
            refund = await queries.document_by_id(conn, refund_id)
            sale = await queries.document_by_id(conn, sale_id)
        if refund is None or sale is None:
            raise NotFound(f"refund {refund_id} is not projected yet")
        return SaleRefund.of(refund, sale)

    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Cash into or out of the drawer, with a configured reason.",
    )
    async def record_cash_movement(
        self, info: Info, input: RecordCashMovementInput
    ) -> CashSessionResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[CashSessionModel]:
            return shop.move_cash(
                key=input.idempotency_key,
                actor=actor,
                till_scope=till_scope(info),
                session_id=parse_id(input.session_id, "sessionId"),
                direction=input.direction,
                amount_cents=decimal_to_cents(input.amount, field="amount"),
                reason=input.reason,
                note=input.note,
                at=now(),
            )

        outcome = await shop_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        return CashSession.of(await session_report(info, outcome.result.id))

    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Z close: counted cash against expected; the difference goes to the ledger.",
    )
    async def close_cash_session(self, info: Info, input: CloseCashSessionInput) -> ZReportResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[CashSessionModel]:
            terminal = input.card_terminal_total
            return shop.close_session(
                key=input.idempotency_key,
                actor=actor,
                till_scope=till_scope(info),
                session_id=parse_id(input.session_id, "sessionId"),
                counted_cash_cents=decimal_to_cents(input.counted_cash, field="countedCash"),
                terminal_card_cents=None
                if terminal is None
                else decimal_to_cents(terminal, field="cardTerminalTotal"),
                at=now(),
                denominations=_denominations(input),
            )

        outcome = await shop_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        return ZReport.of(await session_report(info, outcome.result.id))

    @strawberry.mutation(
        permission_classes=SHOP_ROLES,
        description="Record donated goods received (bags and items by category). No money.",
    )
    async def record_goods_intake(
        self, info: Info, input: RecordGoodsIntakeInput
    ) -> GoodsIntakeResult:
        shop = info.context.runtime.shop
        actor = info.context.actor

        def command() -> Outcome[GoodsIntakeModel]:
            return shop.record_intake(
                key=input.idempotency_key,
                actor=actor,
                received_on=input.received_on,
                category=input.category,
                bags=input.bags,
                items=input.items,
                at=now(),
            )

        outcome = await run_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        intake = outcome.result
        return GoodsIntake(
            id=strawberry.ID(str(intake.id)),
            received_on=intake.received_on,
            category=intake.category,
            bags=intake.bags,
            items=intake.items,
        )

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN),
        description="Set the shop's configuration from a date (today or later).",
    )
    async def set_shop_policy(self, info: Info, input: SetShopPolicyInput) -> ShopPolicyResult:
        shop = info.context.runtime.shop
        actor = info.context.actor
        zone = info.context.runtime.settings.zone

        def command() -> Outcome[ShopPolicy]:
            return shop.set_policy(
                key=input.idempotency_key,
                actor=actor,
                policy=_policy(input),
                today=now().astimezone(zone).date(),
            )

        outcome = await run_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        return ShopPolicyVersion.of(outcome.result)

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN),
        description="Withdraw a configuration version that is not yet in force (set by "
        "mistake: versions may not be set before the latest one).",
    )
    async def withdraw_shop_policy(
        self, info: Info, input: WithdrawShopPolicyInput
    ) -> WithdrawShopPolicyResult:
        shop = info.context.runtime.shop
        actor = info.context.actor
        zone = info.context.runtime.settings.zone

        def command() -> Outcome[ShopPolicyWithdrawal]:
            return shop.withdraw_policy(
                key=input.idempotency_key,
                actor=actor,
                effective_from=input.effective_from,
                today=now().astimezone(zone).date(),
            )

        outcome = await run_command(info, command)
        if not isinstance(outcome, Outcome):
            return outcome
        withdrawal = outcome.result
        return ShopPolicyWithdrawn(
            effective_from=withdrawal.effective_from, withdrawn_on=withdrawal.withdrawn_on
        )

"""GraphQL types of the charity shop.

Names carry "Shop" where another context could want the same one (payments, totals),
so the composed schema never has two types of one name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum

import strawberry

from services.common.graphql import Money, PageInfo, money
from services.common.money import share_percent
from services.shop.domain import CashDirection, PaymentMethod, ShopPolicy
from services.shop.projections.queries import (
    Breakdown,
    CategoryTotal,
    DayReceipts,
    DocumentRow,
    MethodTotal,
    SellThroughRow,
    SessionReport,
    TillDay,
    VatRateTotal,
    VolunteerTotal,
)

strawberry.enum(PaymentMethod, name="ShopPaymentMethod")
strawberry.enum(CashDirection, name="CashDirection")


@strawberry.enum(name="CashSessionStatus")
class CashSessionStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


def percent(rate_bp: int) -> str:
    """2200 basis points -> "22.00" (a string: rates are exact, never floats)."""
    return f"{rate_bp // 100}.{rate_bp % 100:02d}"


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite: UTC


@strawberry.type(
    name="WrongTill", description="The session belongs to another till; nothing changed."
)
class WrongTillResult:
    message: str


@strawberry.type(name="ShopMethodTotal")
class ShopMethodTotal:
    method: PaymentMethod
    sales: Money
    refunds: Money
    net: Money

    @classmethod
    def of(cls, row: MethodTotal) -> ShopMethodTotal:
        return cls(
            method=PaymentMethod(row.method),
            sales=money(row.sales_cents),
            refunds=money(row.refunds_cents),
            net=money(row.net_cents),
        )


@strawberry.type(name="ShopCategoryTotal")
class ShopCategoryTotal:
    category: str
    quantity_sold: int
    quantity_refunded: int
    sales: Money = strawberry.field(description="VAT included.")
    refunds: Money = strawberry.field(description="VAT included.")
    total: Money = strawberry.field(description="Sales minus refunds, VAT included.")
    net: Money = strawberry.field(description="Sales minus refunds, VAT excluded.")
    vat: Money

    @classmethod
    def of(cls, row: CategoryTotal) -> ShopCategoryTotal:
        return cls(
            category=row.category,
            quantity_sold=row.quantity_sold,
            quantity_refunded=row.quantity_refunded,
            sales=money(row.sales_cents),
            refunds=money(row.refunds_cents),
            total=money(row.total_cents),
            net=money(row.net_cents),
            vat=money(row.vat_cents),
        )


@strawberry.type(name="ShopVatRateTotal")
class ShopVatRateTotal:
    rate: str = strawberry.field(description='Percent, e.g. "22.00".')
    total: Money
    net: Money
    vat: Money

    @classmethod
    def of(cls, row: VatRateTotal) -> ShopVatRateTotal:
        return cls(
            rate=percent(row.rate_bp),
            total=money(row.total_cents),
            net=money(row.net_cents),
            vat=money(row.vat_cents),
        )


@strawberry.type(
    name="ShopReceiptRange",
    description="A session's documents of one business day. Receipt numbers restart "
    "every day, so a session left open past midnight has one range per day.",
)
class ShopReceiptRange:
    date: date
    sales_count: int
    refunds_count: int
    first_receipt: int
    last_receipt: int

    @classmethod
    def of(cls, row: DayReceipts) -> ShopReceiptRange:
        return cls(
            date=row.business_date,
            sales_count=row.sales_count,
            refunds_count=row.refunds_count,
            first_receipt=row.first_receipt,
            last_receipt=row.last_receipt,
        )


RECEIPT_RANGE = (
    "The session's first (last) receipt number, when all its documents are of one "
    "business day; null when they span several days (see receiptsByDay) or there are none."
)


def _methods(b: Breakdown) -> list[ShopMethodTotal]:
    return [ShopMethodTotal.of(m) for m in b.by_method]


def _categories(b: Breakdown) -> list[ShopCategoryTotal]:
    return [ShopCategoryTotal.of(c) for c in b.by_category]


def _rates(b: Breakdown) -> list[ShopVatRateTotal]:
    return [ShopVatRateTotal.of(r) for r in b.by_vat_rate]


@strawberry.type
class CashSession:
    id: strawberry.ID
    till_id: str
    z_number: int = strawberry.field(description="The session's daily close number on its till.")
    status: CashSessionStatus
    business_date: date
    opened_at: datetime
    opened_by: str
    opening_float: Money
    closed_at: datetime | None
    closed_by: str | None
    expected_cash: Money = strawberry.field(description="What the drawer should hold now.")
    counted_cash: Money | None
    difference: Money | None

    @classmethod
    def of(cls, report: SessionReport) -> CashSession:
        s = report.session
        return cls(
            id=strawberry.ID(str(s.session_id)),
            till_id=s.till_id,
            z_number=s.z_number,
            status=CashSessionStatus.OPEN if s.is_open else CashSessionStatus.CLOSED,
            business_date=s.business_date,
            opened_at=aware(s.opened_at),
            opened_by=s.opened_by,
            opening_float=money(s.opening_float_cents),
            closed_at=aware(s.closed_at) if s.closed_at else None,
            closed_by=s.closed_by,
            expected_cash=money(report.expected_cash_cents),
            counted_cash=None if s.counted_cash_cents is None else money(s.counted_cash_cents),
            difference=None if s.difference_cents is None else money(s.difference_cents),
        )


def _report_fields(report: SessionReport) -> dict[str, object]:
    s, b = report.session, report.breakdown
    return {
        "session_id": strawberry.ID(str(s.session_id)),
        "till_id": s.till_id,
        "z_number": s.z_number,
        "business_date": s.business_date,
        "opening_float": money(s.opening_float_cents),
        "expected_cash": money(report.expected_cash_cents),
        "cash_in": money(report.cash_in_cents),
        "cash_out": money(report.cash_out_cents),
        "card_total": money(report.card_cents),
        "sales_total": money(b.sales_cents),
        "refunds_total": money(b.refunds_cents),
        "net_total": money(b.net_cents),
        "sales_count": b.sales_count,
        "refunds_count": b.refunds_count,
        "first_receipt": b.first_receipt,
        "last_receipt": b.last_receipt,
        "receipts_by_day": [ShopReceiptRange.of(day) for day in b.by_day],
        "by_method": _methods(b),
        "by_category": _categories(b),
        "by_vat_rate": _rates(b),
    }


@strawberry.type(description="Mid-day totals of a session; changes nothing.")
class XReport:
    session_id: strawberry.ID
    till_id: str
    z_number: int
    business_date: date
    status: CashSessionStatus
    opening_float: Money
    expected_cash: Money
    cash_in: Money
    cash_out: Money
    card_total: Money = strawberry.field(description="Card sales minus card refunds.")
    sales_total: Money
    refunds_total: Money
    net_total: Money
    sales_count: int
    refunds_count: int
    first_receipt: int | None = strawberry.field(description=RECEIPT_RANGE)
    last_receipt: int | None = strawberry.field(description=RECEIPT_RANGE)
    receipts_by_day: list[ShopReceiptRange] = strawberry.field(
        description="Counts and receipt range per business day, in date order."
    )
    by_method: list[ShopMethodTotal]
    by_category: list[ShopCategoryTotal]
    by_vat_rate: list[ShopVatRateTotal]

    @classmethod
    def of(cls, report: SessionReport) -> XReport:
        status = CashSessionStatus.OPEN if report.session.is_open else CashSessionStatus.CLOSED
        return cls(status=status, **_report_fields(report))  # type: ignore[arg-type]


@strawberry.type(description="One line of a Z close's count: a coin or note and how many.")
class CountedDenomination:
    value: Money
    count: int
    amount: Money


@strawberry.type(description="A session's close: counted against expected cash, and its totals.")
class ZReport:
    session_id: strawberry.ID
    till_id: str
    z_number: int
    business_date: date
    closed_at: datetime
    closed_by: str
    opening_float: Money
    expected_cash: Money
    counted_cash: Money
    counted_denominations: list[CountedDenomination] | None = strawberry.field(
        description="The count by coin and note, largest first; null if counted by total."
    )
    difference: Money = strawberry.field(description="Counted minus expected; negative is short.")
    tolerance: Money
    within_tolerance: bool = strawberry.field(description="False flags the close for review.")
    needs_review: bool = strawberry.field(
        description="Cash beyond the tolerance, or a card terminal total that differs from "
        "the till's."
    )
    cash_in: Money
    cash_out: Money
    card_total: Money
    card_terminal_total: Money | None
    card_difference: Money | None = strawberry.field(
        description="Terminal total minus the till's card total, when the terminal's was given."
    )
    sales_total: Money
    refunds_total: Money
    net_total: Money
    sales_count: int
    refunds_count: int
    first_receipt: int | None = strawberry.field(description=RECEIPT_RANGE)
    last_receipt: int | None = strawberry.field(description=RECEIPT_RANGE)
    receipts_by_day: list[ShopReceiptRange] = strawberry.field(
        description="Counts and receipt range per business day, in date order."
    )
    by_method: list[ShopMethodTotal]
    by_category: list[ShopCategoryTotal]
    by_vat_rate: list[ShopVatRateTotal]

    @classmethod
    def of(cls, report: SessionReport) -> ZReport:
        s = report.session
        assert s.closed_at is not None
        assert s.counted_cash_cents is not None
        terminal = s.terminal_card_cents
        card_difference = None if terminal is None else terminal - report.card_cents
        return cls(
            closed_at=aware(s.closed_at),
            closed_by=s.closed_by or "",
            counted_cash=money(s.counted_cash_cents),
            counted_denominations=None
            if s.denominations is None
            else [
                CountedDenomination(value=money(value), count=count, amount=money(value * count))
                for value, count in s.denominations.items()
            ],
            difference=money(s.difference_cents or 0),
            tolerance=money(s.tolerance_cents or 0),
            within_tolerance=bool(s.within_tolerance),
            # A card terminal agrees with the till to the cent, or something was rung
            # on the wrong method (or not rung at all): no tolerance for cards.
            needs_review=not s.within_tolerance or bool(card_difference),
            card_terminal_total=None if terminal is None else money(terminal),
            card_difference=None if card_difference is None else money(card_difference),
            **_report_fields(report),  # type: ignore[arg-type]
        )


@strawberry.type
class SaleLine:
    line_no: int
    category: str
    description: str
    quantity: int
    unit_price: Money
    total: Money = strawberry.field(description="VAT included.")
    net: Money
    vat: Money
    vat_rate: str = strawberry.field(description='Percent, e.g. "22.00".')
    refunded_quantity: int


@strawberry.type(name="ShopPayment")
class ShopPayment:
    method: PaymentMethod
    tendered: Money
    amount: Money = strawberry.field(description="Kept (a sale, after change) or paid back.")


@strawberry.type
class ReceiptReference:
    sale_id: strawberry.ID
    till_id: str
    business_date: date
    receipt_number: int
    z_number: int


def _lines(document: DocumentRow, refunded: dict[int, int]) -> list[SaleLine]:
    return [
        SaleLine(
            line_no=line.line_no,
            category=line.category,
            description=line.description,
            quantity=line.quantity,
            unit_price=money(line.unit_price_cents),
            total=money(line.gross_cents),
            net=money(line.net_cents),
            vat=money(line.vat_cents),
            vat_rate=percent(line.vat_rate_bp),
            refunded_quantity=refunded.get(line.line_no, 0),
        )
        for line in document.lines
    ]


def _payments(document: DocumentRow) -> list[ShopPayment]:
    return [
        ShopPayment(
            method=PaymentMethod(p.method),
            tendered=money(p.tendered_cents),
            amount=money(p.amount_cents),
        )
        for p in document.payments
    ]


def _vat_by_rate(document: DocumentRow) -> list[ShopVatRateTotal]:
    rates: dict[int, list[int]] = {}
    for line in document.lines:
        totals = rates.setdefault(line.vat_rate_bp, [0, 0, 0])
        totals[0] += line.gross_cents
        totals[1] += line.net_cents
        totals[2] += line.vat_cents
    return [ShopVatRateTotal.of(VatRateTotal(r, *t)) for r, t in sorted(rates.items())]


@strawberry.type(description="A refund: a new document referencing the sale it returns.")
class SaleRefund:
    id: strawberry.ID
    receipt_number: int
    till_id: str
    session_id: strawberry.ID
    z_number: int
    business_date: date
    recorded_at: datetime
    volunteer: str
    total: Money
    vat: Money
    lines: list[SaleLine]
    payments: list[ShopPayment]
    vat_by_rate: list[ShopVatRateTotal]
    original: ReceiptReference

    @classmethod
    def of(cls, document: DocumentRow, sale: DocumentRow) -> SaleRefund:
        return cls(
            id=strawberry.ID(str(document.document_id)),
            receipt_number=document.receipt_number,
            till_id=document.till_id,
            session_id=strawberry.ID(str(document.session_id)),
            z_number=document.z_number,
            business_date=document.business_date,
            recorded_at=aware(document.recorded_at),
            volunteer=document.actor,
            total=money(document.total_cents),
            vat=money(document.vat_cents),
            lines=_lines(document, {}),
            payments=_payments(document),
            vat_by_rate=_vat_by_rate(document),
            original=ReceiptReference(
                sale_id=strawberry.ID(str(sale.document_id)),
                till_id=sale.till_id,
                business_date=sale.business_date,
                receipt_number=sale.receipt_number,
                z_number=sale.z_number,
            ),
        )


@strawberry.type
class Sale:
    id: strawberry.ID
    receipt_number: int
    till_id: str
    session_id: strawberry.ID
    z_number: int
    business_date: date
    recorded_at: datetime
    volunteer: str = strawberry.field(description="Who rang it (their credential's name).")
    total: Money = strawberry.field(description="VAT included.")
    vat: Money
    net: Money
    change: Money
    lines: list[SaleLine]
    payments: list[ShopPayment]
    vat_by_rate: list[ShopVatRateTotal]
    refunds: list[SaleRefund]

    @classmethod
    def of(cls, document: DocumentRow, refunds: list[DocumentRow]) -> Sale:
        refunded: dict[int, int] = {}
        for refund in refunds:
            for line in refund.lines:
                refunded[line.line_no] = refunded.get(line.line_no, 0) + line.quantity
        return cls(
            id=strawberry.ID(str(document.document_id)),
            receipt_number=document.receipt_number,
            till_id=document.till_id,
            session_id=strawberry.ID(str(document.session_id)),
            z_number=document.z_number,
            business_date=document.business_date,
            recorded_at=aware(document.recorded_at),
            volunteer=document.actor,
            total=money(document.total_cents),
            vat=money(document.vat_cents),
            net=money(document.total_cents - document.vat_cents),
            change=money(document.change_cents),
            lines=_lines(document, refunded),
            payments=_payments(document),
            vat_by_rate=_vat_by_rate(document),
            refunds=[SaleRefund.of(r, document) for r in refunds],
        )


@strawberry.type
class SaleConnection:
    nodes: list[Sale]
    page_info: PageInfo


@strawberry.type
class ZReportConnection:
    nodes: list[ZReport]
    page_info: PageInfo


@strawberry.type(name="ShopVolunteerTotal")
class ShopVolunteerTotal:
    volunteer: str = strawberry.field(
        description="A person, or a device by its key's name (whichever of its keys rang)."
    )
    sales_count: int
    refunds_count: int
    sales: Money
    refunds: Money
    net: Money

    @classmethod
    def of(cls, row: VolunteerTotal) -> ShopVolunteerTotal:
        return cls(
            volunteer=row.volunteer,
            sales_count=row.sales_count,
            refunds_count=row.refunds_count,
            sales=money(row.sales_cents),
            refunds=money(row.refunds_cents),
            net=money(row.sales_cents - row.refunds_cents),
        )


@strawberry.type
class ShopTotals:
    from_date: date | None = strawberry.field(name="from")
    to_date: date | None = strawberry.field(name="to")
    till_id: str | None
    sales_total: Money
    refunds_total: Money
    net_total: Money
    sales_count: int
    refunds_count: int
    by_category: list[ShopCategoryTotal]
    by_volunteer: list[ShopVolunteerTotal]
    by_method: list[ShopMethodTotal]
    by_vat_rate: list[ShopVatRateTotal]

    @classmethod
    def of(
        cls,
        from_date: date | None,
        to_date: date | None,
        till_id: str | None,
        b: Breakdown,
        volunteers: list[VolunteerTotal],
    ) -> ShopTotals:
        return cls(
            from_date=from_date,
            to_date=to_date,
            till_id=till_id,
            sales_total=money(b.sales_cents),
            refunds_total=money(b.refunds_cents),
            net_total=money(b.net_cents),
            sales_count=b.sales_count,
            refunds_count=b.refunds_count,
            by_category=_categories(b),
            by_volunteer=[ShopVolunteerTotal.of(v) for v in volunteers],
            by_method=_methods(b),
            by_vat_rate=_rates(b),
        )


@strawberry.type(description="One till's day as the electronic-receipt daily close reports it.")
class TillDailyClose:
    till_id: str
    date: date
    z_numbers: list[int] = strawberry.field(
        description="Every session holding documents of the day (a session left open past "
        "midnight holds several days'), and every session opened that day."
    )
    closed: bool = strawberry.field(
        description="All those sessions are closed: the day's totals are final. False while "
        "any session holding the day's receipts is open."
    )
    receipts_count: int
    refunds_count: int
    first_receipt: int | None
    last_receipt: int | None
    sales_total: Money
    refunds_total: Money
    net_total: Money
    by_vat_rate: list[ShopVatRateTotal]
    by_method: list[ShopMethodTotal]

    @classmethod
    def of(cls, row: TillDay) -> TillDailyClose:
        b = row.breakdown
        return cls(
            till_id=row.till_id,
            date=row.business_date,
            z_numbers=row.z_numbers,
            closed=row.all_closed,
            receipts_count=b.sales_count,
            refunds_count=b.refunds_count,
            first_receipt=b.first_receipt,
            last_receipt=b.last_receipt,
            sales_total=money(b.sales_cents),
            refunds_total=money(b.refunds_cents),
            net_total=money(b.net_cents),
            by_vat_rate=_rates(b),
            by_method=_methods(b),
        )


@strawberry.type
class SellThrough:
    category: str
    bags_received: int
    items_received: int
    items_sold: int
    items_refunded: int
    sell_through_percent: str | None = strawberry.field(
        description="Items sold (net of returns) per 100 received, 1 decimal; null without intake."
    )

    @classmethod
    def of(cls, row: SellThroughRow) -> SellThrough:
        sold = row.items_sold - row.items_refunded
        # Negative when more came back than was sold in the period (returns of
        # items sold before it).
        ratio = share_percent(sold, row.items_received) if row.items_received else None
        return cls(
            category=row.category,
            bags_received=row.bags_received,
            items_received=row.items_received,
            items_sold=row.items_sold,
            items_refunded=row.items_refunded,
            sell_through_percent=ratio,
        )


@strawberry.type
class GoodsIntake:
    id: strawberry.ID
    received_on: date
    category: str
    bags: int
    items: int


@strawberry.type
class ShopCategory:
    code: str
    name: str
    vat_rate: str = strawberry.field(description='Percent, e.g. "22.00".')
    revenue_account: str
    vat_account: str


@strawberry.type
class CashReason:
    code: str
    name: str
    account: str
    directions: list[CashDirection]


@strawberry.type(
    description="A configuration version withdrawn before it came into force: its days "
    "fall to the version before it."
)
class ShopPolicyWithdrawn:
    effective_from: date
    withdrawn_on: date = strawberry.field(description="The shop's day it was withdrawn.")


@strawberry.type(description="The shop's configuration in force from a date.")
class ShopPolicyVersion:
    effective_from: date
    categories: list[ShopCategory]
    cash_reasons: list[CashReason]
    z_tolerance: Money
    cash_account: str
    card_account: str
    over_short_account: str

    @classmethod
    def of(cls, policy: ShopPolicy) -> ShopPolicyVersion:
        return cls(
            effective_from=policy.effective_from,
            categories=[
                ShopCategory(
                    code=c.code,
                    name=c.name,
                    vat_rate=percent(c.vat_rate_bp),
                    revenue_account=c.revenue_account,
                    vat_account=c.vat_account,
                )
                for c in policy.categories
            ],
            cash_reasons=[
                CashReason(
                    code=r.code, name=r.name, account=r.account, directions=list(r.directions)
                )
                for r in policy.cash_reasons
            ],
            z_tolerance=money(policy.z_tolerance_cents),
            cash_account=policy.cash_account,
            card_account=policy.card_account,
            over_short_account=policy.over_short_account,
        )

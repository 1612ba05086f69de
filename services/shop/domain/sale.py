"""Sales and their refunds.

A sale is one document: VAT-inclusive lines by category, payments by cash and/or
card, change for cash. A refund is a new document (its own receipt number) that
references the sale; the sale records what was refunded so that, even under
concurrency, no line is ever refunded beyond what was sold.

VAT rule: each line's gross is split with `split_vat_included` (net rounded half up).
A partial refund splits cumulatively (net refunded so far = split of the gross
refunded so far), so refunding a line in several parts returns exactly its net and
VAT, never a cent more or less.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, ValidationError
from services.common.money import check_positive_amount, format_cents, split_vat_included
from services.ledger.domain import Posting, Side
from services.shop.domain.config import ShopPolicy

MAX_LINES = 100
MAX_PAYMENTS = 10
MAX_QUANTITY = 1_000
MAX_LINE_DESCRIPTION_LENGTH = 200


class PaymentMethod(StrEnum):
    CASH = "CASH"
    CARD = "CARD"


@dataclass(frozen=True)
class LineInput:
    category: str
    description: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class PaymentInput:
    method: PaymentMethod
    amount_cents: int


@dataclass(frozen=True)
class RefundLineInput:
    line_no: int  # 1-based, as printed on the receipt
    quantity: int


@dataclass(frozen=True)
class Document:
    """What a sale or refund contributes to its session: numbers and drawer effect."""

    receipt_number: int
    cash_cents: int
    card_cents: int


def _lines(
    inputs: Sequence[LineInput], policy: ShopPolicy, ceiling_cents: int
) -> list[dict[str, Any]]:
    if not inputs:
        raise ValidationError("lines", "a sale needs at least one line")
    if len(inputs) > MAX_LINES:
        raise ValidationError("lines", f"a sale has at most {MAX_LINES} lines")
    lines: list[dict[str, Any]] = []
    for index, line in enumerate(inputs):
        field = f"lines[{index}]"
        category = policy.category(line.category, field=f"{field}.category")
        description = line.description.strip()
        if not description:
            raise ValidationError(f"{field}.description", "must not be empty")
        if len(description) > MAX_LINE_DESCRIPTION_LENGTH:
            raise ValidationError(
                f"{field}.description", f"must be at most {MAX_LINE_DESCRIPTION_LENGTH} characters"
            )
        if line.quantity < 1:
            raise ValidationError(f"{field}.quantity", "must be at least 1")
        if line.quantity > MAX_QUANTITY:
            raise ValidationError(f"{field}.quantity", f"must be at most {MAX_QUANTITY}")
        check_positive_amount(
            line.unit_price_cents, field=f"{field}.unitPrice", ceiling_cents=ceiling_cents
        )
        gross = line.quantity * line.unit_price_cents
        if gross > ceiling_cents:
            raise ValidationError(f"{field}.quantity", "the line total exceeds the amount ceiling")
        net, vat = split_vat_included(gross, category.vat_rate_bp)
        lines.append(
            {
                "line_no": index + 1,
                "category": category.code,
                "description": description,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "gross_cents": gross,
                "net_cents": net,
                "vat_cents": vat,
                "vat_rate_bp": category.vat_rate_bp,
                "revenue_account": category.revenue_account,
                "vat_account": category.vat_account,
            }
        )
    return lines


def _payments(
    inputs: Sequence[PaymentInput], total_cents: int, ceiling_cents: int
) -> tuple[list[dict[str, Any]], int]:
    """Payments as tendered and as kept; returns them and the change (cash only)."""
    if not inputs:
        raise ValidationError("payments", "a sale needs at least one payment")
    if len(inputs) > MAX_PAYMENTS:
        raise ValidationError("payments", f"at most {MAX_PAYMENTS} payments")
    tendered = 0
    card = 0
    for index, payment in enumerate(inputs):
        check_positive_amount(
            payment.amount_cents, field=f"payments[{index}].amount", ceiling_cents=ceiling_cents
        )
        tendered += payment.amount_cents
        if payment.method is PaymentMethod.CARD:
            card += payment.amount_cents
    if card > total_cents:
        raise ValidationError(
            "payments",
            f"card payments ({format_cents(card)}) exceed the total ({format_cents(total_cents)});"
            " only cash gives change",
        )
    if tendered < total_cents:
        raise ValidationError(
            "payments",
            f"payments ({format_cents(tendered)}) do not cover the total "
            f"({format_cents(total_cents)})",
        )
    if card == total_cents and tendered > card:
        # The card covers it all: a cash line too is a slip (its receipt would show
        # the whole cash amount as change).
        raise ValidationError(
            "payments", "the card payments cover the total; leave out the cash payment"
        )
    change = tendered - total_cents
    # Change comes out of the cash tendered, taken from the last cash payments first.
    remaining_change = change
    out: list[dict[str, Any]] = []
    for payment in reversed(inputs):
        kept = payment.amount_cents
        if payment.method is PaymentMethod.CASH and remaining_change:
            taken = min(kept, remaining_change)
            kept -= taken
            remaining_change -= taken
        out.append(
            {
                "method": payment.method.value,
                "tendered_cents": payment.amount_cents,
                "amount_cents": kept,
            }
        )
    out.reverse()
    return out, change


def tendered_cents(payment: Mapping[str, Any]) -> int:
    """What was handed over for a payment as its event records it: a sale's payments
    carry it (cash over the total is change), a refund's do not (tendered = amount)."""
    return int(payment.get("tendered_cents", payment["amount_cents"]))


class Sale(Aggregate):
    class Rung(Aggregate.Created):
        session_id: UUID
        till_id: str
        z_number: int
        business_date: date
        receipt_number: int
        rung_at: datetime
        actor: str
        lines: list[dict[str, Any]]
        payments: list[dict[str, Any]]
        total_cents: int
        vat_cents: int
        change_cents: int

    class Refunded(Aggregate.Event):
        refund_id: UUID
        session_id: UUID
        till_id: str
        z_number: int
        business_date: date
        receipt_number: int
        refunded_at: datetime
        actor: str
        lines: list[dict[str, Any]]
        payments: list[dict[str, Any]]
        total_cents: int
        vat_cents: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Sale)
            for line in self.lines:
                index = int(line["line_no"]) - 1
                aggregate.refunded_quantity[index] += int(line["quantity"])
                aggregate.refunded_gross[index] += int(line["gross_cents"])
            for payment in self.payments:
                aggregate.refunded_by_method[payment["method"]] += int(payment["amount_cents"])

    def __init__(
        self,
        session_id: UUID,
        till_id: str,
        z_number: int,
        business_date: date,
        receipt_number: int,
        rung_at: datetime,
        actor: str,
        lines: list[dict[str, Any]],
        payments: list[dict[str, Any]],
        total_cents: int,
        vat_cents: int,
        change_cents: int,
    ) -> None:
        self.session_id = session_id
        self.till_id = till_id
        self.z_number = z_number
        self.business_date = business_date
        self.receipt_number = receipt_number
        self.rung_at = rung_at
        self.actor = actor
        self.lines = lines
        self.payments = payments
        self.total_cents = total_cents
        self.vat_cents = vat_cents
        self.change_cents = change_cents
        self.refunded_quantity = [0] * len(lines)
        self.refunded_gross = [0] * len(lines)
        self.refunded_by_method: dict[str, int] = {m.value: 0 for m in PaymentMethod}

    @classmethod
    def ring(
        cls,
        *,
        sale_id: UUID,
        session_id: UUID,
        till_id: str,
        z_number: int,
        business_date: date,
        receipt_number: int,
        rung_at: datetime,
        actor: str,
        lines: Sequence[LineInput],
        payments: Sequence[PaymentInput],
        policy: ShopPolicy,
        ceiling_cents: int,
    ) -> Sale:
        line_states = _lines(lines, policy, ceiling_cents)
        total = sum(int(line["gross_cents"]) for line in line_states)
        if total > ceiling_cents:
            raise ValidationError("lines", "the sale total exceeds the amount ceiling")
        payment_states, change = _payments(payments, total, ceiling_cents)
        return cls._create(
            cls.Rung,
            id=sale_id,
            session_id=session_id,
            till_id=till_id,
            z_number=z_number,
            business_date=business_date,
            receipt_number=receipt_number,
            rung_at=rung_at,
            actor=actor,
            lines=line_states,
            payments=payment_states,
            total_cents=total,
            vat_cents=sum(int(line["vat_cents"]) for line in line_states),
            change_cents=change,
        )

    def kept(self, method: PaymentMethod) -> int:
        return sum(int(p["amount_cents"]) for p in self.payments if p["method"] == method.value)

    @property
    def document(self) -> Document:
        return Document(
            self.receipt_number, self.kept(PaymentMethod.CASH), self.kept(PaymentMethod.CARD)
        )

    def refund(
        self,
        *,
        refund_id: UUID,
        session_id: UUID,
        till_id: str,
        z_number: int,
        business_date: date,
        receipt_number: int,
        refunded_at: datetime,
        actor: str,
        lines: Sequence[RefundLineInput] | None,
        method: PaymentMethod | None,
    ) -> dict[str, Any]:
        """Refund some lines (all that is left when `lines` is None); returns the event state."""
        if business_date < self.business_date:
            raise ValidationError("saleId", "a refund cannot be dated before its sale")
        wanted = self._wanted(lines)
        refund_lines: list[dict[str, Any]] = []
        for index, quantity in sorted(wanted.items()):
            line = self.lines[index]
            gross_line = int(line["gross_cents"])
            rate = int(line["vat_rate_bp"])
            before = self.refunded_gross[index]
            remaining_after = self.refunded_quantity[index] + quantity
            # The last unit refunded takes what is left, so a line never over-refunds.
            after = (
                gross_line
                if remaining_after == int(line["quantity"])
                else before + quantity * int(line["unit_price_cents"])
            )
            net_before, _ = split_vat_included(before, rate)
            net_after, _ = split_vat_included(after, rate)
            gross = after - before
            net = net_after - net_before
            refund_lines.append(
                {
                    "line_no": index + 1,
                    "category": line["category"],
                    "description": line["description"],
                    "quantity": quantity,
                    "unit_price_cents": int(line["unit_price_cents"]),
                    "gross_cents": gross,
                    "net_cents": net,
                    "vat_cents": gross - net,
                    "vat_rate_bp": rate,
                    "revenue_account": line["revenue_account"],
                    "vat_account": line["vat_account"],
                }
            )
        total = sum(int(line["gross_cents"]) for line in refund_lines)
        payments = self._refund_payments(total, method)
        state: dict[str, Any] = {
            "refund_id": refund_id,
            "session_id": session_id,
            "till_id": till_id,
            "z_number": z_number,
            "business_date": business_date,
            "receipt_number": receipt_number,
            "refunded_at": refunded_at,
            "actor": actor,
            "lines": refund_lines,
            "payments": payments,
            "total_cents": total,
            "vat_cents": sum(int(line["vat_cents"]) for line in refund_lines),
        }
        self.trigger_event(self.Refunded, **state)
        return state

    def _wanted(self, lines: Sequence[RefundLineInput] | None) -> dict[int, int]:
        if lines is None:
            wanted = {
                index: int(line["quantity"]) - self.refunded_quantity[index]
                for index, line in enumerate(self.lines)
                if int(line["quantity"]) > self.refunded_quantity[index]
            }
            if not wanted:
                raise Conflict(f"sale {self.id} was already fully refunded")
            return wanted
        if not lines:
            raise ValidationError("lines", "name at least one line, or leave lines out")
        wanted = {}
        for index, line in enumerate(lines):
            field = f"lines[{index}]"
            if not 1 <= line.line_no <= len(self.lines):
                raise ValidationError(
                    f"{field}.lineNo", f"the sale has lines 1 to {len(self.lines)}"
                )
            position = line.line_no - 1
            if position in wanted:
                raise ValidationError(f"{field}.lineNo", "each line at most once per refund")
            if line.quantity < 1:
                raise ValidationError(f"{field}.quantity", "must be at least 1")
            left = int(self.lines[position]["quantity"]) - self.refunded_quantity[position]
            if line.quantity > left:
                raise ValidationError(
                    f"{field}.quantity",
                    f"only {left} of line {line.line_no} can still be refunded",
                )
            wanted[position] = line.quantity
        return wanted

    def _refund_payments(self, total: int, method: PaymentMethod | None) -> list[dict[str, Any]]:
        card_left = self.kept(PaymentMethod.CARD) - self.refunded_by_method[PaymentMethod.CARD]
        if method is PaymentMethod.CARD:
            if total > card_left:
                raise ValidationError(
                    "refundMethod",
                    f"only {format_cents(card_left)} EUR was paid by card and not yet refunded",
                )
            card = total
        elif method is PaymentMethod.CASH:
            card = 0
        else:
            # The original method: card back to the card first (as far as it paid), the
            # rest in cash.
            card = min(total, card_left)
        out = []
        if card:
            out.append({"method": PaymentMethod.CARD.value, "amount_cents": card})
        if total - card:
            out.append({"method": PaymentMethod.CASH.value, "amount_cents": total - card})
        return out


def document_postings(
    lines: Sequence[dict[str, Any]],
    payments: Sequence[dict[str, Any]],
    policy: ShopPolicy,
    *,
    refund: bool,
) -> list[Posting]:
    """A sale: debit cash/card, credit revenue per category account and VAT per rate.

    A refund mirrors it. Amounts are merged per account; zero amounts are left out.
    """
    money_in: dict[str, int] = defaultdict(int)
    for payment in payments:
        account = (
            policy.cash_account
            if payment["method"] == PaymentMethod.CASH.value
            else policy.card_account
        )
        money_in[account] += int(payment["amount_cents"])
    income: dict[str, int] = defaultdict(int)
    for line in lines:
        income[str(line["revenue_account"])] += int(line["net_cents"])
        income[str(line["vat_account"])] += int(line["vat_cents"])
    debit, credit = (Side.CREDIT, Side.DEBIT) if refund else (Side.DEBIT, Side.CREDIT)
    return [Posting(a, debit, c) for a, c in money_in.items() if c] + [
        Posting(a, credit, c) for a, c in income.items() if c
    ]

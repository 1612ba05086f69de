"""Shop domain rules, in memory: money splits, change, refunds, configuration by date."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest

from services.common.errors import Conflict, ValidationError
from services.ledger.domain import Side
from services.shop.domain import (
    CashSession,
    LineInput,
    PaymentInput,
    PaymentMethod,
    RefundLineInput,
    Sale,
    SessionAlreadyOpen,
    SessionClosed,
    ShopConfig,
    Till,
    default_policy,
    document_postings,
)
from services.shop.graphql.types import SellThrough
from services.shop.projections.queries import SellThroughRow

POLICY = default_policy()
NOW = datetime(2025, 5, 2, 10, 0, tzinfo=UTC)
CEILING = 1_000_000_000


def ring(lines: list[LineInput], payments: list[PaymentInput]) -> Sale:
    return Sale.ring(
        sale_id=uuid4(),
        session_id=uuid4(),
        till_id="till-1",
        z_number=1,
        business_date=NOW.date(),
        receipt_number=1,
        rung_at=NOW,
        actor="person:anna",
        lines=lines,
        payments=payments,
        policy=POLICY,
        ceiling_cents=CEILING,
    )


def refund(
    sale: Sale, lines: list[RefundLineInput] | None, method: PaymentMethod | None = None
) -> dict[str, Any]:
    return sale.refund(
        refund_id=uuid4(),
        session_id=sale.session_id,
        till_id="till-1",
        z_number=1,
        business_date=NOW.date(),
        receipt_number=2,
        refunded_at=NOW,
        actor="person:anna",
        lines=lines,
        method=method,
    )


def test_change_comes_from_cash_and_the_entry_balances() -> None:
    sale = ring(
        [LineInput("CLOTHES", "coat", 1, 1220), LineInput("SHOES", "boots", 2, 500)],
        [PaymentInput(PaymentMethod.CARD, 1000), PaymentInput(PaymentMethod.CASH, 2000)],
    )
    assert sale.total_cents == 2220
    assert sale.change_cents == 780
    assert sale.kept(PaymentMethod.CASH) == 1220
    postings = document_postings(sale.lines, sale.payments, POLICY, refund=False)
    debit = sum(p.amount_cents for p in postings if p.side is Side.DEBIT)
    credit = sum(p.amount_cents for p in postings if p.side is Side.CREDIT)
    assert debit == credit == 2220
    by_account = {p.account_code: p.amount_cents for p in postings}
    assert by_account == {"1020": 1000, "1000": 1220, "4110": 1000, "4120": 820, "2000": 400}


def test_a_cash_payment_that_would_all_be_change_is_refused() -> None:
    """The card already pays the 5.00: a cash line of 5.00 beside it is a slip, not
    a receipt showing 5.00 of change."""
    with pytest.raises(ValidationError, match="leave out the cash"):
        ring(
            [LineInput("CLOTHES", "scarf", 1, 500)],
            [PaymentInput(PaymentMethod.CARD, 500), PaymentInput(PaymentMethod.CASH, 500)],
        )
    # Cash with change beside a card that pays only part: still fine.
    sale = ring(
        [LineInput("CLOTHES", "scarf", 1, 500)],
        [PaymentInput(PaymentMethod.CARD, 200), PaymentInput(PaymentMethod.CASH, 500)],
    )
    assert (sale.change_cents, sale.kept(PaymentMethod.CASH)) == (200, 300)


@pytest.mark.parametrize("parts", [[1, 1, 1], [2, 1], [1, 2], [3]])
def test_a_line_refunded_in_parts_returns_exactly_its_net_and_vat(parts: list[int]) -> None:
    sale = ring([LineInput("OTHER", "mug", 3, 333)], [PaymentInput(PaymentMethod.CASH, 999)])
    refunded_net = refunded_vat = 0
    for quantity in parts:
        state = refund(sale, [RefundLineInput(1, quantity)])
        refunded_net += state["lines"][0]["net_cents"]
        refunded_vat += state["lines"][0]["vat_cents"]
    assert refunded_net == sale.lines[0]["net_cents"]
    assert refunded_vat == sale.lines[0]["vat_cents"]
    with pytest.raises(Conflict):
        refund(sale, None)


def test_card_refund_is_limited_to_what_the_card_paid() -> None:
    sale = ring(
        [LineInput("CLOTHES", "coat", 1, 3000)],
        [PaymentInput(PaymentMethod.CARD, 1000), PaymentInput(PaymentMethod.CASH, 2000)],
    )
    with pytest.raises(ValidationError) as error:
        refund(sale, None, PaymentMethod.CARD)
    assert error.value.field == "refundMethod"
    state = refund(sale, None)  # original method: card first, then cash
    assert state["payments"] == [
        {"method": "CARD", "amount_cents": 1000},
        {"method": "CASH", "amount_cents": 2000},
    ]


def test_one_open_session_per_till_and_receipts_continue_across_sessions() -> None:
    till = Till.register("till-1")
    first = till.open_session(
        session_id=uuid4(),
        opening_float_cents=0,
        opened_at=NOW,
        business_date=NOW.date(),
        opened_by="a",
    )
    with pytest.raises(SessionAlreadyOpen):
        till.open_session(
            session_id=uuid4(),
            opening_float_cents=0,
            opened_at=NOW,
            business_date=NOW.date(),
            opened_by="a",
        )
    first.record_document(
        document_id=uuid4(),
        kind="sale",
        receipt_day=NOW.date(),
        receipt_number=1,
        cash_cents=100,
        card_cents=0,
    )
    first.close(
        counted_cash_cents=100,
        tolerance_cents=0,
        closed_at=NOW,
        closed_by="a",
        terminal_card_cents=None,
        ceiling_cents=CEILING,
    )
    till.session_closed(first)
    with pytest.raises(SessionClosed):
        first.check_open()
    second = till.open_session(
        session_id=uuid4(),
        opening_float_cents=0,
        opened_at=NOW,
        business_date=NOW.date(),
        opened_by="a",
    )
    assert second.z_number == 2
    assert second.next_receipt(NOW.date()) == 2
    assert second.next_receipt(date(2025, 5, 3)) == 1  # a new day starts at 1


def open_session(opening_float_cents: int = 0) -> CashSession:
    return Till.register("till-1").open_session(
        session_id=uuid4(),
        opening_float_cents=opening_float_cents,
        opened_at=NOW,
        business_date=NOW.date(),
        opened_by="a",
    )


def record(session: CashSession, kind: str, cash_cents: int, card_cents: int = 0) -> None:
    session.record_document(
        document_id=uuid4(),
        kind=kind,
        receipt_day=NOW.date(),
        receipt_number=session.next_receipt(NOW.date()),
        cash_cents=cash_cents,
        card_cents=card_cents,
    )


def close(session: CashSession, counted_cents: int, terminal_cents: int | None = None) -> None:
    session.close(
        counted_cash_cents=counted_cents,
        tolerance_cents=100,
        closed_at=NOW,
        closed_by="a",
        terminal_card_cents=terminal_cents,
        ceiling_cents=1000,
    )


def test_a_drawer_holding_more_than_the_ceiling_closes_on_its_true_count() -> None:
    session = open_session(opening_float_cents=900)
    record(session, "sale", cash_cents=800, card_cents=700)
    record(session, "sale", cash_cents=0, card_cents=900)
    assert session.expected_cash_cents == 1700  # above the ceiling of 1000
    assert session.card_total_cents == 1600
    # A count (or a terminal total) further than the ceiling from the till's figure is
    # a typo: refused, naming the field.
    for counted, terminal, field in (
        (2701, None, "countedCash"),
        (699, None, "countedCash"),
        (1700, 2601, "cardTerminalTotal"),
        (1700, 599, "cardTerminalTotal"),
    ):
        with pytest.raises(ValidationError) as error:
            close(session, counted, terminal)
        assert error.value.field == field
    assert session.is_open
    close(session, 1700, 1600)  # the true counts close it
    assert session.difference_cents == 0


def test_a_terminal_total_is_bounded_like_any_amount() -> None:
    session = open_session()
    with pytest.raises(ValidationError) as error:
        close(session, 0, 10_000_000_000)
    assert error.value.field == "cardTerminalTotal"
    with pytest.raises(ValidationError) as error:
        close(session, 0, -1)  # the card total is 0.00: a minus sign is a typo
    assert error.value.field == "cardTerminalTotal"
    with pytest.raises(ValidationError) as error:
        close(session, -1, 0)  # counted cash is never negative
    assert error.value.field == "countedCash"
    close(session, 0, 1000)  # a difference within the ceiling is accepted (flagged)


def test_a_cash_refund_beyond_the_drawer_names_the_refund_method() -> None:
    session = open_session(opening_float_cents=500)
    with pytest.raises(ValidationError) as error:
        record(session, "refund", cash_cents=501)
    assert error.value.field == "refundMethod"
    record(session, "refund", cash_cents=500)
    assert session.expected_cash_cents == 0


def test_configuration_versions_apply_from_their_date() -> None:
    config = ShopConfig.start()
    config.set_policy(POLICY, today=POLICY.effective_from, amount_ceiling_cents=CEILING)
    lower = replace(
        POLICY,
        effective_from=date(2026, 1, 1),
        categories=tuple(replace(c, vat_rate_bp=1000) for c in POLICY.categories),
    )
    with pytest.raises(ValidationError):
        config.set_policy(
            replace(lower, effective_from=date(2024, 1, 1)),
            today=date(2025, 6, 1),
            amount_ceiling_cents=CEILING,
        )
    config.set_policy(lower, today=date(2025, 6, 1), amount_ceiling_cents=CEILING)
    assert config.policy_on(date(2025, 12, 31)).category("CLOTHES", field="c").vat_rate_bp == 2200
    assert config.policy_on(date(2026, 1, 1)).category("CLOTHES", field="c").vat_rate_bp == 1000


def test_sell_through_is_negative_when_more_came_back_than_was_sold() -> None:
    """A period with one item returned (sold before it) and none sold, of three
    received: -33.3 per 100, not the -34.7 floor division made of it."""
    row = SellThroughRow(category="CLOTHES", bags_received=1, items_received=3,
                         items_sold=0, items_refunded=1)  # fmt: skip
    assert SellThrough.of(row).sell_through_percent == "-33.3"

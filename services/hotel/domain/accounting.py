"""How the hotel's facts become balanced postings (accounts from the policy in force).

    deposit taken        Dr cash/card/bank            Cr deposits held
    charge posted        Dr guest receivable          Cr revenue (net) + VAT payable (by rate)
    payment              Dr cash/card/bank            Cr guest receivable
    refund               Dr guest receivable          Cr cash/card/bank
    check-out            Dr guest receivable + deposits held (the deposit applied)
                                                      Cr room revenue (net) + VAT by rate
                                                         + tourist tax payable
    cancellation/no-show Dr deposits held (+ receivable for a penalty above the deposit)
                                                      Cr retained deposits and penalties
                                                         + cash/card/bank (refunded part)

So over a booking's entries the receivable moves by (folio total - paid): zero once
it is settled, and the revenue, VAT and tourist tax credited equal the folio's lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from services.hotel.domain.config import CHARGE_KINDS, HotelPolicy
from services.hotel.domain.folio import (
    DEPOSIT_REFUND,
    NO_SHOW_PENALTY,
    PAYMENT,
    REFUND,
    RETAINED_DEPOSIT,
    TOURIST_TAX,
    FolioLine,
    Payment,
)
from services.ledger.domain import Posting, Side


def _line_credits(policy: HotelPolicy, lines: Iterable[FolioLine]) -> dict[str, int]:
    credits: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.kind in CHARGE_KINDS:
            credits[policy.accounts[line.kind]] += line.net_cents
            if line.vat_rate_bp is not None:
                credits[policy.vat_account(line.vat_rate_bp)] += line.vat_cents
        elif line.kind == TOURIST_TAX:
            credits[policy.accounts["TOURIST_TAX"]] += line.amount_cents
        elif line.kind in (RETAINED_DEPOSIT, NO_SHOW_PENALTY):
            credits[policy.accounts["PENALTY"]] += line.amount_cents
        else:  # pragma: no cover - a new kind must be mapped here first
            raise ValueError(f"no account for folio line kind {line.kind}")
    return credits


def _postings(debits: dict[str, int], credits: dict[str, int]) -> list[Posting]:
    # An account on both sides is netted; zero amounts are left out.
    out: list[Posting] = []
    for account in [*debits, *(a for a in credits if a not in debits)]:
        net = debits.get(account, 0) - credits.get(account, 0)
        if net > 0:
            out.append(Posting(account, Side.DEBIT, net))
    for account in [*debits, *(a for a in credits if a not in debits)]:
        net = debits.get(account, 0) - credits.get(account, 0)
        if net < 0:
            out.append(Posting(account, Side.CREDIT, -net))
    return out


def deposit_postings(policy: HotelPolicy, deposit: Payment) -> list[Posting]:
    return _postings(
        {policy.accounts[deposit.method]: deposit.amount_cents},
        {policy.accounts["DEPOSITS"]: deposit.amount_cents},
    )


def charge_postings(policy: HotelPolicy, line: FolioLine) -> list[Posting]:
    return _postings(
        {policy.accounts["RECEIVABLE"]: line.amount_cents}, _line_credits(policy, [line])
    )


def payment_postings(policy: HotelPolicy, payment: Payment) -> list[Posting]:
    money = policy.accounts[payment.method]
    receivable = policy.accounts["RECEIVABLE"]
    if payment.kind == PAYMENT:
        return _postings({money: payment.amount_cents}, {receivable: payment.amount_cents})
    assert payment.kind == REFUND
    return _postings({receivable: payment.amount_cents}, {money: payment.amount_cents})


def checkout_postings(
    policy: HotelPolicy, stay_lines: Sequence[FolioLine], deposit_cents: int
) -> list[Posting]:
    """The stay (rooms, VAT, tourist tax) charged and the deposit applied."""
    stay_total = sum(line.amount_cents for line in stay_lines)
    debits = {
        policy.accounts["RECEIVABLE"]: stay_total - deposit_cents,
        policy.accounts["DEPOSITS"]: deposit_cents,
    }
    return _postings(
        {k: v for k, v in debits.items() if v > 0},
        _merge(_line_credits(policy, stay_lines), {k: -v for k, v in debits.items() if v < 0}),
    )


def closing_postings(
    policy: HotelPolicy,
    *,
    deposit_cents: int,
    closing_lines: Sequence[FolioLine],
    refunds: Sequence[Payment],
) -> list[Posting]:
    """Cancellation or no-show: the deposit retained, refunded, or short of the penalty."""
    credits = _line_credits(policy, closing_lines)
    for refund in refunds:
        assert refund.kind == DEPOSIT_REFUND
        credits[policy.accounts[refund.method]] += refund.amount_cents
    due = sum(credits.values()) - deposit_cents  # a penalty above the deposit
    debits = {policy.accounts["DEPOSITS"]: deposit_cents}
    if due > 0:
        debits[policy.accounts["RECEIVABLE"]] = due
    return _postings(debits, credits)


def _merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out

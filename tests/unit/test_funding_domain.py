"""Funding rules in memory: rounding, pro-rata cuts, closing, what posts where."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import Conflict, ValidationError
from services.ledger.domain import Side
from services.ledger.domain.contracts import vat_cents
from services.ledger.domain.donations import NonCashContribution, non_cash_id_for
from services.ledger.domain.facts import LedgerFact, parse_percent_bp
from services.ledger.domain.funding_accounts import DEFAULT_FUNDING_ACCOUNTS as ACCOUNTS
from services.ledger.domain.grants import Grant, TrancheTerms, grant_id_for

TODAY = date(2025, 12, 31)
CEILING = 1_000_000_000


def lines(fact: LedgerFact | None) -> dict[str, int]:
    """Net debit per account (credits negative); asserts the fact balances."""
    assert fact is not None
    net: dict[str, int] = {}
    for p in fact.postings:
        signed = p.amount_cents if p.side is Side.DEBIT else -p.amount_cents
        net[p.account_code] = net.get(p.account_code, 0) + signed
    assert sum(net.values()) == 0
    return net


def grant(amounts: list[int], *, restricted: bool = True) -> Grant:
    return Grant.award(
        grant_id=grant_id_for("g"),
        funder="Fondazione",
        purpose="Internships",
        amount_cents=sum(amounts),
        restricted=restricted,
        public_funder=False,
        awarded_on=date(2025, 1, 1),
        tranches=[TrancheTerms(a, f"condition {i}", None) for i, a in enumerate(amounts)],
        today=TODAY,
        ceiling_cents=CEILING,
    )


@pytest.mark.parametrize(
    ("net", "rate_bp", "vat"),
    [(1_357_020, 500, 67_851), (10, 500, 1), (9, 500, 0), (1, 2200, 0), (3, 2200, 1)],
)
def test_vat_is_rounded_half_up_to_the_cent(net: int, rate_bp: int, vat: int) -> None:
    assert vat_cents(net, rate_bp) == vat


@pytest.mark.parametrize(
    ("text", "bp"), [("5", 500), ("5.5", 550), ("22.00", 2200), ("0", 0), ("100", 10_000)]
)
def test_percentages_are_decimal_strings(text: str, bp: int) -> None:
    assert parse_percent_bp(text, field="vatRate") == bp


@pytest.mark.parametrize("text", ["5,0", "1e1", "-5", "101", "05", "5.555", "", "NaN"])
def test_bad_percentages_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_percent_bp(text, field="vatRate")
    assert raised.value.field == "vatRate"


def test_received_before_condition_is_an_advance_then_revenue() -> None:
    g = grant([1_000_000, 500_000])
    received = g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    assert lines(received) == {"1010": 1_000_000, "2300": -1_000_000}
    met = g.meet_condition(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    assert lines(met) == {"2300": 1_000_000, "4210": -1_000_000}
    # Unrestricted grants post to unrestricted revenue, against a receivable if unpaid.
    u = grant([200_000], restricted=False)
    assert lines(u.meet_condition(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)) == {
        "1120": 200_000,
        "4200": -200_000,
    }
    assert lines(u.receive_tranche(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)) == {
        "1010": 200_000,
        "1120": -200_000,
    }


def test_pro_rata_cut_is_floored_and_taken_from_the_last_unpaid_tranche() -> None:
    g = grant([1_000_000, 1_000_000, 1_000_001])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.meet_condition(3, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)  # receivable
    # 3,000,001 x 85 / 100 = 2,550,000.85 -> 2,550,000 (the funder never pays more).
    fact = g.reduce_pro_rata(
        budget_cents=10_000_000,
        reported_cents=8_500_000,
        reduced_on=date(2025, 4, 1),
        today=TODAY,
        ceiling_cents=CEILING,
        accounts=ACCOUNTS,
    )
    assert [t.amount_cents for t in g.tranches] == [1_000_000, 1_000_000, 550_000]
    assert g.amount_cents == 2_550_000
    # Only the recognised part of the cut (tranche 3) moves revenue back.
    assert lines(fact) == {"4210": 450_001, "1120": -450_001}
    with pytest.raises(Conflict):
        g.reduce_pro_rata(
            budget_cents=2,
            reported_cents=1,
            reduced_on=date(2025, 4, 2),
            today=TODAY,
            ceiling_cents=CEILING,
            accounts=ACCOUNTS,
        )


def test_a_cut_that_would_need_a_refund_is_refused() -> None:
    g = grant([900_000, 100_000])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    with pytest.raises(Conflict):
        g.reduce_pro_rata(
            budget_cents=100,
            reported_cents=50,
            reduced_on=date(2025, 4, 1),
            today=TODAY,
            ceiling_cents=CEILING,
            accounts=ACCOUNTS,
        )
    assert g.amount_cents == 1_000_000


def test_closing_refuses_held_advances_and_writes_off_unpaid_receivables() -> None:
    g = grant([600_000, 400_000])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    with pytest.raises(Conflict):
        g.close(date(2025, 5, 1), today=TODAY, accounts=ACCOUNTS)
    g.meet_condition(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    g.meet_condition(2, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    written_off = g.close(date(2025, 12, 1), today=TODAY, accounts=ACCOUNTS)
    assert lines(written_off) == {"4210": 400_000, "1120": -400_000}
    assert g.tranches[1].cancelled_on == date(2025, 12, 1)
    with pytest.raises(Conflict):
        g.receive_tranche(2, date(2025, 12, 2), today=TODAY, accounts=ACCOUNTS)


@pytest.mark.parametrize(
    ("tranches", "field"),
    [([], "tranches"), ([0], "tranches[0].amount"), ([-5, 10], "tranches[0].amount")],
)
def test_bad_tranches_name_the_field(tranches: list[int], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Grant.award(
            grant_id=grant_id_for("g"),
            funder="F",
            purpose="P",
            amount_cents=max(sum(tranches), 1),
            restricted=False,
            public_funder=False,
            awarded_on=date(2025, 1, 1),
            tranches=[TrancheTerms(a, "c", None) for a in tranches],
            today=TODAY,
            ceiling_cents=CEILING,
        )
    assert raised.value.field == field


@pytest.mark.parametrize(("minutes", "hourly", "fair"), [(200, 1500, 5000), (7, 1000, 117)])
def test_volunteer_time_is_valued_half_up(minutes: int, hourly: int, fair: int) -> None:
    contribution = NonCashContribution.volunteer_time(
        contribution_id=non_cash_id_for(f"v{minutes}"),
        contributed_on=date(2025, 5, 1),
        activity="Shop shift",
        minutes=minutes,
        hourly_fair_value_cents=hourly,
        today=TODAY,
        ceiling_cents=CEILING,
    )
    assert contribution.fair_value_cents == fair

"""Funding rules in memory: rounding, pro-rata cuts, closing, what posts where."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import Conflict, ValidationError
from services.ledger.domain import (
    DEFAULT_ACCOUNTS,
    Cause,
    ChartOfAccounts,
    JournalEntry,
    LedgerLimits,
    Side,
)
from services.ledger.domain.contracts import vat_cents
from services.ledger.domain.donations import (
    Donation,
    DonationAlreadyReversed,
    DonationMethod,
    NonCashContribution,
    donation_id_for,
    non_cash_id_for,
)
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


# -- reversing a donation recorded wrong ---------------------------------------------

LIMITS = LedgerLimits(
    amount_ceiling_cents=CEILING,
    max_description_length=500,
    max_entry_lines=50,
    max_account_code_length=16,
)


def donation(amount_cents: int = 100_000, *, received_on: date = date(2025, 5, 10)) -> Donation:
    return Donation.record(
        donation_id=donation_id_for("d-wrong"),
        received_on=received_on,
        amount_cents=amount_cents,
        restricted=False,
        method=DonationMethod.BANK,
        donor="Maria Rossi",
        purpose=None,
        today=TODAY,
        ceiling_cents=CEILING,
    )


def chart() -> ChartOfAccounts:
    chart = ChartOfAccounts.start()
    for code, name, kind in DEFAULT_ACCOUNTS:
        chart.open_account(code, name, kind, max_code_length=16)
    return chart


def test_a_donation_is_reversed_once_and_its_entry_with_the_ledgers_own_reversal() -> None:
    d = donation()
    fact = d.ledger_fact(ACCOUNTS)
    original = JournalEntry.post(
        chart=chart(),
        effective_date=fact.effective_date,
        description=fact.description,
        postings=fact.postings,
        cause=Cause(fact.cause_id, "admin"),
        limits=LIMITS,
    )
    assert original.id == d.entry_id
    description = d.reverse(
        reversed_on=date(2025, 6, 5), reason="Typed 1000 for Maria's 100", today=TODAY
    )
    assert (d.reversed_on, d.reversal_reason) == (date(2025, 6, 5), "Typed 1000 for Maria's 100")
    reversal = original.reverse(
        chart=chart(),
        effective_date=date(2025, 6, 5),
        description=description,
        actor="admin",
        limits=LIMITS,
    )
    # The id the donation recorded is the ledger's reversal, linked to the original.
    assert reversal.id == d.reversal_entry_id
    assert reversal.reverses_entry_id == original.id
    assert original.reversed_by_entry_id == reversal.id
    assert lines(
        LedgerFact("r", reversal.effective_date, reversal.description, reversal.postings)
    ) == {"1010": -100_000, "4400": 100_000}
    # Neither the donor's name nor the reason reaches the ledger.
    assert "Maria" not in description
    assert "Typed" not in description
    assert str(d.id)[:8] in description
    with pytest.raises(DonationAlreadyReversed):
        d.reverse(reversed_on=date(2025, 6, 6), reason="again", today=TODAY)
    assert isinstance(DonationAlreadyReversed("x"), Conflict)
    assert d.reversed_on == date(2025, 6, 5)


@pytest.mark.parametrize(
    ("reversed_on", "reason", "field"),
    [
        (date(2026, 1, 1), "typo", "effectiveDate"),  # after TODAY
        (date(2025, 5, 9), "typo", "effectiveDate"),  # before the donation
        (date(2025, 5, 10), "   ", "reason"),
        (date(2025, 5, 10), "x" * 501, "reason"),
    ],
)
def test_a_bad_reversal_names_the_field_and_records_nothing(
    reversed_on: date, reason: str, field: str
) -> None:
    d = donation()
    for record in (d, in_kind()):
        version = record.version
        with pytest.raises(ValidationError) as raised:
            record.reverse(reversed_on=reversed_on, reason=reason, today=TODAY)
        assert raised.value.field == field
        assert record.version == version
        assert record.reversed_on is None
    # Dated the donation's own day and today are both allowed.
    d.reverse(reversed_on=date(2025, 5, 10), reason="typo", today=TODAY)
    other = donation(received_on=TODAY)
    other.reverse(reversed_on=TODAY, reason="typo", today=TODAY)


def in_kind() -> NonCashContribution:
    return NonCashContribution.in_kind(
        contribution_id=non_cash_id_for("k"),
        contributed_on=date(2025, 5, 10),
        description="Winter coats (40)",
        fair_value_cents=600_000,
        restricted=False,
        donor=None,
        today=TODAY,
        ceiling_cents=CEILING,
    )


def test_goods_in_kind_are_reversed_once_with_no_ledger_entry() -> None:
    k = in_kind()
    # Nothing was posted, so there is no ledger entry to reverse: the record just says so.
    k.reverse(reversed_on=date(2025, 5, 12), reason="Valued 6000, not 600", today=TODAY)
    assert k.reversed_on == date(2025, 5, 12)
    with pytest.raises(DonationAlreadyReversed):
        k.reverse(reversed_on=date(2025, 5, 13), reason="again", today=TODAY)

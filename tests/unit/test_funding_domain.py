"""Funding rules in memory: rounding, pro-rata cuts, closing, what posts where."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date

import pytest

from services.common.errors import Conflict, NotFound, ValidationError
from services.common.money import format_cents, parse_percent_bp
from services.ledger.domain import (
    DEFAULT_ACCOUNTS,
    Cause,
    ChartOfAccounts,
    JournalEntry,
    LedgerLimits,
    Side,
)
from services.ledger.domain.contracts import (
    Address,
    Contract,
    ContractInvoice,
    InvoiceSequence,
    InvoicingProfile,
    PassThroughItem,
    PaymentAlreadyReversed,
    PresenceMonth,
    StampDutyRule,
    check_tax_code,
    check_vat_number,
    payment_entry_id,
    vat_cents,
)
from services.ledger.domain.donations import (
    Donation,
    DonationAlreadyReversed,
    DonationMethod,
    NonCashContribution,
    donation_id_for,
    non_cash_id_for,
)
from services.ledger.domain.facts import LedgerFact
from services.ledger.domain.fatturapa import render_invoice
from services.ledger.domain.funding_accounts import DEFAULT_FUNDING_ACCOUNTS as ACCOUNTS
from services.ledger.domain.grants import (
    Grant,
    GrantClosed,
    ReceiptNotReversible,
    TrancheTerms,
    grant_id_for,
    receipt_cause_id,
    receipt_entry_id,
)
from tests.fatturapa import validate_fatturapa

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


# -- reversing a contract payment recorded wrong -------------------------------------


def posted(fact: LedgerFact) -> JournalEntry:
    return JournalEntry.post(
        chart=chart(),
        effective_date=fact.effective_date,
        description=fact.description,
        postings=fact.postings,
        cause=Cause(fact.cause_id, "admin"),
        limits=LIMITS,
    )


def reversal_of(entry: JournalEntry, day: date, description: str) -> JournalEntry:
    return entry.reverse(
        chart=chart(), effective_date=day, description=description, actor="admin", limits=LIMITS
    )


# The rule as the default settings have it: over EUR 77.47 outside VAT owes EUR 2.00.
STAMP_DUTY = StampDutyRule(threshold_cents=7_747, duty_cents=200)


def issued_invoice(
    *,
    persons: int = 20,
    days: tuple[int, ...] = (3, 4, 5, 6),
    items: tuple[PassThroughItem, ...] = (PassThroughItem("Pocket money", 250),),
    vat_nature: str | None = None,
    stamp_duty: StampDutyRule = STAMP_DUTY,
    sequence: InvoiceSequence | None = None,
) -> ContractInvoice:
    """A March 2025 invoice at 32.31 per person per day, VAT 5% (or `vat_nature`)."""
    contract = Contract.register(
        authority="Prefettura di Brescia",
        authority_tax_code="80012345676",
        authority_office_code="UFA7KD",
        authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
        cig="8A1234567B",
        agreement_reference=None,
        daily_rate_cents=3_231,
        vat_rate_bp=0 if vat_nature else 500,
        vat_nature=vat_nature,
        split_payment=True,
        capacity=20,
        starts_on=date(2025, 1, 1),
        ends_on=None,
        pass_through_items=list(items),
        ceiling_cents=CEILING,
        accounts=ACCOUNTS,
    )
    register = PresenceMonth.open(contract.id, "2025-03")
    for day in days:
        register.record(
            contract=contract, day=date(2025, 3, day), persons_present=persons, today=TODAY
        )
    profile = InvoicingProfile.start()
    profile.set(
        name="K-Pax",
        vat_number="03012345678",
        tax_code=None,
        tax_regime="RF01",
        address=Address("Via Mazzini 12", "25043", "Breno", "BS"),
        iban=None,
    )
    return ContractInvoice.issue(
        contract=contract,
        register=register,
        sequence=sequence or InvoiceSequence.start(2025),
        profile=profile,
        issued_on=date(2025, 4, 1),
        today=TODAY,
        stamp_duty=stamp_duty,
    )


def invoice() -> ContractInvoice:
    """March 2025: 4 days x 20 persons = 80 presence days at 32.31, VAT 5%, pocket money
    2.50: net 2,584.80, VAT 129.24, pass-through 200.00; split payment: payable 2,784.80."""
    issued = issued_invoice()
    assert issued.payable_cents == 278_480
    return issued


def pay(inv: ContractInvoice, amount_cents: int, day: date = date(2025, 5, 2)) -> LedgerFact:
    return inv.record_payment(
        paid_on=day,
        amount_cents=amount_cents,
        today=TODAY,
        ceiling_cents=CEILING,
        accounts=ACCOUNTS,
    )


def test_a_payment_reversed_is_outstanding_again_and_its_entry_reversed_by_the_ledger() -> None:
    inv = invoice()
    wrong = pay(inv, 273_969)  # 2,739.69 typed for 2,379.69
    assert inv.outstanding_cents == 278_480 - 273_969
    original = posted(wrong)
    assert original.id == payment_entry_id(inv.id, 1)
    description = inv.reverse_payment(
        1, reversed_on=date(2025, 5, 2), reason="Typed 2739.69 for 2379.69", today=TODAY
    )
    # Exactly the payment goes back to outstanding; the payment keeps its number.
    assert (inv.paid_cents, inv.outstanding_cents) == (0, 278_480)
    assert inv.payment(1).reversed_on == date(2025, 5, 2)
    assert inv.payment(1).reversal_reason == "Typed 2739.69 for 2379.69"
    reversal = reversal_of(original, date(2025, 5, 2), description)
    assert reversal.reverses_entry_id == original.id
    assert lines(LedgerFact("r", reversal.effective_date, "", reversal.postings)) == {
        "1110": 273_969,
        "1010": -273_969,
    }
    assert "Typed" not in description
    assert str(inv.id)[:8] in description
    # The right payment is number 2 (its own cause); what is outstanding limits it.
    right = pay(inv, 237_969)
    assert right.cause_id.endswith(":payment:2")
    assert inv.outstanding_cents == 40_511
    with pytest.raises(ValidationError):
        pay(inv, 40_512)
    # At most once per payment; an unknown payment is not found.
    version = inv.version
    with pytest.raises(PaymentAlreadyReversed):
        inv.reverse_payment(1, reversed_on=date(2025, 5, 3), reason="again", today=TODAY)
    assert isinstance(PaymentAlreadyReversed("x"), Conflict)
    with pytest.raises(NotFound):
        inv.reverse_payment(3, reversed_on=date(2025, 5, 3), reason="x", today=TODAY)
    assert inv.version == version
    assert inv.outstanding_cents == 40_511


@pytest.mark.parametrize(
    ("reversed_on", "reason", "field"),
    [
        (date(2026, 1, 1), "typo", "effectiveDate"),  # after TODAY
        (date(2025, 5, 1), "typo", "effectiveDate"),  # before the payment
        (date(2025, 5, 2), " ", "reason"),
        (date(2025, 5, 2), "x" * 501, "reason"),
    ],
)
def test_a_bad_payment_reversal_names_the_field_and_records_nothing(
    reversed_on: date, reason: str, field: str
) -> None:
    inv = invoice()
    pay(inv, 100_000)
    version = inv.version
    with pytest.raises(ValidationError) as raised:
        inv.reverse_payment(1, reversed_on=reversed_on, reason=reason, today=TODAY)
    assert raised.value.field == field
    assert inv.version == version
    assert inv.paid_cents == 100_000


# -- reversing a tranche's receipt ---------------------------------------------------


def test_a_receipt_on_the_wrong_tranche_is_reversed_and_the_right_tranche_received() -> None:
    g = grant([800_000, 1_200_000], restricted=False)
    wrong = g.receive_tranche(2, date(2025, 3, 3), today=TODAY, accounts=ACCOUNTS)
    original = posted(wrong)
    assert original.id == receipt_entry_id(g.id, 2, 1)
    with pytest.raises(Conflict, match="holds advances"):
        g.close(date(2025, 3, 4), today=TODAY, accounts=ACCOUNTS)

    entry_id, description = g.reverse_receipt(
        2, reversed_on=date(2025, 3, 3), reason="Was tranche 1", today=TODAY
    )
    assert entry_id == original.id
    assert g.tranches[1].received_on is None
    assert g.tranches[1].receipt_reversed_on == date(2025, 3, 3)
    reversal = reversal_of(original, date(2025, 3, 3), description)
    # The advance it made goes back: Dr 2300 / Cr 1010.
    assert lines(LedgerFact("r", reversal.effective_date, "", reversal.postings)) == {
        "2300": 1_200_000,
        "1010": -1_200_000,
    }
    assert "Was tranche" not in description
    assert str(g.id)[:8] in description

    right = g.receive_tranche(1, date(2025, 3, 3), today=TODAY, accounts=ACCOUNTS)
    assert right.cause_id == receipt_cause_id(g.id, 1, 1)
    g.meet_condition(1, date(2025, 3, 10), today=TODAY, accounts=ACCOUNTS)
    # Nothing is held any more: the grant closes, the unpaid tranche 2 is cancelled.
    assert g.close(date(2025, 3, 20), today=TODAY, accounts=ACCOUNTS) is None
    assert g.tranches[1].cancelled_on == date(2025, 3, 20)

    # Received again after its reversal, a tranche's receipt has a cause of its own.
    h = grant([500_000])
    h.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    h.reverse_receipt(1, reversed_on=date(2025, 2, 1), reason="typo", today=TODAY)
    again = h.receive_tranche(1, date(2025, 2, 2), today=TODAY, accounts=ACCOUNTS)
    assert again.cause_id == receipt_cause_id(h.id, 1, 2) == f"{receipt_cause_id(h.id, 1, 1)}:2"
    entry_id, _ = h.reverse_receipt(1, reversed_on=date(2025, 2, 3), reason="typo", today=TODAY)
    assert entry_id == receipt_entry_id(h.id, 1, 2)


def test_a_receipt_that_settled_a_receivable_is_reversed_into_the_receivable() -> None:
    g = grant([500_000])  # restricted
    g.meet_condition(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)  # Dr 1120 / Cr 4210
    original = posted(g.receive_tranche(1, date(2025, 2, 10), today=TODAY, accounts=ACCOUNTS))
    # The condition was met before the receipt: it does not depend on it.
    _, description = g.reverse_receipt(
        1, reversed_on=date(2025, 2, 11), reason="Not paid yet", today=TODAY
    )
    reversal = reversal_of(original, date(2025, 2, 11), description)
    assert lines(LedgerFact("r", reversal.effective_date, "", reversal.postings)) == {
        "1120": 500_000,
        "1010": -500_000,
    }
    assert g.tranches[0].condition_met_on == date(2025, 2, 1)  # still recognised


def test_a_receipt_a_later_step_was_decided_on_is_not_reversed() -> None:
    def receipt_refused(g: Grant, number: int, match: str) -> None:
        version = g.version
        with pytest.raises(Conflict, match=match) as raised:
            g.reverse_receipt(number, reversed_on=date(2025, 6, 1), reason="x", today=TODAY)
        assert g.version == version
        assert g.tranches[number - 1].received_on is not None
        assert raised.type in (ReceiptNotReversible, GrantClosed)

    # The condition met out of the advance the receipt made.
    g = grant([500_000, 500_000])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.meet_condition(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    receipt_refused(g, 1, "condition .* was met on 2025-03-01, after its receipt")
    # A cut shared out on the tranches unpaid then.
    g = grant([500_000, 500_000])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.reduce_pro_rata(
        budget_cents=100,
        reported_cents=80,
        reduced_on=date(2025, 4, 1),
        today=TODAY,
        ceiling_cents=CEILING,
        accounts=ACCOUNTS,
    )
    receipt_refused(g, 1, "cut pro rata on 2025-04-01")
    # A tranche received after the cut did not shape it: it can be reversed.
    g.receive_tranche(2, date(2025, 4, 2), today=TODAY, accounts=ACCOUNTS)
    g.reverse_receipt(2, reversed_on=date(2025, 4, 2), reason="x", today=TODAY)
    # The closing.
    g = grant([500_000])
    g.meet_condition(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.receive_tranche(1, date(2025, 2, 2), today=TODAY, accounts=ACCOUNTS)
    g.close(date(2025, 5, 1), today=TODAY, accounts=ACCOUNTS)
    receipt_refused(g, 1, "closed on 2025-05-01")


def test_nothing_received_nothing_to_reverse_and_bad_input_names_the_field() -> None:
    g = grant([500_000, 500_000])
    with pytest.raises(ReceiptNotReversible, match="was not received"):
        g.reverse_receipt(1, reversed_on=date(2025, 2, 1), reason="x", today=TODAY)
    with pytest.raises(ValidationError) as raised:
        g.reverse_receipt(3, reversed_on=date(2025, 2, 1), reason="x", today=TODAY)
    assert raised.value.field == "tranche"
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    version = g.version
    for reversed_on, reason, field in (
        (date(2026, 1, 1), "typo", "effectiveDate"),  # after TODAY
        (date(2025, 1, 31), "typo", "effectiveDate"),  # before the receipt
        (date(2025, 2, 1), "", "reason"),
    ):
        with pytest.raises(ValidationError) as raised:
            g.reverse_receipt(1, reversed_on=reversed_on, reason=reason, today=TODAY)
        assert raised.value.field == field
    assert g.version == version
    g.reverse_receipt(1, reversed_on=date(2025, 2, 1), reason="typo", today=TODAY)
    with pytest.raises(ReceiptNotReversible, match="already reversed on 2025-02-01"):
        g.reverse_receipt(1, reversed_on=date(2025, 2, 2), reason="again", today=TODAY)


def test_a_receipt_and_its_condition_keep_their_order_either_way() -> None:
    """Review F1: one rule for both orders; nothing is recorded when it refuses."""
    g = grant([500_000])
    g.meet_condition(1, date(2025, 6, 30), today=TODAY, accounts=ACCOUNTS)
    version = g.version
    with pytest.raises(ValidationError) as raised:
        g.receive_tranche(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    assert raised.value.field == "date"
    assert "the condition of tranche 1 met (2025-06-30)" in raised.value.message
    assert (g.version, g.tranches[0].received_on) == (version, None)
    # On the condition's day it settles the receivable the condition posted.
    assert lines(g.receive_tranche(1, date(2025, 6, 30), today=TODAY, accounts=ACCOUNTS)) == {
        "1010": 500_000,
        "1120": -500_000,
    }
    g = grant([500_000])
    g.receive_tranche(1, date(2025, 4, 1), today=TODAY, accounts=ACCOUNTS)
    with pytest.raises(ValidationError) as raised:
        g.meet_condition(1, date(2025, 3, 1), today=TODAY, accounts=ACCOUNTS)
    assert raised.value.field == "date"
    assert "the receipt of tranche 1 (2025-04-01)" in raised.value.message


def test_a_close_or_a_cut_is_not_dated_before_a_fact_already_on_the_grant() -> None:
    """Review F2: the latest receipt, condition met, receipt reversal or cut."""

    def cut(g: Grant, day: date) -> None:
        g.reduce_pro_rata(
            budget_cents=100,
            reported_cents=50,
            reduced_on=day,
            today=TODAY,
            ceiling_cents=CEILING,
            accounts=ACCOUNTS,
        )

    def close(g: Grant, day: date) -> None:
        g.close(day, today=TODAY, accounts=ACCOUNTS)

    def refused(g: Grant, settle: Callable[[Grant, date], None], day: date, latest: str) -> None:
        version = g.version
        with pytest.raises(ValidationError) as raised:
            settle(g, day)
        assert raised.value.field == "date"
        assert f"({latest})" in raised.value.message
        assert g.version == version

    g = grant([500_000, 500_000])
    g.meet_condition(2, date(2025, 9, 1), today=TODAY, accounts=ACCOUNTS)
    refused(g, close, date(2025, 6, 1), "2025-09-01")  # (a) a write-off before its revenue
    refused(g, cut, date(2025, 8, 31), "2025-09-01")  # (c) a cut before the revenue it cuts
    g = grant([500_000, 500_000])
    g.meet_condition(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.receive_tranche(1, date(2025, 9, 1), today=TODAY, accounts=ACCOUNTS)
    refused(g, close, date(2025, 3, 1), "2025-09-01")  # (b) money after the closing
    refused(g, cut, date(2025, 3, 1), "2025-09-01")  # (d) a cut before the receipt
    # A receipt reversed later is a fact too: the money was on the books until then.
    g = grant([500_000, 500_000])
    g.receive_tranche(1, date(2025, 2, 1), today=TODAY, accounts=ACCOUNTS)
    g.reverse_receipt(1, reversed_on=date(2025, 5, 1), reason="wrong", today=TODAY)
    refused(g, cut, date(2025, 4, 30), "2025-05-01")
    refused(g, close, date(2025, 4, 30), "2025-05-01")
    # A close is not dated before the cut.
    cut(g, date(2025, 6, 1))
    refused(g, close, date(2025, 5, 31), "2025-06-01")
    # On the latest fact's day, both are accepted.
    assert g.close(date(2025, 6, 1), today=TODAY, accounts=ACCOUNTS) is None
    assert g.closed_on == date(2025, 6, 1)


def test_a_receipt_refusal_gives_both_dates_and_no_false_order() -> None:
    """Review F2 (d): a grant recorded before dates were kept in order may have its cut
    (or closing) dated before a receipt recorded earlier; the refusal said "cut on
    2025-03-01, after the receipt" of a receipt dated 2025-04-01."""
    g = grant([100_000, 100_000])
    g.receive_tranche(1, date(2025, 4, 1), today=TODAY, accounts=ACCOUNTS)
    # As such a grant's history holds it: the cut's event, dated before the receipt.
    g.trigger_event(
        Grant.ReducedProRata,
        reduced_on=date(2025, 3, 1),
        budget_cents=200_000,
        reported_cents=150_000,
        amounts_cents=[100_000, 50_000],
    )
    with pytest.raises(ReceiptNotReversible) as raised:
        g.reverse_receipt(1, reversed_on=date(2025, 4, 1), reason="wrong tranche", today=TODAY)
    message = raised.value.message
    assert "after the receipt" not in message
    assert "cut pro rata on 2025-03-01 with tranche 1 received (2025-04-01)" in message
    g.trigger_event(Grant.Closed, closed_on=date(2025, 3, 15))
    with pytest.raises(GrantClosed) as closed:
        g.reverse_receipt(1, reversed_on=date(2025, 4, 1), reason="wrong tranche", today=TODAY)
    assert "after the receipt" not in closed.value.message
    assert "closed on 2025-03-15 with tranche 1 received (2025-04-01)" in closed.value.message


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("03012345678", True),
        ("80012345676", True),
        ("80012345678", False),  # check digit 6
        ("01234567890", False),  # check digit 7
        ("00000000000", False),  # passes the check digit; no taxpayer is number 0
        ("0301234567", False),
        ("0301234567A", False),
    ],
)
def test_a_partita_iva_has_eleven_digits_and_its_check_digit(value: str, valid: bool) -> None:
    if valid:
        assert check_vat_number(value, field="vatNumber") == value
        return
    with pytest.raises(ValidationError) as raised:
        check_vat_number(value, field="vatNumber")
    assert raised.value.field == "vatNumber"
    assert value not in raised.value.message


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("80012345676", True),  # a body: 11 digits, the partita IVA's check digit
        ("RSSMRA85T10A562S", True),  # a person
        ("MRTMTT25D09F205Z", True),
        ("RSSMRA85T10A56NH", True),  # omocodia: N for 2 (odd place: 5 -> 20), S + 15 = H
        ("RSSMRA85T10A56NS", False),
        ("80012345678", False),
        ("00000000000", False),
        ("ABCDEFGHIJKLM", False),  # 13 letters
        ("RSSMRA85T10A562T", False),  # check letter S
        ("rssmra85t10a562s", False),
        ("RSSMRA85X10A562S", False),  # no month X
    ],
)
def test_a_codice_fiscale_is_a_bodys_eleven_digits_or_a_persons_sixteen(
    value: str, valid: bool
) -> None:
    if valid:
        assert check_tax_code(value, field="authorityTaxCode") == value
        return
    with pytest.raises(ValidationError) as raised:
        check_tax_code(value, field="authorityTaxCode")
    assert raised.value.field == "authorityTaxCode"
    assert value not in raised.value.message


def test_the_profile_and_the_contract_refuse_codes_the_sdi_would_reject() -> None:
    profile = InvoicingProfile.start()
    for vat_number, tax_code, field in (
        ("01234567890", None, "vatNumber"),
        ("03012345678", "ABCDEFGHIJKLM", "taxCode"),
    ):
        with pytest.raises(ValidationError) as raised:
            profile.set(
                name="K-Pax",
                vat_number=vat_number,
                tax_code=tax_code,
                tax_regime="RF01",
                address=Address("Via Mazzini 12", "25043", "Breno", "BS"),
                iban=None,
            )
        assert raised.value.field == field
    assert profile.details is None
    with pytest.raises(ValidationError) as raised:
        Contract.register(
            authority="Prefettura di Brescia",
            authority_tax_code="80012345678",
            authority_office_code="UFA7KD",
            authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
            cig="8A1234567B",
            agreement_reference=None,
            daily_rate_cents=3_231,
            vat_rate_bp=500,
            vat_nature=None,
            split_payment=True,
            capacity=20,
            starts_on=date(2025, 1, 1),
            ends_on=None,
            pass_through_items=[],
            ceiling_cents=CEILING,
            accounts=ACCOUNTS,
        )
    assert raised.value.field == "authorityTaxCode"


# -- stamp duty (imposta di bollo) on contract invoices --------------------------------


def document(inv: ContractInvoice) -> dict[str, object]:
    """The Issued event's fields: what the read model keeps and renders the XML from."""
    (issued,) = [e for e in inv.collect_events() if isinstance(e, ContractInvoice.Issued)]
    return dict(issued.__dict__)


def one_person_day(pocket_money_cents: int) -> ContractInvoice:
    """One person present one day: the pocket money is the invoice's whole N1 amount."""
    return issued_invoice(
        persons=1, days=(3,), items=(PassThroughItem("Pocket money", pocket_money_cents),)
    )


def test_stamp_duty_is_owed_strictly_over_the_threshold() -> None:
    at = one_person_day(7_747)  # EUR 77.47 outside VAT: not "over" 77.47
    over = one_person_day(7_748)
    assert at.stamp_duty_cents == 0
    assert over.stamp_duty_cents == 200
    # The cooperative bears the duty: not an invoice line, the body pays the same.
    assert (over.total_cents, over.payable_cents) == (
        at.total_cents + 1,
        at.payable_cents + 1,
    )
    assert [f.cause_id for f in at.ledger_facts(ACCOUNTS)] == [
        f"funding:contract-invoice:{at.id}",
        f"funding:contract-invoice:{at.id}:split-payment",
    ]
    facts = over.ledger_facts(ACCOUNTS)
    assert facts[-1].cause_id == f"funding:contract-invoice:{over.id}:stamp-duty"
    assert facts[-1].effective_date == over.issued_on
    # Dr taxes and duties / Cr stamp duty payable to the State; the receivable is untouched.
    assert lines(facts[-1]) == {"5500": 200, "2110": -200}
    assert lines(facts[0])["1110"] == over.total_cents
    for fact in facts:
        posted(fact)  # balanced, on accounts of the default chart


def test_the_document_declares_virtual_stamp_duty_where_the_schema_puts_it() -> None:
    over = one_person_day(7_748)
    xml = render_invoice(document(over))
    validate_fatturapa(xml)
    root = ET.fromstring(xml)
    general = root.find("FatturaElettronicaBody/DatiGenerali/DatiGeneraliDocumento")
    assert general is not None
    assert [child.tag for child in general] == [
        "TipoDocumento",
        "Divisa",
        "Data",
        "Numero",
        "DatiBollo",
        "ImportoTotaleDocumento",
        "Causale",
    ]
    assert general.findtext("DatiBollo/BolloVirtuale") == "SI"
    assert general.findtext("DatiBollo/ImportoBollo") == "2.00"
    # The duty is no part of the document's total.
    assert general.findtext("ImportoTotaleDocumento") == format_cents(over.total_cents)

    at = render_invoice(document(one_person_day(7_747)))
    validate_fatturapa(at)
    assert "DatiBollo" not in at


def test_an_invoice_recorded_before_stamp_duty_renders_as_it_always_did() -> None:
    """Invoices issued before the field existed have no `stamp_duty_cents` in their
    recorded data: their document must not change (it is a pure function of it)."""
    doc = document(invoice())
    assert doc.pop("stamp_duty_cents") == 200  # 200.00 of pocket money today owes it
    old = render_invoice(doc)
    assert "DatiBollo" not in old
    assert old == render_invoice({**doc, "stamp_duty_cents": 0})


@pytest.mark.parametrize(
    ("items", "vat_nature", "owed"),
    [
        # Several N1 items count together: 40.00 + 40.00 is over 77.47.
        ((PassThroughItem("Pocket money", 4_000), PassThroughItem("Phone card", 4_000)), None, 200),
        # Only N1 amounts count: the N4 item is not outside the VAT scope in that sense.
        (
            (PassThroughItem("Pocket money", 4_000), PassThroughItem("Other", 4_000, "N4")),
            None,
            0,
        ),
        # A contract whose own line is N1 (0%, excluded) counts its net too: 32.31 + 50.00.
        ((PassThroughItem("Pocket money", 5_000),), "N1", 200),
        ((), None, 0),
    ],
)
def test_the_threshold_counts_the_n1_amounts_of_the_invoice(
    items: tuple[PassThroughItem, ...], vat_nature: str | None, owed: int
) -> None:
    inv = issued_invoice(persons=1, days=(3,), items=items, vat_nature=vat_nature)
    assert inv.stamp_duty_cents == owed


def test_the_rule_in_force_at_issue_is_the_one_recorded() -> None:
    """Threshold and duty are settings: another law, another figure; 0 turns it off."""
    assert issued_invoice(stamp_duty=StampDutyRule(7_747, 0)).stamp_duty_cents == 0
    assert issued_invoice(stamp_duty=StampDutyRule(20_000, 200)).stamp_duty_cents == 0
    assert issued_invoice(stamp_duty=StampDutyRule(19_999, 300)).stamp_duty_cents == 300


def test_the_year_s_last_invoice_number_still_makes_a_valid_document() -> None:
    """Numbering continued from another system's 999,998th invoice: the 999,999th is
    issued with a ProgressivoInvio the schema accepts (10 characters); the next is
    refused rather than issued as a document the SdI would reject."""
    sequence = InvoiceSequence.start(2025)
    with pytest.raises(ValidationError):
        sequence.continue_from(999_999, date(2025, 3, 31), today=TODAY)
    sequence.continue_from(999_998, date(2025, 3, 31), today=TODAY)
    last = issued_invoice(sequence=sequence)
    assert last.number == "PA-2025-999999"
    xml = render_invoice(document(last))
    validate_fatturapa(xml)
    transmission = ET.fromstring(xml).find("FatturaElettronicaHeader/DatiTrasmissione")
    assert transmission is not None
    assert transmission.findtext("ProgressivoInvio") == "2025999999"

    with pytest.raises(Conflict, match="exhausted at PA-2025-999999"):
        issued_invoice(sequence=sequence)
    assert sequence.last_number == 999_999

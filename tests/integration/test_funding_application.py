"""Funding commands on real stores: retries, and exactly one winner among rivals."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.common.errors import (
    Conflict,
    CoopError,
    IdempotencyKeyReused,
    NotFound,
    ValidationError,
)
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import (
    DEFAULT_ACCOUNTS,
    AccountKeptOpen,
    AccountType,
    ChartOfAccounts,
    entry_id_for_cause,
)
from services.ledger.domain.contracts import (
    Address,
    ContractInvoice,
    PassThroughItem,
    stamp_duty_cause_id,
)
from services.ledger.domain.donations import DonationMethod
from services.ledger.domain.fatturapa import render_invoice
from services.ledger.domain.grants import TrancheTerms
from services.ledger.funding import FundingApplication
from services.ledger.projections.funding_projector import INVOICE_DOCUMENT_FIELDS


@pytest.fixture
def funding(settings: Settings) -> Iterator[FundingApplication]:
    ledger = LedgerApplication(settings)
    ledger.ensure_chart()
    app = FundingApplication(settings, ledger)
    yield app
    app.close()
    ledger.close()


def head(app: FundingApplication) -> int:
    return app.recorder.max_notification_id() or 0


def contract(
    app: FundingApplication,
    *,
    pocket_money_cents: int = 250,
    key: str = "contract",
    cig: str = "8A1234567B",
) -> Any:
    app.set_invoicing_profile(
        key="profile",
        actor="admin",
        name="K-Pax",
        vat_number="03012345678",
        tax_code=None,
        tax_regime="RF01",
        address=Address("Via Mazzini 12", "25043", "Breno", "BS"),
        iban=None,
    )
    return app.register_contract(
        key=key,
        actor="admin",
        authority="Prefettura di Brescia",
        authority_tax_code="80012345676",
        authority_office_code="UFA7KD",
        authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
        cig=cig,
        agreement_reference=None,
        daily_rate_cents=2_900,
        vat_rate_bp=500,
        vat_nature=None,
        split_payment=True,
        capacity=20,
        starts_on=date(2025, 1, 1),
        ends_on=None,
        pass_through_items=[PassThroughItem("Pocket money", pocket_money_cents)],
    ).result


def race(*commands: Callable[[], Any]) -> list[Any]:
    """Run the commands at once; return each one's result or expected error."""
    barrier = threading.Barrier(len(commands))
    results: list[Any] = [None] * len(commands)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = commands[index]()
        except CoopError as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_invoices_for_the_same_month_exactly_one_wins(funding: FundingApplication) -> None:
    c = contract(funding)
    for day in range(1, 4):
        funding.record_presence(
            key=f"p{day}",
            actor="admin",
            contract_id=c.id,
            day=date(2025, 3, day),
            persons_present=5,
        )

    def invoice(key: str) -> Callable[[], Any]:
        return lambda: funding.invoice_contract(
            key=key, actor="admin", contract_id=c.id, month="2025-03", issued_on=date(2025, 4, 1)
        )

    results = race(invoice("inv-a"), invoice("inv-b"), invoice("inv-c"))
    winners = [r for r in results if not isinstance(r, CoopError)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    won: ContractInvoice = winners[0].result
    assert won.number == "PA-2025-0001"
    assert won.net_cents == 15 * 2_900
    # The invoice entry posted once; numbering has no gap for the next month.
    entry = funding.ledger.get_entry(entry_id_for_cause(f"funding:contract-invoice:{won.id}"))
    assert entry.total_cents == won.total_cents
    funding.record_presence(
        key="p-apr", actor="admin", contract_id=c.id, day=date(2025, 4, 1), persons_present=1
    )
    april = funding.invoice_contract(
        key="inv-apr", actor="admin", contract_id=c.id, month="2025-04", issued_on=date(2025, 5, 1)
    )
    assert april.result.number == "PA-2025-0002"


def test_a_presence_retry_changes_nothing_and_a_reused_key_is_refused(
    funding: FundingApplication,
) -> None:
    c = contract(funding)

    def record(persons: int) -> Any:
        return funding.record_presence(
            key="p-1",
            actor="admin",
            contract_id=c.id,
            day=date(2025, 3, 1),
            persons_present=persons,
        )

    first = record(12)
    written = head(funding)
    again = record(12)
    assert again.replayed
    assert again.result.revision == first.result.revision == 1
    assert head(funding) == written
    with pytest.raises(IdempotencyKeyReused):
        record(13)
    assert head(funding) == written


def test_a_tranche_received_by_two_clerks_at_once_is_received_once(
    funding: FundingApplication,
) -> None:
    grant = funding.award_grant(
        key="grant",
        actor="admin",
        funder="Regione Lombardia",
        purpose="Housing",
        amount_cents=500_000,
        restricted=True,
        public_funder=True,
        tranches=[TrancheTerms(500_000, "Start", None)],
        awarded_on=date(2025, 1, 1),
    ).result

    def receive(key: str) -> Callable[[], Any]:
        return lambda: funding.receive_grant_tranche(
            key=key, actor="admin", grant_id=grant.id, tranche=1, received_on=date(2025, 2, 1)
        )

    results = race(receive("r-a"), receive("r-b"))
    assert sum(1 for r in results if not isinstance(r, CoopError)) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    entry = funding.ledger.get_entry(
        entry_id_for_cause(f"funding:grant:{grant.id}:tranche:1:received")
    )
    assert entry.total_cents == 500_000


def wrong_donation(app: FundingApplication, key: str = "d-wrong") -> Any:
    return app.record_donation(
        key=key,
        actor="admin",
        amount_cents=100_000,
        restricted=False,
        method=DonationMethod.BANK,
        donor="Maria Rossi",
        purpose=None,
        received_on=date(2025, 5, 10),
    ).result


def reverse(app: FundingApplication, key: str, donation_id: UUID, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "reversed_on": date(2025, 6, 5),
        "reason": "Typed 1000.00 for Maria's 100.00",
    }
    values.update(overrides)
    return app.reverse_donation(key=key, actor="admin", donation_id=donation_id, **values)


def test_a_reversal_saves_the_donation_and_the_ledgers_linked_reversal_together(
    funding: FundingApplication,
) -> None:
    d = wrong_donation(funding)
    before = head(funding)
    outcome = reverse(funding, "fix", d.id)
    # The donation's event, the original entry's Reversed, the reversal, the claim.
    assert head(funding) == before + 4
    assert outcome.position == head(funding)
    assert outcome.result.reversed_on == date(2025, 6, 5)
    original = funding.ledger.get_entry(entry_id_for_cause(f"funding:donation:{d.id}"))
    reversal = funding.ledger.get_entry(outcome.result.reversal_entry_id)
    assert original.reversed_by_entry_id == reversal.id
    assert reversal.reverses_entry_id == original.id
    assert reversal.effective_date == date(2025, 6, 5)
    assert {(p.account_code, p.side.value, p.amount_cents) for p in reversal.postings} == {
        ("1010", "credit", 100_000),
        ("4400", "debit", 100_000),
    }
    assert "Maria" not in reversal.description
    assert "Typed" not in reversal.description
    # The retry answers the same and writes nothing; the key with other input is refused.
    again = reverse(funding, "fix", d.id)
    assert again.replayed
    assert again.result.reversal_entry_id == reversal.id
    assert head(funding) == before + 4
    with pytest.raises(IdempotencyKeyReused):
        reverse(funding, "fix", d.id, reason="Another reason")
    # A second reversal under a new key is refused, and so is the ledger's own command.
    with pytest.raises(Conflict):
        reverse(funding, "fix-again", d.id)
    with pytest.raises(Conflict):
        funding.ledger.reverse_entry(
            key="by-hand",
            actor="admin",
            entry_id=original.id,
            effective_date=date(2025, 6, 6),
            description="by hand",
        )
    assert head(funding) == before + 4


def test_two_reversals_of_a_donation_at_once_exactly_one_wins(
    funding: FundingApplication,
) -> None:
    d = wrong_donation(funding)
    before = head(funding)
    results = race(*(lambda k=k: reverse(funding, k, d.id) for k in ("r-a", "r-b", "r-c")))
    winners = [r for r in results if not isinstance(r, CoopError)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    # One reversal and one claim. (Positions may skip on PostgreSQL, where a loser's
    # rolled-back insert uses up a sequence number: count the events instead.)
    recorded = funding.recorder.select_notifications(before + 1, 100)
    assert sorted(n.topic.rsplit(":", 1)[-1] for n in recorded) == [
        "Donation.Reversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    original = funding.ledger.get_entry(entry_id_for_cause(f"funding:donation:{d.id}"))
    assert original.reversed_by_entry_id == winners[0].result.reversal_entry_id


def test_unknown_ids_and_bad_dates_store_nothing(funding: FundingApplication) -> None:
    d = wrong_donation(funding)
    grant = funding.award_grant(
        key="grant",
        actor="admin",
        funder="Regione Lombardia",
        purpose="Housing",
        amount_cents=1_000,
        restricted=False,
        public_funder=True,
        tranches=[TrancheTerms(1_000, "Start", None)],
        awarded_on=date(2025, 1, 1),
    ).result
    before = head(funding)
    for donation_id in (uuid4(), grant.id):
        with pytest.raises(NotFound):
            reverse(funding, f"nf-{donation_id}", donation_id)
    with pytest.raises(ValidationError) as raised:
        reverse(funding, "early", d.id, reversed_on=date(2025, 5, 9))
    assert raised.value.field == "effectiveDate"
    with pytest.raises(ValidationError) as raised:
        reverse(funding, "empty", d.id, reason="")
    assert raised.value.field == "reason"
    assert head(funding) == before
    assert funding.donation_record(d.id).reversed_on is None


def test_goods_in_kind_are_reversed_without_a_ledger_entry(funding: FundingApplication) -> None:
    goods = funding.record_in_kind_donation(
        key="coats",
        actor="admin",
        description="Winter coats (40)",
        fair_value_cents=600_000,
        restricted=False,
        donor=None,
        received_on=date(2025, 11, 5),
    ).result
    before = head(funding)
    outcome = reverse(funding, "coats-fix", goods.id, reversed_on=date(2025, 11, 6))
    assert head(funding) == before + 2  # the contribution's event and the claim
    assert outcome.result.reversed_on == date(2025, 11, 6)
    with pytest.raises(Conflict):
        reverse(funding, "coats-fix-2", goods.id, reversed_on=date(2025, 11, 6))


# -- reversing a contract payment and a tranche's receipt ----------------------------


def topics(app: FundingApplication, after: int) -> list[str]:
    """The events recorded after `after`, by class name, sorted. (Positions may skip on
    PostgreSQL, where a loser's rolled-back insert uses up a sequence number.)"""
    recorded = app.recorder.select_notifications(after + 1, 100)
    return sorted(n.topic.rsplit(":", 1)[-1] for n in recorded)


def paid_invoice(app: FundingApplication) -> Any:
    """March: 3 days x 5 persons at 29.00 = 435.00 net, VAT 21.75, pocket money 37.50;
    split payment: payable 472.50. Paid 427.50 (typed for 472.50) on 2 May."""
    c = contract(app)
    for day in range(1, 4):
        app.record_presence(
            key=f"p{day}",
            actor="admin",
            contract_id=c.id,
            day=date(2025, 3, day),
            persons_present=5,
        )
    inv = app.invoice_contract(
        key="inv", actor="admin", contract_id=c.id, month="2025-03", issued_on=date(2025, 4, 1)
    ).result
    assert inv.payable_cents == 47_250
    return app.record_contract_payment(
        key="pay-wrong",
        actor="admin",
        invoice_id=inv.id,
        amount_cents=42_750,
        paid_on=date(2025, 5, 2),
    ).result


def reverse_payment(app: FundingApplication, key: str, invoice_id: UUID, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "payment_number": 1,
        "reversed_on": date(2025, 5, 6),
        "reason": "Typed 427.50 for 472.50",
    }
    values.update(overrides)
    return app.reverse_contract_payment(key=key, actor="admin", invoice_id=invoice_id, **values)


def test_a_payment_reversal_saves_the_invoice_and_the_ledgers_linked_reversal_together(
    funding: FundingApplication,
) -> None:
    inv = paid_invoice(funding)
    before = head(funding)
    outcome = reverse_payment(funding, "fix", inv.id)
    # The invoice's event, the original entry's Reversed, the reversal, the claim.
    assert topics(funding, before) == [
        "ContractInvoice.PaymentReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    written = head(funding)
    assert outcome.position == written
    assert (outcome.result.paid_cents, outcome.result.outstanding_cents) == (0, 47_250)
    original = funding.ledger.get_entry(
        entry_id_for_cause(f"funding:contract-invoice:{inv.id}:payment:1")
    )
    assert original.reversed_by_entry_id is not None
    reversal = funding.ledger.get_entry(original.reversed_by_entry_id)
    assert reversal.reverses_entry_id == original.id
    assert reversal.effective_date == date(2025, 5, 6)
    assert {(p.account_code, p.side.value, p.amount_cents) for p in reversal.postings} == {
        ("1110", "debit", 42_750),
        ("1010", "credit", 42_750),
    }
    assert "Typed" not in reversal.description
    # The retry answers the same and writes nothing; the key with other input is refused.
    again = reverse_payment(funding, "fix", inv.id)
    assert again.replayed
    assert again.result.payment(1).reversed_on == date(2025, 5, 6)
    with pytest.raises(IdempotencyKeyReused):
        reverse_payment(funding, "fix", inv.id, reason="Another reason")
    # A second reversal under a new key is refused, and so is the ledger's own command.
    with pytest.raises(Conflict):
        reverse_payment(funding, "fix-again", inv.id)
    with pytest.raises(Conflict):
        funding.ledger.reverse_entry(
            key="by-hand",
            actor="admin",
            entry_id=original.id,
            effective_date=date(2025, 5, 7),
            description="by hand",
        )
    assert head(funding) == written
    # The right payment: number 2, with an entry of its own.
    right = funding.record_contract_payment(
        key="pay-right",
        actor="admin",
        invoice_id=inv.id,
        amount_cents=47_250,
        paid_on=date(2025, 5, 2),
    ).result
    assert right.outstanding_cents == 0
    entry = funding.ledger.get_entry(
        entry_id_for_cause(f"funding:contract-invoice:{inv.id}:payment:2")
    )
    assert entry.total_cents == 47_250


def test_two_reversals_of_a_payment_at_once_exactly_one_wins(
    funding: FundingApplication,
) -> None:
    inv = paid_invoice(funding)
    before = head(funding)
    results = race(*(lambda k=k: reverse_payment(funding, k, inv.id) for k in ("a", "b", "c")))
    winners = [r for r in results if not isinstance(r, CoopError)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    assert topics(funding, before) == [
        "ContractInvoice.PaymentReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    assert funding.invoice(inv.id).outstanding_cents == 47_250


def test_a_bad_payment_reversal_stores_nothing(funding: FundingApplication) -> None:
    inv = paid_invoice(funding)
    before = head(funding)
    with pytest.raises(NotFound):
        reverse_payment(funding, "unknown-invoice", uuid4())
    with pytest.raises(NotFound):
        reverse_payment(funding, "unknown-payment", inv.id, payment_number=2)
    for key, overrides, field in (
        ("early", {"reversed_on": date(2025, 5, 1)}, "effectiveDate"),
        ("future", {"reversed_on": date(2999, 1, 1)}, "effectiveDate"),
        ("no-reason", {"reason": " "}, "reason"),
    ):
        with pytest.raises(ValidationError) as raised:
            reverse_payment(funding, key, inv.id, **overrides)
        assert raised.value.field == field
    assert head(funding) == before
    assert funding.invoice(inv.id).paid_cents == 42_750


def wrong_receipt(app: FundingApplication) -> Any:
    """A two-tranche grant whose first money was received as tranche 2."""
    grant = app.award_grant(
        key="grant",
        actor="admin",
        funder="Regione Lombardia",
        purpose="Housing",
        amount_cents=2_000_000,
        restricted=False,
        public_funder=True,
        tranches=[TrancheTerms(800_000, "Start", None), TrancheTerms(1_200_000, "Report", None)],
        awarded_on=date(2025, 1, 1),
    ).result
    app.receive_grant_tranche(
        key="t2-wrong", actor="admin", grant_id=grant.id, tranche=2, received_on=date(2025, 3, 3)
    )
    return grant


def reverse_receipt(app: FundingApplication, key: str, grant_id: UUID, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "tranche": 2,
        "reversed_on": date(2025, 3, 3),
        "reason": "It was tranche 1",
    }
    values.update(overrides)
    return app.reverse_grant_tranche_receipt(key=key, actor="admin", grant_id=grant_id, **values)


def test_a_receipt_reversal_saves_the_grant_and_the_ledgers_linked_reversal_together(
    funding: FundingApplication,
) -> None:
    grant = wrong_receipt(funding)
    before = head(funding)
    outcome = reverse_receipt(funding, "fix", grant.id)
    assert topics(funding, before) == [
        "Grant.TrancheReceiptReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    written = head(funding)
    assert outcome.result.tranches[1].received_on is None
    original = funding.ledger.get_entry(
        entry_id_for_cause(f"funding:grant:{grant.id}:tranche:2:received")
    )
    assert original.reversed_by_entry_id is not None
    reversal = funding.ledger.get_entry(original.reversed_by_entry_id)
    assert reversal.reverses_entry_id == original.id
    assert {(p.account_code, p.side.value, p.amount_cents) for p in reversal.postings} == {
        ("2300", "debit", 1_200_000),
        ("1010", "credit", 1_200_000),
    }
    assert "tranche 1" not in reversal.description  # the reason stays on the grant
    again = reverse_receipt(funding, "fix", grant.id)
    assert again.replayed
    with pytest.raises(IdempotencyKeyReused):
        reverse_receipt(funding, "fix", grant.id, reason="Another reason")
    with pytest.raises(Conflict, match="already reversed"):
        reverse_receipt(funding, "fix-again", grant.id)
    with pytest.raises(Conflict):
        funding.ledger.reverse_entry(
            key="by-hand",
            actor="admin",
            entry_id=original.id,
            effective_date=date(2025, 3, 4),
            description="by hand",
        )
    assert head(funding) == written
    # Tranche 2 can be received again: a receipt with its own cause and entry.
    funding.receive_grant_tranche(
        key="t2-again", actor="admin", grant_id=grant.id, tranche=2, received_on=date(2025, 9, 1)
    )
    entry = funding.ledger.get_entry(
        entry_id_for_cause(f"funding:grant:{grant.id}:tranche:2:received:2")
    )
    assert (entry.total_cents, entry.reversed_by_entry_id) == (1_200_000, None)


def test_two_reversals_of_a_receipt_at_once_exactly_one_wins(
    funding: FundingApplication,
) -> None:
    grant = wrong_receipt(funding)
    before = head(funding)
    results = race(*(lambda k=k: reverse_receipt(funding, k, grant.id) for k in ("a", "b", "c")))
    winners = [r for r in results if not isinstance(r, CoopError)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    assert topics(funding, before) == [
        "Grant.TrancheReceiptReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]


def test_a_receipt_reversal_and_a_condition_met_at_once_leave_the_ledger_consistent(
    funding: FundingApplication,
) -> None:
    """Meeting the condition out of the advance depends on the receipt. Whichever saves
    first, the other sees it (or loses the race): the condition is never met out of an
    advance that is no longer there."""
    grant = wrong_receipt(funding)
    results = race(
        lambda: reverse_receipt(funding, "fix", grant.id),
        lambda: funding.meet_grant_condition(
            key="met", actor="admin", grant_id=grant.id, tranche=2, met_on=date(2025, 3, 10)
        ),
    )
    assert any(not isinstance(r, CoopError) for r in results)
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, CoopError))
    tranche = funding.grant(grant.id).tranches[1]
    if tranche.condition_met_on is not None:
        met = funding.ledger.get_entry(
            entry_id_for_cause(f"funding:grant:{grant.id}:tranche:2:condition-met")
        )
        source = next(p.account_code for p in met.postings if p.side.value == "debit")
        # Out of the advance if the receipt stands; else against a receivable.
        assert source == ("2300" if tranche.received_on is not None else "1120")


def test_the_ledgers_refusals_name_the_commands_own_input_fields(
    funding: FundingApplication,
) -> None:
    """Review F5: one mapping at the funding boundary. The ledger refuses an entry dated
    before the books opened (`effectiveDate`) or over the ceiling (`postings[0].amount`);
    the caller sent `date`, `issueDate`, `month`: the error names those."""
    before = head(funding)
    with pytest.raises(ValidationError) as raised:
        funding.record_donation(
            key="d7",
            actor="admin",
            amount_cents=500,
            restricted=False,
            method=DonationMethod.BANK,
            donor=None,
            purpose=None,
            received_on=date(1999, 3, 15),
        )
    assert raised.value.field == "date"
    assert "books opened" in raised.value.message
    assert head(funding) == before

    grant = funding.award_grant(
        key="old-grant",
        actor="admin",
        funder="Comune",
        purpose="Housing",
        amount_cents=100_000,
        restricted=False,
        public_funder=True,
        tranches=[TrancheTerms(100_000, "report", None)],
        awarded_on=date(1999, 1, 10),
    ).result
    with pytest.raises(ValidationError) as raised:
        funding.receive_grant_tranche(
            key="old-receipt",
            actor="admin",
            grant_id=grant.id,
            tranche=1,
            received_on=date(1999, 2, 1),
        )
    assert raised.value.field == "date"

    contract(funding)  # and the invoicing profile
    big = funding.register_contract(
        key="big",
        actor="admin",
        authority="Prefettura di Brescia",
        authority_tax_code="80012345676",
        authority_office_code="UFA7KD",
        authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
        cig="BIGBIGBIG1",
        agreement_reference=None,
        daily_rate_cents=999_999,
        vat_rate_bp=500,
        vat_nature=None,
        split_payment=True,
        capacity=1_000,
        starts_on=date(2025, 1, 1),
        ends_on=None,
        pass_through_items=[],
    ).result
    for day in (1, 2):
        funding.record_presence(
            key=f"big-{day}",
            actor="admin",
            contract_id=big.id,
            day=date(2025, 1, day),
            persons_present=1_000,
        )
    written = head(funding)
    with pytest.raises(ValidationError) as raised:
        funding.invoice_contract(
            key="i-big",
            actor="admin",
            contract_id=big.id,
            month="2025-01",
            issued_on=date(2025, 4, 3),
        )
    assert raised.value.field == "month"
    assert raised.value.message.startswith("the month's invoice: ")
    assert "ceiling" in raised.value.message
    assert head(funding) == written


# -- stamp duty (imposta di bollo) ------------------------------------------------------


def invoice_one_person_day(app: FundingApplication, contract_id: UUID, month: int) -> Any:
    """One person present on the 3rd of `month` 2025, invoiced on the 1st of the next."""
    app.record_presence(
        key=f"p-{contract_id}-{month}",
        actor="admin",
        contract_id=contract_id,
        day=date(2025, month, 3),
        persons_present=1,
    )
    return app.invoice_contract(
        key=f"inv-{contract_id}-{month}",
        actor="admin",
        contract_id=contract_id,
        month=f"2025-{month:02d}",
        issued_on=date(2025, month + 1, 1),
    ).result


def test_stamp_duty_is_recorded_and_posted_only_over_the_threshold(
    funding: FundingApplication,
) -> None:
    """Default settings: over EUR 77.47 outside VAT (the pocket money, N1) owes EUR 2.00."""
    assert (funding.settings.stamp_duty_threshold_cents, funding.settings.stamp_duty_cents) == (
        7_747,
        200,
    )
    at = invoice_one_person_day(funding, contract(funding, pocket_money_cents=7_747).id, 1)
    assert at.stamp_duty_cents == 0
    with pytest.raises(NotFound):
        funding.ledger.get_entry(entry_id_for_cause(stamp_duty_cause_id(at.id)))

    over = contract(funding, pocket_money_cents=7_748, key="contract-over", cig="8A1234567C")
    owed = invoice_one_person_day(funding, over.id, 1)
    # Stored and loaded again: the duty is on the recorded invoice.
    assert funding.invoice(owed.id).stamp_duty_cents == 200
    # The cooperative bears it: the body owes the same as without it.
    assert owed.payable_cents == 2_900 + 7_748
    entry = funding.ledger.get_entry(entry_id_for_cause(stamp_duty_cause_id(owed.id)))
    assert entry.effective_date == date(2025, 2, 1)
    assert {(p.account_code, p.side.value, p.amount_cents) for p in entry.postings} == {
        ("5500", "debit", 200),
        ("2110", "credit", 200),
    }
    assert owed.number in entry.description


def test_the_stamp_duty_settings_are_read_at_issue(settings: Settings) -> None:
    """Threshold and duty come from the settings (COOP_STAMP_DUTY_*), not the code."""
    changed = settings.model_copy(
        update={"stamp_duty_threshold_cents": 3_749, "stamp_duty_cents": 250}
    )
    ledger = LedgerApplication(changed)
    ledger.ensure_chart()
    app = FundingApplication(changed, ledger)
    try:
        c = contract(app)  # 3 days x 5 persons x 2.50 = 37.50 of pocket money
        for day in range(1, 4):
            app.record_presence(
                key=f"p{day}",
                actor="admin",
                contract_id=c.id,
                day=date(2025, 3, day),
                persons_present=5,
            )
        inv = app.invoice_contract(
            key="inv", actor="admin", contract_id=c.id, month="2025-03", issued_on=date(2025, 4, 1)
        ).result
        assert inv.stamp_duty_cents == 250
        entry = ledger.get_entry(entry_id_for_cause(stamp_duty_cause_id(inv.id)))
        assert entry.total_cents == 250
    finally:
        app.close()
        ledger.close()


def test_an_invoice_recorded_before_stamp_duty_decodes_with_none(
    funding: FundingApplication,
) -> None:
    """An Issued event stored without `stamp_duty_cents` (recorded before the field
    existed) decodes as 0: the invoice and its document are as they were."""
    c = contract(funding)
    for day in range(1, 4):
        funding.record_presence(
            key=f"p{day}",
            actor="admin",
            contract_id=c.id,
            day=date(2025, 3, day),
            persons_present=5,
        )
    issued = funding.invoice_contract(
        key="inv", actor="admin", contract_id=c.id, month="2025-03", issued_on=date(2025, 4, 1)
    ).result
    (stored,) = [
        s
        for s in funding.recorder.select_events(issued.id)
        if s.topic.endswith("ContractInvoice.Issued")
    ]
    event = funding.mapper.to_domain_event(stored)
    old = object.__new__(type(event))
    state = dict(event.__dict__)
    del state["stamp_duty_cents"]
    object.__setattr__(old, "__dict__", state)
    old_stored = funding.mapper.to_stored_event(old)
    assert b"stamp_duty" not in old_stored.state

    decoded = funding.mapper.to_domain_event(old_stored)
    assert isinstance(decoded, ContractInvoice.Issued)
    assert decoded.stamp_duty_cents == 0
    invoice = decoded.mutate(None)
    assert isinstance(invoice, ContractInvoice)
    assert invoice.stamp_duty_cents == 0
    assert [f.cause_id for f in invoice.ledger_facts(funding.accounts)] == [
        f"funding:contract-invoice:{issued.id}",
        f"funding:contract-invoice:{issued.id}:split-payment",
    ]
    document = {name: getattr(decoded, name) for name in INVOICE_DOCUMENT_FIELDS}
    assert render_invoice(document) == render_invoice(
        {k: v for k, v in document.items() if k != "stamp_duty_cents"}
    )


def test_a_chart_without_the_stamp_duty_accounts_refuses_the_invoice_until_opened(
    settings: Settings,
) -> None:
    """The default chart is made only on an empty store: one made before stamp duty
    lacks 2110 and 5500. The invoice that owes the duty is refused, naming them, with
    nothing stored; once they are opened, it is issued."""
    ledger = LedgerApplication(settings)
    old_chart = ChartOfAccounts.start()
    for code, name, kind in DEFAULT_ACCOUNTS:
        if code not in ("2110", "5500"):
            old_chart.open_account(code, name, kind, max_code_length=16)
    ledger.save(old_chart)
    app = FundingApplication(settings, ledger)
    try:
        c = contract(app, pocket_money_cents=10_000)
        app.record_presence(
            key="p", actor="admin", contract_id=c.id, day=date(2025, 3, 3), persons_present=1
        )

        def invoice(key: str) -> Any:
            return app.invoice_contract(
                key=key,
                actor="admin",
                contract_id=c.id,
                month="2025-03",
                issued_on=date(2025, 4, 1),
            )

        before = head(app)
        with pytest.raises(Conflict) as raised:
            invoice("inv-1")
        assert "2110" in raised.value.message
        assert "5500" in raised.value.message
        assert "openAccount" in raised.value.message
        assert head(app) == before
        ledger.open_account(
            key="open-5500",
            actor="admin",
            code="5500",
            name="Taxes and duties: stamp duty",
            account_type=AccountType.EXPENSE,
        )
        with pytest.raises(Conflict):
            invoice("inv-2")
        ledger.open_account(
            key="open-2110",
            actor="admin",
            code="2110",
            name="Stamp duty payable",
            account_type=AccountType.LIABILITY,
        )
        issued = invoice("inv-3").result
        assert issued.number == "PA-2025-0001"  # the refusals used no number
        assert issued.stamp_duty_cents == 200
    finally:
        app.close()
        ledger.close()


def test_a_closed_stamp_duty_account_refuses_only_the_invoices_that_owe_the_duty(
    funding: FundingApplication,
) -> None:
    # Closed while the duty was not owed (COOP_STAMP_DUTY_CENTS 0), or by a release
    # that did not keep it open; owed now, it is kept open.
    with pytest.raises(AccountKeptOpen):
        funding.ledger.close_account(key="close-2110", actor="admin", code="2110")
    funding.ledger.accounts_kept_open.pop("2110")
    funding.ledger.close_account(key="close-2110-exempt", actor="admin", code="2110")
    c = contract(funding, pocket_money_cents=7_748)
    before = head(funding)
    funding.record_presence(
        key="p", actor="admin", contract_id=c.id, day=date(2025, 3, 3), persons_present=1
    )
    written = head(funding)
    with pytest.raises(Conflict) as raised:
        funding.invoice_contract(
            key="inv", actor="admin", contract_id=c.id, month="2025-03", issued_on=date(2025, 4, 1)
        )
    assert "account 2110 is closed" in raised.value.message
    assert head(funding) == written > before
    # An invoice that owes no duty never touches the account.
    funding.settings = funding.settings.model_copy(update={"stamp_duty_cents": 0})
    issued = funding.invoice_contract(
        key="inv-no-duty",
        actor="admin",
        contract_id=c.id,
        month="2025-03",
        issued_on=date(2025, 4, 1),
    ).result
    assert issued.stamp_duty_cents == 0


def donation_by(app: FundingApplication, key: str, actor: str) -> Any:
    return app.record_donation(
        key=key,
        actor=actor,
        amount_cents=2_500,
        restricted=False,
        method=DonationMethod.CASH,
        donor=None,
        purpose=None,
        received_on=date(2025, 5, 10),
    )


def test_a_device_s_retry_is_recognised_whichever_of_its_keys_sent_it(
    funding: FundingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint names a device by its key's name: a retry sent with the key that
    replaced the first one is replayed. Another device, or a person, reusing the
    idempotency key is refused. A claim stored before this release (its fingerprint
    named the key) is still recognised when the same key retries it."""
    first = donation_by(funding, "box-1", "device:front-desk#k1")
    written = head(funding)
    again = donation_by(funding, "box-1", "device:front-desk#k2")
    assert (again.replayed, again.result.id) == (True, first.result.id)
    assert head(funding) == written
    for someone_else in ("device:till-1#k1", "person:front-desk"):
        with pytest.raises(IdempotencyKeyReused):
            donation_by(funding, "box-1", someone_else)

    import services.common.idempotency as idempotency

    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(idempotency, "requester", lambda actor: actor)
        stored_before = donation_by(funding, "box-2", "device:front-desk#k1")
    written = head(funding)
    retried = donation_by(funding, "box-2", "device:front-desk#k1")
    assert (retried.replayed, retried.result.id) == (True, stored_before.result.id)
    assert head(funding) == written

"""The ledger's invariants, in memory."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import NotFound, ValidationError
from services.ledger.application import correction_for
from services.ledger.domain import (
    DEFAULT_ACCOUNTS,
    KEPT_ACCOUNTS,
    AccountClosed,
    AccountKeptByContext,
    AccountType,
    Cause,
    ChartOfAccounts,
    EntryAlreadyReversed,
    JournalEntry,
    KeptAccount,
    LedgerLimits,
    Posting,
    Side,
    UnbalancedEntry,
    check_hand_postings,
    entry_id_for_cause,
    kept_accounts_in,
)

LIMITS = LedgerLimits(
    amount_ceiling_cents=1_000_000_000,
    max_description_length=50,
    max_entry_lines=4,
    max_account_code_length=16,
)


@pytest.fixture
def chart() -> ChartOfAccounts:
    chart = ChartOfAccounts.start()
    for code, name, kind in DEFAULT_ACCOUNTS:
        chart.open_account(code, name, kind, max_code_length=16)
    return chart


def sale(
    chart: ChartOfAccounts, *postings: Posting, description: str = "Shop sale"
) -> JournalEntry:
    return JournalEntry.post(
        chart=chart,
        effective_date=date(2025, 3, 1),
        description=description,
        postings=postings,
        cause=Cause("test:1", "volunteer-1"),
        limits=LIMITS,
    )


def test_balanced_entry_records_postings_and_its_cause(chart: ChartOfAccounts) -> None:
    entry = sale(
        chart,
        Posting("1000", Side.DEBIT, 1220),
        Posting("4100", Side.CREDIT, 1000),
        Posting("2000", Side.CREDIT, 220),
    )
    assert entry.total_cents == 1220
    assert entry.cause_id == "test:1"
    assert entry.actor == "volunteer-1"
    assert entry.id == entry_id_for_cause("test:1")
    assert len(entry.pending_events) == 1


def test_unbalanced_entry_is_refused(chart: ChartOfAccounts) -> None:
    with pytest.raises(UnbalancedEntry) as error:
        sale(chart, Posting("1000", Side.DEBIT, 1220), Posting("4100", Side.CREDIT, 1000))
    assert error.value.field == "postings"
    assert "12.20" in error.value.message
    assert "10.00" in error.value.message


@pytest.mark.parametrize(
    ("postings", "field"),
    [
        (
            (Posting("9999", Side.DEBIT, 100), Posting("4100", Side.CREDIT, 100)),
            "postings[0].account",
        ),
        ((Posting("1000", Side.DEBIT, 0), Posting("4100", Side.CREDIT, 0)), "postings[0].amount"),
        ((Posting("1000", Side.DEBIT, -5), Posting("4100", Side.CREDIT, -5)), "postings[0].amount"),
        (
            (Posting("1000", Side.DEBIT, 10**9 + 1), Posting("4100", Side.CREDIT, 10**9 + 1)),
            "postings[0].amount",
        ),
        ((Posting("1000", Side.DEBIT, 100),), "postings"),
        (
            (Posting("1000", Side.DEBIT, 1),) * 3 + (Posting("4100", Side.CREDIT, 1),) * 2,
            "postings",
        ),
        (
            (Posting("bad code", Side.DEBIT, 1), Posting("4100", Side.CREDIT, 1)),
            "postings[0].account",
        ),
    ],
)
def test_invalid_postings_name_the_field(
    chart: ChartOfAccounts, postings: tuple[Posting, ...], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        sale(chart, *postings)
    assert error.value.field == field


@pytest.mark.parametrize("description", ["", "   ", "x" * 51])
def test_description_must_be_present_and_short(chart: ChartOfAccounts, description: str) -> None:
    with pytest.raises(ValidationError) as error:
        sale(
            chart,
            Posting("1000", Side.DEBIT, 1),
            Posting("4100", Side.CREDIT, 1),
            description=description,
        )
    assert error.value.field == "description"


def test_closed_account_refuses_postings(chart: ChartOfAccounts) -> None:
    chart.close_account("4100")
    with pytest.raises(AccountClosed):
        sale(chart, Posting("1000", Side.DEBIT, 1), Posting("4100", Side.CREDIT, 1))
    with pytest.raises(AccountClosed):
        chart.close_account("4100")
    with pytest.raises(NotFound):
        chart.close_account("4999")


def test_open_account_checks_code_name_and_uniqueness(chart: ChartOfAccounts) -> None:
    chart.open_account("4101", "Shop revenue: shoes", AccountType.REVENUE, max_code_length=16)
    assert chart.accounts["4101"].is_open
    with pytest.raises(ValidationError):
        chart.open_account("4102", "  ", AccountType.REVENUE, max_code_length=16)
    with pytest.raises(ValidationError):
        chart.open_account("x" * 17, "Too long", AccountType.REVENUE, max_code_length=16)
    from services.common.errors import Conflict

    with pytest.raises(Conflict):
        chart.open_account("4101", "Again", AccountType.REVENUE, max_code_length=16)


def test_reversal_mirrors_the_entry_and_happens_once(chart: ChartOfAccounts) -> None:
    entry = sale(
        chart,
        Posting("1000", Side.DEBIT, 1220),
        Posting("4100", Side.CREDIT, 1000),
        Posting("2000", Side.CREDIT, 220),
    )
    reversal = entry.reverse(
        chart=chart, effective_date=date(2025, 3, 2), description="Void", actor="a", limits=LIMITS
    )
    assert [(p.account_code, p.side, p.amount_cents) for p in reversal.postings] == [
        ("1000", Side.CREDIT, 1220),
        ("4100", Side.DEBIT, 1000),
        ("2000", Side.DEBIT, 220),
    ]
    assert reversal.reverses_entry_id == entry.id
    assert entry.reversed_by_entry_id == reversal.id
    with pytest.raises(EntryAlreadyReversed):
        entry.reverse(
            chart=chart,
            effective_date=date(2025, 3, 2),
            description="Again",
            actor="a",
            limits=LIMITS,
        )
    with pytest.raises(EntryAlreadyReversed):
        reversal.reverse(
            chart=chart,
            effective_date=date(2025, 3, 2),
            description="Undo",
            actor="a",
            limits=LIMITS,
        )


def test_reversal_cannot_predate_the_original(chart: ChartOfAccounts) -> None:
    entry = sale(chart, Posting("1000", Side.DEBIT, 1), Posting("4100", Side.CREDIT, 1))
    with pytest.raises(ValidationError) as error:
        entry.reverse(
            chart=chart, effective_date=date(2025, 2, 28), description="x", actor="a", limits=LIMITS
        )
    assert error.value.field == "effectiveDate"
    assert entry.reversed_by_entry_id is None


@pytest.mark.parametrize(
    ("cause_id", "named"),
    [
        ("hotel:charge:b1:2", "voidCharge"),
        ("funding:donation:d1", "reverseDonation"),
        ("funding:contract-invoice:i1:payment:2", "reverseContractPayment"),
        ("funding:grant:g1:tranche:1:received", "reverseGrantTrancheReceipt"),
        ("welfare:payment:x1:1", "reverseDisbursementPayment"),
        # Review fund #6: it said "post a correcting entry by hand", which breaks
        # "2400 = accrued - paid"; the accrual follows its income.
        ("welfare:accrual:76:2026-03-10", "correct that income entry"),
        ("funding:contract-invoice:i1", "no correcting command"),
    ],
)
def test_a_refused_reversal_names_the_command_that_corrects_that_entry(
    cause_id: str, named: str
) -> None:
    """It listed every correcting command for every entry, an accrual's included."""
    advice = correction_for(cause_id)
    assert named in advice
    assert advice.count("reverse") + advice.count("void") + advice.count("refund") <= 1
    if cause_id.startswith("welfare:"):
        assert "by hand" not in advice


def test_an_entry_on_a_kept_account_is_not_to_be_corrected_by_hand() -> None:
    """An entry with no correcting command on an account a context keeps (a chart
    that keeps its contract receivable, say): the advice must not send the user to a
    hand entry the ledger would refuse."""
    invoice = Posting("1110", Side.DEBIT, 100), Posting("4300", Side.CREDIT, 100)
    receivable = KeptAccount("1110", "reception contracts", "outstanding", "invoiceContract")
    kept = [account for _, account in kept_accounts_in(invoice, (receivable,))]
    advice = correction_for("funding:contract-invoice:i1", kept)
    assert "no correcting command" in advice
    assert "1110" in advice
    assert "post a correcting entry by hand" not in advice


@pytest.mark.parametrize("code", [k.code for k in KEPT_ACCOUNTS])
def test_hand_postings_to_a_kept_account_name_the_field_and_the_command(code: str) -> None:
    postings = (Posting("1010", Side.DEBIT, 100), Posting(code, Side.CREDIT, 100))
    with pytest.raises(AccountKeptByContext) as refused:
        check_hand_postings(postings, KEPT_ACCOUNTS)
    assert refused.value.field == "postings[1].account"
    kept = next(k for k in KEPT_ACCOUNTS if k.code == code)
    assert kept.use_instead in refused.value.message
    check_hand_postings(postings, ())  # a chart that keeps nothing takes it
    check_hand_postings(
        (Posting("1010", Side.DEBIT, 1), Posting("4400", Side.CREDIT, 1)), KEPT_ACCOUNTS
    )

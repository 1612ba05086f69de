"""The ledger application on real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from services.common.errors import Conflict, CoopError, IdempotencyKeyReused, ValidationError
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import (
    AccountClosed,
    AccountKeptByContext,
    AccountKeptOpen,
    AccountType,
    Cause,
    EntryAlreadyReversed,
    Posting,
    Side,
    UnbalancedEntry,
)

SALE = (
    Posting("1000", Side.DEBIT, 1220),
    Posting("4100", Side.CREDIT, 1000),
    Posting("2000", Side.CREDIT, 220),
)


def post(
    ledger: LedgerApplication, key: str, postings: tuple[Posting, ...] = SALE, **kw: Any
) -> Any:
    return ledger.post_entry(
        key=key,
        actor=kw.pop("actor", "till-1"),
        effective_date=kw.pop("effective_date", date(2025, 5, 2)),
        description=kw.pop("description", "Shop sale"),
        postings=postings,
        **kw,
    )


def head(ledger: LedgerApplication) -> int:
    return ledger.recorder.max_notification_id() or 0


def test_ensure_chart_is_idempotent(ledger: LedgerApplication) -> None:
    before = head(ledger)
    ledger.ensure_chart()
    assert head(ledger) == before
    assert ledger.chart().accounts["2100"].name.startswith("Tourist tax")


def test_same_key_same_request_returns_the_original_and_writes_nothing(
    ledger: LedgerApplication,
) -> None:
    first = post(ledger, "sale-1")
    written = head(ledger)
    again = post(ledger, "sale-1")
    assert again.replayed
    assert not first.replayed
    assert again.result.id == first.result.id
    assert head(ledger) == written


def test_same_key_different_request_is_refused(ledger: LedgerApplication) -> None:
    post(ledger, "sale-1")
    written = head(ledger)
    with pytest.raises(IdempotencyKeyReused):
        post(ledger, "sale-1", description="Another sale")
    assert head(ledger) == written


def test_one_cause_posts_once(ledger: LedgerApplication) -> None:
    first = post(ledger, "k1", cause_id="shop:sale:42")
    written = head(ledger)
    second = post(ledger, "k2", cause_id="shop:sale:42")
    assert second.result.id == first.result.id
    assert second.replayed
    assert head(ledger) == written


@pytest.mark.parametrize(
    ("postings", "error"),
    [
        ((Posting("1000", Side.DEBIT, 1220), Posting("4100", Side.CREDIT, 1000)), UnbalancedEntry),
        ((Posting("1000", Side.DEBIT, 0), Posting("4100", Side.CREDIT, 0)), ValidationError),
        ((Posting("7777", Side.DEBIT, 5), Posting("4100", Side.CREDIT, 5)), ValidationError),
    ],
)
def test_bad_entries_store_nothing(
    ledger: LedgerApplication, postings: tuple[Posting, ...], error: type[CoopError]
) -> None:
    before = head(ledger)
    with pytest.raises(error):
        post(ledger, "bad", postings)
    assert head(ledger) == before
    # The key was not consumed by the failure: a corrected request may use it.
    assert not post(ledger, "bad").replayed


def test_a_successful_retry_still_answers_after_the_state_moved_on(
    ledger: LedgerApplication,
) -> None:
    first = post(ledger, "k", (Posting("1000", Side.DEBIT, 5), Posting("4200", Side.CREDIT, 5)))
    ledger.close_account(key="close-4200", actor="admin", code="4200")
    with pytest.raises(AccountClosed):
        post(ledger, "k2", (Posting("1000", Side.DEBIT, 5), Posting("4200", Side.CREDIT, 5)))
    again = post(ledger, "k", (Posting("1000", Side.DEBIT, 5), Posting("4200", Side.CREDIT, 5)))
    assert again.replayed
    assert again.result.id == first.result.id


def test_reversal_happens_once_and_links_both_ways(ledger: LedgerApplication) -> None:
    original = post(ledger, "sale").result
    reversal = ledger.reverse_entry(
        key="void",
        actor="admin",
        entry_id=original.id,
        effective_date=date(2025, 5, 3),
        description="Void",
    ).result
    assert reversal.reverses_entry_id == original.id
    assert ledger.get_entry(original.id).reversed_by_entry_id == reversal.id
    with pytest.raises(EntryAlreadyReversed):
        ledger.reverse_entry(
            key="void-2",
            actor="admin",
            entry_id=original.id,
            effective_date=date(2025, 5, 3),
            description="Again",
        )


def test_open_and_close_accounts(ledger: LedgerApplication) -> None:
    opened = ledger.open_account(
        key="open-4101",
        actor="admin",
        code="4101",
        name="Shop revenue: shoes",
        account_type=AccountType.REVENUE,
    )
    assert opened.result.is_open
    with pytest.raises(Conflict):
        ledger.open_account(
            key="open-4101-again",
            actor="admin",
            code="4101",
            name="Dup",
            account_type=AccountType.REVENUE,
        )
    closed = ledger.close_account(key="close-4101", actor="admin", code="4101")
    assert not closed.result.is_open


@pytest.mark.parametrize(
    ("code", "account_type", "field"),
    [
        ("4190", AccountType.EXPENSE, "type"),  # would have cut the fund's base
        ("4191", AccountType.LIABILITY, "type"),
        ("7110", AccountType.REVENUE, "code"),  # would have been in no fund base
        ("1105", AccountType.REVENUE, "code"),
    ],
)
def test_class_4_holds_revenue_and_only_revenue(
    ledger: LedgerApplication, code: str, account_type: AccountType, field: str
) -> None:
    """The welfare fund owes a share of class-4 income (its policies map prefixes of
    class 4): an expense coded 4190 took what it cost off the fund's base, revenue on
    7110 was in none. The chart refuses both, and nothing is opened."""
    version = ledger.chart(read_only=True).version
    with pytest.raises(ValidationError) as refused:
        ledger.open_account(
            key=f"open-{code}", actor="admin", code=code, name="Odd", account_type=account_type
        )
    assert refused.value.field == field
    assert "class 4" in refused.value.message
    assert ledger.chart(read_only=True).version == version


@pytest.mark.parametrize("code", ["2400", "5000"])
def test_the_accounts_the_fund_accrues_to_cannot_be_closed(
    ledger: LedgerApplication, code: str
) -> None:
    # Closed, the fund's next accrual would be refused and every projection would
    # stop behind it (one admin mutation halting the whole system).
    with pytest.raises(AccountKeptOpen) as refused:
        ledger.close_account(key=f"close-{code}", actor="admin", code=code)
    assert refused.value.field == "code"
    assert "welfare fund accrues" in refused.value.message
    assert ledger.chart(read_only=True).accounts[code].is_open
    with pytest.raises(AccountKeptOpen):  # the key was not used up by the refusal
        ledger.close_account(key=f"close-{code}", actor="admin", code=code)


def _race(count: int, attempt: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = attempt(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_concurrent_reversals_exactly_one_wins(ledger: LedgerApplication) -> None:
    original = post(ledger, "sale").result
    results, errors = _race(
        8,
        lambda i: ledger.reverse_entry(
            key=f"void-{i}",
            actor="admin",
            entry_id=original.id,
            effective_date=date(2025, 5, 3),
            description="Void",
        ),
    )
    assert len(results) == 1
    assert len(errors) == 7
    assert all(isinstance(e, Conflict) for e in errors), errors
    assert ledger.get_entry(original.id).reversed_by_entry_id == results[0].result.id


def test_concurrent_retries_of_one_key_post_once(ledger: LedgerApplication) -> None:
    before = head(ledger)
    results, errors = _race(8, lambda _i: post(ledger, "double-tap"))
    assert not errors
    assert len({r.result.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert head(ledger) == before + 2  # one entry event and one key claim


def test_concurrent_account_opening_exactly_one_wins(ledger: LedgerApplication) -> None:
    results, errors = _race(
        6,
        lambda i: ledger.open_account(
            key=f"open-{i}",
            actor="admin",
            code=f"48{i}",
            name="New account",
            account_type=AccountType.REVENUE,
        ),
    )
    # All change the one chart aggregate: each either wins or gets Conflict, none is lost.
    assert len(results) >= 1
    assert all(isinstance(e, Conflict) for e in errors)
    chart = ledger.chart()
    opened = {f"48{i}" for i in range(6)} & set(chart.accounts)
    assert len(opened) == len(results)


# -- The chart is read from the cache; the save checks it (ReadGuard) --------------


@pytest.fixture
def other_process(settings: Settings) -> Iterator[LedgerApplication]:
    """A second ledger application on the same store: another process's cache."""
    app = LedgerApplication(settings)
    yield app
    app.close()


def test_an_account_closed_by_another_process_refuses_the_next_posting(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm")  # this process now holds the chart in its cache
    other_process.close_account(key="close-4100", actor="admin", code="4100")
    before = head(ledger)
    with pytest.raises(AccountClosed):
        post(ledger, "after-close")
    assert head(ledger) == before
    assert not any(e.cause_id == "manual:after-close" for e in _entries(ledger))


def test_an_account_opened_by_another_process_takes_postings_at_once(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm")
    other_process.open_account(
        key="open-4150",
        actor="admin",
        code="4150",
        name="Shop: books",
        account_type=AccountType.REVENUE,
    )
    books = (Posting("1000", Side.DEBIT, 500), Posting("4150", Side.CREDIT, 500))
    assert post(ledger, "books", books).result.postings[1].account_code == "4150"


def test_another_chart_change_does_not_refuse_a_valid_posting(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm")
    other_process.close_account(key="close-4200", actor="admin", code="4200")
    outcome = post(ledger, "still-fine")
    assert not outcome.replayed
    assert outcome.result.cause_id == "manual:still-fine"


def test_postings_racing_an_account_closing_never_land_after_it(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm")

    def attempt(i: int) -> Any:
        if i == 0:
            return other_process.close_account(key="close-race", actor="admin", code="4100")
        return post(ledger, f"race-{i}")

    _results, errors = _race(6, attempt)
    assert all(isinstance(e, AccountClosed) for e in errors), errors
    # Every entry on 4100 was recorded before the closing, in the log's order.
    closing_position = max(
        n.id
        for n in ledger.recorder.select_notifications(1, 10_000)
        if n.topic.endswith("AccountClosedEvent")
    )
    for notification in ledger.recorder.select_notifications(1, 10_000):
        if notification.topic.endswith("JournalEntry.Posted"):
            assert notification.id < closing_position


def _entries(ledger: LedgerApplication) -> list[Any]:
    return [
        ledger.mapper.to_domain_event(n)
        for n in ledger.recorder.select_notifications(1, 10_000)
        if n.topic.endswith("JournalEntry.Posted")
    ]


@pytest.mark.parametrize(
    ("postings", "field", "command"),
    [
        # Review fund #6: paying the fund "by hand" moved 2400 and not the fund.
        (
            (Posting("2400", Side.DEBIT, 5000), Posting("1010", Side.CREDIT, 5000)),
            "postings[0].account",
            "payDisbursement",
        ),
        (
            (Posting("1010", Side.DEBIT, 5000), Posting("2400", Side.CREDIT, 5000)),
            "postings[1].account",
            "correct the income",
        ),
    ],
)
def test_hand_entries_on_an_account_a_context_keeps_are_refused(
    ledger: LedgerApplication, postings: tuple[Posting, ...], field: str, command: str
) -> None:
    before = head(ledger)
    with pytest.raises(AccountKeptByContext) as refused:
        post(ledger, f"kept-{field}", postings, description="Paid by hand")
    assert refused.value.field == field
    assert command in refused.value.message
    assert head(ledger) == before
    # Contexts still post there, through prepare_entry (the fund's accruals).
    accrual = ledger.prepare_entry(
        effective_date=date(2025, 5, 2),
        description="Welfare fund accrual",
        postings=(Posting("5000", Side.DEBIT, 100), Posting("2400", Side.CREDIT, 100)),
        cause=Cause(f"welfare:accrual:{field}:2025-05-02", "system:welfare"),
    )
    ledger.save(accrual)
    assert head(ledger) > before


def test_a_hand_entry_on_a_kept_account_from_before_the_rule_may_be_reversed(
    ledger: LedgerApplication, settings: Settings
) -> None:
    """Entries by hand on 2400 stored before they were refused: reversing one puts
    the account back in step with the fund, so it stays possible."""

    class BeforeTheRule(LedgerApplication):
        kept_accounts = ()

    before_the_rule = BeforeTheRule(settings, create_table=False)
    try:
        legacy = post(
            before_the_rule,
            "legacy-2400",
            (Posting("2400", Side.DEBIT, 5000), Posting("1010", Side.CREDIT, 5000)),
        ).result
    finally:
        before_the_rule.close()
    reversal = ledger.reverse_entry(
        key="legacy-2400-reversed",
        actor="admin",
        entry_id=legacy.id,
        effective_date=date(2025, 5, 3),
        description="Paid by hand in error",
    ).result
    assert reversal.reverses_entry_id == legacy.id


def test_reversing_an_accrual_by_hand_says_to_correct_the_income_instead(
    ledger: LedgerApplication,
) -> None:
    accrual = ledger.prepare_entry(
        effective_date=date(2025, 5, 2),
        description="Welfare fund accrual",
        postings=(Posting("5000", Side.DEBIT, 100), Posting("2400", Side.CREDIT, 100)),
        cause=Cause("welfare:accrual:7:2025-05-02", "system:welfare"),
    )
    ledger.save(accrual)
    before = head(ledger)
    with pytest.raises(Conflict) as refused:
        ledger.reverse_entry(
            key="reverse-accrual",
            actor="admin",
            entry_id=accrual.id,
            effective_date=date(2025, 5, 3),
            description="Wrong share",
        )
    assert "correct that income entry" in refused.value.message
    assert "by hand" not in refused.value.message.split(";", 1)[1]
    assert head(ledger) == before


@pytest.fixture
def other_worker(settings: Settings) -> Iterator[LedgerApplication]:
    """A second ledger application on the same store: another gateway worker."""
    app = LedgerApplication(settings)
    yield app
    app.close()


@pytest.mark.parametrize("change", ["close the books", "close the account"])
def test_a_retry_after_another_worker_closed_what_it_posts_to_answers_the_original(
    ledger: LedgerApplication, other_worker: LedgerApplication, change: str
) -> None:
    """The client never got the answer to its entry; meanwhile another worker closed the
    period (or the entry's revenue account). This worker's chart is the old one, so the
    retry passes its checks and reaches the save, whose guard (on PostgreSQL, before
    the insert) re-reads the chart: the retry was told the entry was refused, and
    posted again elsewhere it would be in the books twice. It gets its entry back."""
    first = post(ledger, "k-1", effective_date=date(2025, 6, 30))
    if change == "close the books":
        other_worker.close_books(key="close", actor="admin", through=date(2025, 6, 30))
    else:
        other_worker.close_account(key="close-4100", actor="admin", code="4100")
    written = head(ledger)
    again = post(ledger, "k-1", effective_date=date(2025, 6, 30))
    assert (again.replayed, again.result.id) == (True, first.result.id)
    assert head(ledger) == written
    with pytest.raises(ValidationError):  # a new entry there is still refused
        post(ledger, "k-2", effective_date=date(2025, 6, 30))

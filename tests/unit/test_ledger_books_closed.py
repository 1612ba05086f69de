"""Closing the books: the rules of `closeBooks` and what a close refuses, on both stores.

The store fixtures (tests/conftest.py) run each test on SQLite and on PostgreSQL: the
race with a posting is decided in the store's write transaction (ReadGuard).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from services.common.errors import IdempotencyKeyReused, ValidationError
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import (
    CHART_ID,
    AccountType,
    Cause,
    JournalEntry,
    PeriodClosed,
    Posting,
    Side,
)

SALE = (
    Posting("1000", Side.DEBIT, 1220),
    Posting("4100", Side.CREDIT, 1000),
    Posting("2000", Side.CREDIT, 220),
)
CLOSED_THROUGH = date(2025, 6, 30)
FIRST_OPEN_DAY = date(2025, 7, 1)


def post(ledger: LedgerApplication, key: str, on: date) -> Any:
    return ledger.post_entry(
        key=key, actor="admin", effective_date=on, description="Shop sale", postings=SALE
    )


def close(ledger: LedgerApplication, key: str, through: date = CLOSED_THROUGH) -> Any:
    return ledger.close_books(key=key, actor="admin:anna", through=through)


def head(ledger: LedgerApplication) -> int:
    return ledger.recorder.max_notification_id() or 0


def posted(ledger: LedgerApplication) -> list[tuple[int, JournalEntry.Posted]]:
    """(log position, event) of every entry in the store."""
    out = []
    for notification in ledger.recorder.select_notifications(1, 10_000):
        event = ledger.mapper.to_domain_event(notification)
        if isinstance(event, JournalEntry.Posted):
            out.append((notification.id, event))
    return out


def entry_causes(ledger: LedgerApplication) -> set[str]:
    return {event.cause_id for _position, event in posted(ledger)}


@pytest.fixture
def other_process(settings: Settings) -> Iterator[LedgerApplication]:
    """A second ledger application on the same store: another process's chart cache."""
    app = LedgerApplication(settings)
    yield app
    app.close()


def test_an_entry_dated_in_the_closed_period_is_refused_and_nothing_is_stored(
    ledger: LedgerApplication,
) -> None:
    outcome = close(ledger, "close-h1")
    assert outcome.result.through == CLOSED_THROUGH
    assert outcome.result.closed_by == "admin:anna"
    before = head(ledger)
    with pytest.raises(PeriodClosed) as refused:
        post(ledger, "on-the-closed-day", CLOSED_THROUGH)
    assert refused.value.field == "effectiveDate"
    assert "closed through 2025-06-30" in refused.value.message
    assert "date the correction after 2025-06-30" in refused.value.message
    assert head(ledger) == before
    assert "manual:on-the-closed-day" not in entry_causes(ledger)
    # The day after the close is open.
    assert post(ledger, "day-after", FIRST_OPEN_DAY).result.effective_date == FIRST_OPEN_DAY


def test_contexts_posting_through_prepare_entry_are_refused_too(
    ledger: LedgerApplication,
) -> None:
    close(ledger, "close-h1")
    with pytest.raises(PeriodClosed) as refused:
        ledger.prepare_entry(
            effective_date=date(2025, 6, 12),
            description="Hotel booking: beverage charge 1",
            postings=SALE,
            cause=Cause("hotel:charge:b:1", "front-desk"),
        )
    assert refused.value.field == "effectiveDate"  # the context names its own input


def test_the_close_moves_forward_only(ledger: LedgerApplication) -> None:
    close(ledger, "close-h1")
    before = head(ledger)
    for key, through in (("same-day", CLOSED_THROUGH), ("earlier", date(2025, 3, 31))):
        with pytest.raises(ValidationError) as refused:
            close(ledger, key, through)
        assert refused.value.field == "through"
        assert "already closed through 2025-06-30" in refused.value.message
    assert head(ledger) == before
    assert ledger.books_closing() is not None
    close(ledger, "close-q3", date(2025, 9, 30))
    closing = ledger.books_closing()
    assert closing is not None
    assert closing.through == date(2025, 9, 30)


def test_only_a_period_that_has_ended_and_that_the_books_cover_can_be_closed(
    ledger: LedgerApplication,
) -> None:
    today = ledger.today()
    opened_on = ledger.limits.books_opened_on
    before = head(ledger)
    for key, through in (
        ("today", today),
        ("tomorrow", today + timedelta(days=1)),
        ("before-opening", opened_on - timedelta(days=1)),
    ):
        with pytest.raises(ValidationError) as refused:
            close(ledger, key, through)
        assert refused.value.field == "through", key
    assert head(ledger) == before
    assert ledger.books_closing() is None
    # Yesterday has ended; the day the books opened is in them.
    assert close(ledger, "opening-day", opened_on).result.through == opened_on
    assert close(ledger, "yesterday", today - timedelta(days=1)).result.through < today


def test_a_retry_answers_the_original_close_even_after_a_later_one(
    ledger: LedgerApplication,
) -> None:
    first = close(ledger, "close-h1")
    before = head(ledger)
    again = close(ledger, "close-h1")
    assert again.replayed
    assert again.result == first.result
    assert head(ledger) == before
    close(ledger, "close-q3", date(2025, 9, 30))
    late_retry = close(ledger, "close-h1")
    assert late_retry.replayed
    assert late_retry.result == first.result
    with pytest.raises(IdempotencyKeyReused):
        close(ledger, "close-h1", date(2025, 10, 31))


def test_an_entry_in_the_closed_period_is_reversed_in_the_open_one(
    ledger: LedgerApplication,
) -> None:
    original = post(ledger, "may-sale", date(2025, 5, 2)).result
    close(ledger, "close-h1")
    before = head(ledger)
    with pytest.raises(PeriodClosed) as refused:
        ledger.reverse_entry(
            key="void-closed",
            actor="admin",
            entry_id=original.id,
            effective_date=CLOSED_THROUGH,
            description="Void",
        )
    assert refused.value.field == "effectiveDate"
    assert "date the correction after 2025-06-30" in refused.value.message
    assert head(ledger) == before
    reversal = ledger.reverse_entry(
        key="void-open",
        actor="admin",
        entry_id=original.id,
        effective_date=FIRST_OPEN_DAY,
        description="Void",
    ).result
    assert reversal.effective_date == FIRST_OPEN_DAY
    assert reversal.reverses_entry_id == original.id
    assert ledger.get_entry(original.id).reversed_by_entry_id == reversal.id


def test_a_posting_checked_before_the_close_and_saved_after_it_is_refused(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm", FIRST_OPEN_DAY)  # this process holds the chart in its cache
    in_closed = ledger.prepare_entry(
        effective_date=CLOSED_THROUGH,
        description="Shop sale",
        postings=SALE,
        cause=Cause("shop:sale:late", "till-1"),
    )
    in_open = ledger.prepare_entry(
        effective_date=FIRST_OPEN_DAY,
        description="Shop sale",
        postings=SALE,
        cause=Cause("shop:sale:fine", "till-1"),
    )
    original = ledger.get_entry(post(ledger, "to-void", date(2025, 5, 2)).result.id)
    reversal = ledger.prepare_reversal(
        original.id, effective_date=CLOSED_THROUGH, description="Void", actor="admin"
    )
    other_process.close_books(key="close-h1", actor="admin", through=CLOSED_THROUGH)
    before = head(ledger)
    with pytest.raises(PeriodClosed):
        ledger.save(in_closed)
    with pytest.raises(PeriodClosed):
        ledger.save(*reversal)
    assert head(ledger) == before
    assert "shop:sale:late" not in entry_causes(ledger)
    assert ledger.get_entry(original.id).reversed_by_entry_id is None
    # Re-checked against the close, still valid: saved.
    ledger.save(in_open)
    assert "shop:sale:fine" in entry_causes(ledger)


def test_two_entries_saved_together_are_both_held_to_the_chart_they_were_checked_on(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    """One save, two entries: the first checked on this process's cached chart, the
    second on the chart refreshed because it names an account only another process
    has seen (opened after the books were closed there). The save held only for the
    newer chart, so the first entry landed in the closed period."""
    post(ledger, "warm", FIRST_OPEN_DAY)  # this process holds the chart in its cache
    other_process.close_books(key="close-h1", actor="admin", through=CLOSED_THROUGH)
    other_process.open_account(
        key="open-4190", actor="admin", code="4190", name="Other sales",
        account_type=AccountType.REVENUE,
    )  # fmt: skip
    in_closed = ledger.prepare_entry(
        effective_date=CLOSED_THROUGH,
        description="Shop sale",
        postings=SALE,
        cause=Cause("shop:sale:late", "till-1"),
    )
    on_the_new_account = ledger.prepare_entry(
        effective_date=FIRST_OPEN_DAY,
        description="Other sale",
        postings=(Posting("1000", Side.DEBIT, 500), Posting("4190", Side.CREDIT, 500)),
        cause=Cause("shop:sale:other", "till-1"),
    )
    before = head(ledger)
    with pytest.raises(PeriodClosed):
        ledger.save(in_closed, on_the_new_account)
    assert head(ledger) == before
    assert not {"shop:sale:late", "shop:sale:other"} & entry_causes(ledger)


def _race(count: int, attempt: Callable[[int], Any]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            attempt(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_postings_racing_a_close_land_before_it_or_not_at_all(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    post(ledger, "warm", FIRST_OPEN_DAY)

    def attempt(i: int) -> Any:
        if i == 0:
            return other_process.close_books(
                key="close-race", actor="admin", through=CLOSED_THROUGH
            )
        return post(ledger, f"race-{i}", CLOSED_THROUGH)

    errors = _race(6, attempt)
    assert all(isinstance(e, PeriodClosed) for e in errors), errors
    notifications = ledger.recorder.select_notifications(1, 10_000)
    closed_at = [n.id for n in notifications if n.topic.endswith("BooksClosed")]
    assert len(closed_at) == 1
    dated_in_closed = [
        position for position, event in posted(ledger) if event.effective_date <= CLOSED_THROUGH
    ]
    assert len(dated_in_closed) + len(errors) == 5
    assert all(position < closed_at[0] for position in dated_in_closed)


def test_the_funds_accrual_of_income_saved_before_the_close_is_not_refused(
    ledger: LedgerApplication,
) -> None:
    # The follower accrues on the income's own day; refused, it would stop every
    # read model behind it. Income dated there can no longer be posted (above).
    close(ledger, "close-h1")
    accrual = ledger.prepare_entry(
        effective_date=CLOSED_THROUGH,
        description="Welfare fund accrual on 1 income entries",
        postings=(Posting("5000", Side.DEBIT, 100), Posting("2400", Side.CREDIT, 100)),
        cause=Cause("welfare:accrual:41:2025-06-30", "system:welfare"),
    )
    ledger.save(accrual)
    assert ledger.get_entry(accrual.id).effective_date == CLOSED_THROUGH


def test_the_close_survives_a_snapshot_of_the_chart(
    ledger: LedgerApplication, other_process: LedgerApplication
) -> None:
    closing = close(ledger, "close-h1").result
    ledger.take_snapshot(CHART_ID)
    assert other_process.books_closing() == closing
    with pytest.raises(PeriodClosed):
        post(other_process, "after-snapshot", CLOSED_THROUGH)

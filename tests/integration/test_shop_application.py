"""The shop application on real stores (SQLite and PostgreSQL): concurrency, atomicity."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from gateway.runtime import Runtime
from services.common.errors import Conflict, CoopError, IdempotencyKeyReused, ValidationError
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import AccountType, JournalEntry, Side, entry_id_for_cause
from services.ledger.domain.errors import AccountKeptOpen
from services.shop.application import ShopApplication
from services.shop.domain import (
    CashDirection,
    CashReason,
    Category,
    LineInput,
    PaymentInput,
    PaymentMethod,
    RefundLineInput,
    SessionAlreadyOpen,
    SessionClosed,
    ShopPolicy,
    UnknownCategory,
    default_policy,
)
from services.shop.graphql.types import aware
from services.shop.projections.tables import SHOP_TABLES, shop_documents, shop_sessions

T = TypeVar("T")
NOW = datetime(2025, 5, 2, 9, 30, tzinfo=UTC)
COAT = [LineInput("CLOTHES", "coat", 1, 1220)]
CARD = [PaymentInput(PaymentMethod.CARD, 1220)]


@pytest.fixture
def shop(settings: Settings) -> Iterator[ShopApplication]:
    ledger = LedgerApplication(settings)
    ledger.ensure_chart()
    app = ShopApplication(settings, ledger)
    app.ensure_config()
    yield app
    app.close()
    ledger.close()


def all_at_once(count: int, fn: Callable[[int], T]) -> list[T | CoopError]:
    barrier = threading.Barrier(count)
    results: list[T | CoopError] = [None] * count  # type: ignore[list-item]

    def worker(n: int) -> None:
        barrier.wait()
        try:
            results[n] = fn(n)
        except CoopError as exc:
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def open_session(shop: ShopApplication, key: str = "open", till: str = "till-1") -> Any:
    return shop.open_session(
        key=key,
        actor="person:anna",
        till_scope=None,
        till_id=till,
        opening_float_cents=5000,
        at=NOW,
    ).result


def test_ensure_config_is_idempotent_and_opens_the_category_accounts(
    shop: ShopApplication,
) -> None:
    head = shop.recorder.max_notification_id()
    shop.ensure_config()
    assert shop.recorder.max_notification_id() == head
    chart = shop.ledger.chart()
    for code in ("4110", "4120", "4130", "4140", "4150"):
        assert chart.accounts[code].account_type.value == "revenue"


def test_concurrent_opens_of_one_till_exactly_one_wins(shop: ShopApplication) -> None:
    results = all_at_once(4, lambda n: open_session(shop, key=f"open-{n}"))
    winners = [r for r in results if not isinstance(r, CoopError)]
    assert len(winners) == 1
    # Losers either saw the open session or lost the race on the till's version.
    assert all(isinstance(r, SessionAlreadyOpen | Conflict) for r in results if r not in winners)


def test_concurrent_rings_on_one_session_never_share_or_skip_a_number(
    shop: ShopApplication,
) -> None:
    session = open_session(shop)

    def ring_until_it_wins(n: int) -> int:
        for _ in range(100):
            try:
                sale = shop.ring_sale(
                    key=f"sale-{n}",
                    actor="person:anna",
                    till_scope=None,
                    session_id=session.id,
                    lines=COAT,
                    payments=CARD,
                    at=NOW,
                ).result
            except Conflict:
                continue
            return sale.receipt_number
        raise AssertionError("never won")

    won = [r for r in all_at_once(6, ring_until_it_wins) if isinstance(r, int)]
    assert sorted(won) == list(range(1, 7))
    # Each sale's entry was saved with it: one entry per sale, no more.
    for n in range(6):
        sale = shop.ring_sale(
            key=f"sale-{n}",
            actor="person:anna",
            till_scope=None,
            session_id=session.id,
            lines=COAT,
            payments=CARD,
            at=NOW,
        )
        assert sale.replayed
        shop.ledger.get_entry(entry_id_for_cause(f"shop:sale:{sale.result.id}"))
    assert shop.get_session(session.id).card_sales_cents == 6 * 1220


def test_a_retry_after_the_close_still_answers_with_the_original_sale(
    shop: ShopApplication,
) -> None:
    session = open_session(shop)
    first = shop.ring_sale(
        key="s",
        actor="person:anna",
        till_scope=None,
        session_id=session.id,
        lines=COAT,
        payments=CARD,
        at=NOW,
    )
    shop.close_session(
        key="z",
        actor="person:anna",
        till_scope=None,
        session_id=session.id,
        counted_cash_cents=5000,
        terminal_card_cents=1220,
        at=NOW,
    )
    head = shop.recorder.max_notification_id()
    again = shop.ring_sale(
        key="s",
        actor="person:anna",
        till_scope=None,
        session_id=session.id,
        lines=COAT,
        payments=CARD,
        at=NOW,
    )
    assert again.replayed
    assert again.result.id == first.result.id
    assert shop.recorder.max_notification_id() == head


def test_the_shop_read_models_rebuild_to_the_same_rows(runtime: Runtime) -> None:
    shop = runtime.shop
    session = open_session(shop)
    for n in range(5):
        shop.ring_sale(
            key=f"s{n}",
            actor="person:anna",
            till_scope=None,
            session_id=session.id,
            lines=[LineInput("SHOES", "boots", 2, 750), *COAT],
            payments=[PaymentInput(PaymentMethod.CASH, 5000)],
            at=NOW,
        )
    shop.refund_sale(
        key="r",
        actor="person:anna",
        till_scope=None,
        sale_id=shop.ring_sale(
            key="s0",
            actor="person:anna",
            till_scope=None,
            session_id=session.id,
            lines=[LineInput("SHOES", "boots", 2, 750), *COAT],
            payments=[PaymentInput(PaymentMethod.CASH, 5000)],
            at=NOW,
        ).result.id,
        session_id=None,
        lines=[RefundLineInput(1, 1)],
        method=None,
        at=NOW,
    )
    shop.move_cash(
        key="m",
        actor="person:anna",
        till_scope=None,
        session_id=session.id,
        direction=CashDirection.OUT,
        amount_cents=300,
        reason="SUPPLIES",
        note="",
        at=NOW,
    )
    shop.close_session(
        key="z",
        actor="person:anna",
        till_scope=None,
        session_id=session.id,
        counted_cash_cents=0,
        terminal_card_cents=None,
        at=NOW,
    )
    shop.record_intake(
        key="i",
        actor="person:anna",
        received_on=NOW.date(),
        category="SHOES",
        bags=1,
        items=9,
        at=NOW,
    )
    runtime.projector.run_until_caught_up()

    def rows() -> dict[str, list[Any]]:
        with runtime.sync_engine.connect() as conn:
            return {
                table.name: sorted(
                    (tuple(str(v) for v in row) for row in conn.execute(select(table))),
                )
                for table in SHOP_TABLES
            }

    before = rows()
    assert len(before["shop_documents"]) == 6
    assert len(before["shop_sessions"]) == 1
    runtime.projector.rebuild(["shop"])
    assert rows() == before


def ring(shop: ShopApplication, key: str, session_id: Any, at: datetime = NOW) -> Any:
    return shop.ring_sale(
        key=key,
        actor="person:anna",
        till_scope=None,
        session_id=session_id,
        lines=COAT,
        payments=CARD,
        at=at,
    ).result


def refund_whole(
    shop: ShopApplication, key: str, sale_id: Any, session_id: Any, at: datetime = NOW
) -> JournalEntry:
    """Refund the whole sale at the session's till; the refund's journal entry."""
    refund = shop.refund_sale(
        key=key,
        actor="person:anna",
        till_scope=None,
        sale_id=sale_id,
        session_id=session_id,
        lines=None,
        method=None,
        at=at,
    ).result
    return shop.ledger.get_entry(entry_id_for_cause(f"shop:refund:{refund['refund_id']}"))


def test_a_session_moved_on_by_another_process_is_decided_on_again(
    shop: ShopApplication, settings: Settings
) -> None:
    """A sale starts from the session this process cached (no query); when another
    process rang on it or closed it meanwhile, the sale is decided again on the session
    as stored: numbers stay gapless and a closed session takes no sale."""
    other = ShopApplication(settings, shop.ledger)
    try:
        session = open_session(shop)
        assert ring(shop, "here-1", session.id).receipt_number == 1  # cached here
        assert ring(other, "there-1", session.id).receipt_number == 2
        assert ring(shop, "here-2", session.id).receipt_number == 3  # not a Conflict
        assert ring(shop, "here-3", session.id).receipt_number == 4
        other.close_session(
            key="close",
            actor="person:anna",
            till_scope=None,
            session_id=session.id,
            counted_cash_cents=5000,
            terminal_card_cents=4 * 1220,
            at=NOW,
        )
        before = shop.recorder.max_notification_id()
        with pytest.raises(SessionClosed):
            ring(shop, "here-after-close", session.id)
        assert shop.recorder.max_notification_id() == before
        assert shop.get_session(session.id).card_sales_cents == 4 * 1220
    finally:
        other.close()


def test_a_policy_changed_by_another_process_prices_the_next_sale(
    shop: ShopApplication, settings: Settings
) -> None:
    """Sales read the shop's policy from this process's cache (no query); a change
    another process made is still the one the next sale is rung with, never the cached
    rates and never a Conflict for the volunteer at the till."""
    other = ShopApplication(settings, shop.ledger)
    try:
        session = open_session(shop)
        assert ring(shop, "at-22", session.id).vat_cents == 220  # 12.20 at 22%: cached here
        reduced = replace(
            default_policy(),
            effective_from=NOW.date(),
            categories=tuple(replace(c, vat_rate_bp=1000) for c in default_policy().categories),
        )
        other.set_policy(key="vat-10", actor="person:anna", policy=reduced, today=NOW.date())
        before = shop.recorder.max_notification_id() or 0
        sale = ring(shop, "at-10", session.id)
        assert sale.vat_cents == 111  # 12.20 at 10%, rounded half up
        # One sale written: the stale decision was dropped, not saved as well.
        assert shop.get_session(session.id).card_sales_cents == 2 * 1220
        assert (shop.recorder.max_notification_id() or 0) > before
    finally:
        other.close()


def test_a_category_added_by_another_worker_is_sold_on_a_worker_that_cached_the_policy(
    shop: ShopApplication, settings: Settings
) -> None:
    """Review rush #1: a worker whose cached configuration predates a `setShopPolicy`
    adding a category must sell in it (not a ValidationError "unknown category"), on
    the first try and every one after; what the current policy refuses stays refused."""
    other_ledger = LedgerApplication(settings)
    other = ShopApplication(settings, other_ledger)
    try:
        session = open_session(shop)
        assert ring(shop, "books-cached", session.id).receipt_number == 1  # cached here
        other_ledger.open_account(
            key="books-account",
            actor="person:anna",
            code="4160",
            name="Shop revenue: books",
            account_type=AccountType.REVENUE,
        )
        current = default_policy()
        books = Category("BOOKS", "Books", 2200, "4160", current.categories[0].vat_account)
        other.set_policy(
            key="books-policy",
            actor="person:anna",
            policy=replace(
                current, effective_from=NOW.date(), categories=(*current.categories, books)
            ),
            today=NOW.date(),
        )

        def ring_books(key: str, category: str = "BOOKS") -> Any:
            return shop.ring_sale(
                key=key,
                actor="person:anna",
                till_scope=None,
                session_id=session.id,
                lines=[LineInput(category, "novel", 1, 610)],
                payments=[PaymentInput(PaymentMethod.CASH, 610)],
                at=NOW,
            ).result

        sales = [ring_books(f"books-{n}") for n in range(3)]
        assert [s.receipt_number for s in sales] == [2, 3, 4]
        entry = shop.ledger.get_entry(entry_id_for_cause(f"shop:sale:{sales[0].id}"))
        assert {p.account_code for p in entry.postings} == {"1000", "4160", "2000"}
        # A category the current policy does not have is still refused, nothing written.
        before = shop.recorder.max_notification_id()
        with pytest.raises(UnknownCategory):
            ring_books("comics", category="COMICS")
        assert shop.recorder.max_notification_id() == before
    finally:
        other.close()
        other_ledger.close()


def test_a_refund_on_a_worker_that_cached_a_moved_card_account_is_decided_again(
    shop: ShopApplication, settings: Settings
) -> None:
    """Refunds read the cached configuration too: when another worker moved the card
    account (and closed the old one), the stale policy's posting to the closed account
    is refused inside the decision; the refund is decided again on the current policy."""
    other_ledger = LedgerApplication(settings)
    other = ShopApplication(settings, other_ledger)
    try:
        session = open_session(shop)
        sale = ring(shop, "card-sale", session.id)  # caches the policy (card: 1020)
        other_ledger.open_account(
            key="new-card-account",
            actor="person:anna",
            code="1030",
            name="Card clearing, new acquirer",
            account_type=AccountType.ASSET,
        )
        other.set_policy(
            key="new-card-policy",
            actor="person:anna",
            policy=replace(default_policy(), effective_from=NOW.date(), card_account="1030"),
            today=NOW.date(),
        )
        other_ledger.close_account(key="close-1020", actor="person:anna", code="1020")
        shop.ledger.chart()  # this worker's chart is current; its shop policy is not
        entry = refund_whole(shop, "card-refund", sale.id, session.id, at=NOW)
        assert {p.account_code for p in entry.postings if p.side is Side.CREDIT} == {"1030"}
    finally:
        other.close()
        other_ledger.close()


def move_clothes_to_a_new_account(shop: ShopApplication, effective_from: date) -> None:
    """Open 4115 and post CLOTHES there from `effective_from` (set today, NOW's day):
    how an admin retires a category's account (docs/ledger.md)."""
    moved = clothes_on_a_new_account(shop, "4115", effective_from)
    shop.set_policy(key="move-clothes", actor="person:anna", policy=moved, today=NOW.date())


def clothes_on_a_new_account(shop: ShopApplication, code: str, effective_from: date) -> ShopPolicy:
    """The configuration in force today, with CLOTHES posting from `effective_from` to
    `code`, opened for it now (the version is not set)."""
    shop.ledger.open_account(
        key=f"open-{code}",
        actor="person:anna",
        code=code,
        name="Shop sales, clothing (new)",
        account_type=AccountType.REVENUE,
    )
    current = shop.policy_on(NOW.date())
    return replace(
        current,
        effective_from=effective_from,
        categories=tuple(
            replace(c, revenue_account=code) if c.code == "CLOTHES" else c
            for c in current.categories
        ),
        _by_code={},
    )


def test_a_sale_whose_category_account_was_closed_since_can_still_be_refunded(
    shop: ShopApplication,
) -> None:
    """docs/ledger.md: to retire a category's account, move the category in the policy,
    then close the account. A coat sold before that comes back the next day: the refund
    undoes the sale's own revenue and VAT postings, into the closed account as a
    reversal would; refused, it could never be refunded at all."""
    session = open_session(shop)
    sale = ring(shop, "coat", session.id)
    tomorrow = NOW + timedelta(days=1)
    move_clothes_to_a_new_account(shop, tomorrow.date())
    shop.ledger.close_account(key="close-4110", actor="person:anna", code="4110")

    entry = refund_whole(shop, "coat-back", sale.id, session.id, at=tomorrow)
    debited = {p.account_code: p.amount_cents for p in entry.postings if p.side is Side.DEBIT}
    assert debited == {"4110": 1000, "2000": 220}  # the sale's own accounts, closed or not
    # A new sale goes to the new account, not to the closed one.
    later = ring(shop, "another-coat", session.id, at=tomorrow)
    later_entry = shop.ledger.get_entry(entry_id_for_cause(f"shop:sale:{later.id}"))
    assert "4115" in {p.account_code for p in later_entry.postings}
    assert "4110" not in {p.account_code for p in later_entry.postings}


def test_an_account_the_tills_post_to_cannot_be_closed_under_them(
    shop: ShopApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing an account is for good: closed while the configuration in force (or a
    later one) posts there, every clothes sale would be refused at the till. Refused,
    saying why, until a configuration naming another account is in force."""
    monkeypatch.setattr(shop, "today", lambda: NOW.date())
    with pytest.raises(AccountKeptOpen) as refused:
        shop.ledger.close_account(key="close-4110", actor="person:anna", code="4110")
    assert refused.value.field == "code"
    assert "the shop's configuration from 2000-01-01 posts to it" in refused.value.message

    tomorrow = NOW.date() + timedelta(days=1)
    move_clothes_to_a_new_account(shop, tomorrow)
    with pytest.raises(AccountKeptOpen):  # today's configuration still posts there
        shop.ledger.close_account(key="close-4110-again", actor="person:anna", code="4110")
    with pytest.raises(AccountKeptOpen):  # tomorrow's will
        shop.ledger.close_account(key="close-4115", actor="person:anna", code="4115")

    monkeypatch.setattr(shop, "today", lambda: tomorrow)
    closed = shop.ledger.close_account(key="close-4110-later", actor="person:anna", code="4110")
    assert not closed.result.is_open


def test_a_cash_reason_may_not_post_to_an_account_another_context_keeps(
    shop: ShopApplication,
) -> None:
    """Review fund #6: a hand entry on 2400 is refused by the ledger; a cash movement
    ("paid the welfare fund from the drawer") would be one in all but name."""
    current = default_policy()
    to_the_fund = CashReason("FUND", "Paid to the welfare fund", "2400", (CashDirection.OUT,))
    before = shop.recorder.max_notification_id()
    with pytest.raises(ValidationError) as refused:
        shop.set_policy(
            key="fund-reason",
            actor="person:anna",
            policy=replace(
                current,
                effective_from=NOW.date(),
                cash_reasons=(*current.cash_reasons, to_the_fund),
            ),
            today=NOW.date(),
        )
    assert refused.value.field == f"cashReasons[{len(current.cash_reasons)}].account"
    assert "welfare fund" in refused.value.message
    assert shop.recorder.max_notification_id() == before


def test_a_sale_decided_before_midnight_and_saved_after_another_is_numbered_after_it(
    shop: ShopApplication, settings: Settings
) -> None:
    """Two devices on one session around midnight (Europe/Rome): this process decided
    a sale at 23:59:59.9 on its cached session while another saved one at 00:00:00.1,
    which began the 3rd's numbering. Decided again on the stored session, the late sale
    is issued on the 3rd as receipt 2: a second receipt 1 for the 2nd would break the
    till's fiscal numbering (and the receipts table's uniqueness)."""
    other = ShopApplication(settings, shop.ledger)
    try:
        session = open_session(shop)
        evening = ring(shop, "evening", session.id, datetime(2025, 5, 2, 19, 0, tzinfo=UTC))
        ring(other, "after", session.id, datetime(2025, 5, 2, 22, 0, 0, 100_000, tzinfo=UTC))
        late = ring(shop, "late", session.id, datetime(2025, 5, 2, 21, 59, 59, 900_000, tzinfo=UTC))
        issued = [
            (sale.business_date.isoformat(), sale.receipt_number)
            for sale in (evening, shop.get_sale(late.id))
        ]
        assert issued == [("2025-05-02", 1), ("2025-05-03", 2)]
        entry = shop.ledger.get_entry(entry_id_for_cause(f"shop:sale:{late.id}"))
        assert entry.effective_date.isoformat() == "2025-05-03"
    finally:
        other.close()


def test_a_close_sent_with_its_count_sheet_before_the_sheet_was_kept_is_answered_on_retry(
    shop: ShopApplication,
) -> None:
    """The release before the count sheet was kept checked it at the edge and closed
    by the total alone, so its claim is fingerprinted without the sheet: the till's
    retry of that very request (sheet and all) is answered, not IdempotencyKeyReused."""
    session = open_session(shop)

    def close(counted_cents: int, denominations: list[tuple[int, int]] | None) -> Any:
        return shop.close_session(
            key="z", actor="person:anna", till_scope=None, session_id=session.id,
            counted_cash_cents=counted_cents, terminal_card_cents=None, at=NOW,
            denominations=denominations,
        )  # fmt: skip

    first = close(5000, None)  # as the older release recorded it
    head = shop.recorder.max_notification_id()
    retried = close(5000, [(2000, 2), (1000, 1)])
    assert retried.replayed
    assert retried.result.id == first.result.id
    assert shop.recorder.max_notification_id() == head
    # Another count under the same key is still another request.
    with pytest.raises(IdempotencyKeyReused):
        close(4000, [(2000, 2)])


def test_a_session_opened_on_a_local_clock_keeps_its_instant(runtime: Runtime) -> None:
    """Review dates #2: the read model stored 09:00+02:00 as 09:00 and SQLite dropped
    the offset, so openedAt (and every document's time) answered 09:00Z, two hours
    late, live and after a rebuild. Stored in UTC now, on both stores."""
    at = datetime(2025, 5, 2, 9, 0, tzinfo=runtime.settings.zone)  # 07:00 UTC
    session = runtime.shop.open_session(
        key="open",
        actor="person:anna",
        till_scope=None,
        till_id="till-1",
        opening_float_cents=5000,
        at=at,
    ).result
    ring(runtime.shop, "s1", session.id, at=at)
    runtime.projector.run_until_caught_up()

    def stored() -> tuple[datetime, datetime]:
        with runtime.sync_engine.connect() as conn:
            opened = conn.execute(select(shop_sessions.c.opened_at)).scalar_one()
            rung = conn.execute(select(shop_documents.c.recorded_at)).scalar_one()
        return aware(opened), aware(rung)  # as CashSession.openedAt and Sale answer them

    assert stored() == (at, at)
    runtime.projector.rebuild(workers=0)
    assert stored() == (at, at)


@pytest.fixture
def other_shop(settings: Settings, shop: ShopApplication) -> Iterator[ShopApplication]:
    """A second shop (and ledger) on the same store: another gateway process."""
    ledger = LedgerApplication(settings)
    app = ShopApplication(settings, ledger)
    yield app
    app.close()
    ledger.close()


def test_a_close_decided_before_a_version_naming_the_account_is_not_saved_after_it(
    shop: ShopApplication, other_shop: ShopApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write skew: the close read the configurations before another process saved one
    posting to the account, then saved the close. Every sale at that version's days
    would have been refused for good. The close's save sees the version and refuses."""
    monkeypatch.setattr(shop, "today", lambda: NOW.date())
    monkeypatch.setattr(other_shop, "today", lambda: NOW.date())
    policy = clothes_on_a_new_account(shop, "4116", NOW.date() + timedelta(days=1))
    [read_configuration] = shop.ledger._accounts_configured

    def configuration_then_the_other_process() -> Any:
        read = read_configuration()  # every call: the check, and its recheck at the save
        other_shop.set_policy(key="to-4116", actor="person:bea", policy=policy, today=NOW.date())
        return read

    monkeypatch.setattr(shop.ledger, "_accounts_configured", [configuration_then_the_other_process])
    with pytest.raises(AccountKeptOpen) as refused:
        shop.ledger.close_account(key="close-4116", actor="person:anna", code="4116")
    assert "the shop's configuration from" in refused.value.message
    assert shop.ledger.chart().accounts["4116"].is_open
    assert clothes_account(shop, policy.effective_from) == "4116"


def test_a_version_decided_before_its_account_was_closed_is_not_saved_after_it(
    shop: ShopApplication, other_shop: ShopApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way round: the version checked its accounts open, another process
    closed one, then the version was saved naming a closed account."""
    monkeypatch.setattr(shop, "today", lambda: NOW.date())
    policy = clothes_on_a_new_account(shop, "4116", NOW.date() + timedelta(days=1))
    check_accounts = shop._check_accounts

    def accounts_then_the_other_process(checked: ShopPolicy, chart: Any) -> None:
        check_accounts(checked, chart)
        if other_shop.ledger.chart().accounts["4116"].is_open:
            other_shop.ledger.close_account(key="close-4116", actor="person:bea", code="4116")

    monkeypatch.setattr(shop, "_check_accounts", accounts_then_the_other_process)
    with pytest.raises(ValidationError) as refused:
        shop.set_policy(key="to-4116", actor="person:anna", policy=policy, today=NOW.date())
    assert "'4116'" in refused.value.message
    assert clothes_account(shop, policy.effective_from) == "4110"


def clothes_account(shop: ShopApplication, day: date) -> str:
    [account] = [c.revenue_account for c in shop.policy_on(day).categories if c.code == "CLOTHES"]
    return account

"""Closing the books through GraphQL over HTTP, on SQLite and PostgreSQL: the admin
closes, every context's back-dated posting is refused with a ValidationError naming
its own input, and a closed period is corrected in the open one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.settings import Settings
from services.ledger.domain import WELFARE_FUND_PAYABLE_ACCOUNT, Posting, Side
from services.welfare_fund.domain import Stream
from tests.e2e.conftest import GraphQLClient, serving
from tests.e2e.hotel_helpers import (
    BOOKING_FIELDS,
    CHECK_IN,
    NUMBERED_CHARGE,
    VOID,
    book,
    mutation,
    run,
)
from tests.e2e.test_graphql_funding import award, grant_step, reverse_donation

CLOSE_BOOKS = """
mutation Close($input: CloseBooksInput!) {
  closeBooks(input: $input) {
    __typename
    ... on BooksClosing { through closedBy closedAt }
    ... on ValidationError { field message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
  }
}
"""
BOOKS_CLOSING = "query { booksClosing { through closedBy closedAt } }"
ACCOUNT_BALANCE = """
query Balance($code: String!, $asOf: DateTime) {
  accountBalance(code: $code, asOf: $asOf) { balance }
}
"""
POST = """
mutation Post($input: PostJournalEntryInput!) {
  postJournalEntry(input: $input) {
    __typename
    ... on JournalEntry { id effectiveDate }
    ... on ValidationError { field message }
  }
}
"""
REVERSE = """
mutation Reverse($input: ReverseJournalEntryInput!) {
  reverseJournalEntry(input: $input) {
    __typename
    ... on JournalEntry { id effectiveDate reversesEntryId }
    ... on ValidationError { field message }
    ... on Conflict { message }
  }
}
"""
RECORD_DONATION = """
mutation Donate($input: RecordDonationInput!) {
  recordDonation(input: $input) {
    __typename
    ... on ValidationError { field message }
  }
}
"""
CHARGE = mutation("postCharge", "PostChargeInput", BOOKING_FIELDS)


async def close_books(client: GraphQLClient, key: str, through: str) -> dict[str, Any]:
    result: dict[str, Any] = (
        await client.data(CLOSE_BOOKS, {"input": {"idempotencyKey": key, "through": through}})
    )["closeBooks"]
    return result


async def test_the_admin_closes_the_books_and_auditors_see_the_close(
    client: GraphQLClient, app_client: GraphQLClient
) -> None:
    auditor = app_client.as_role(Role.AUDITOR)
    assert (await auditor.data(BOOKS_CLOSING))["booksClosing"] is None

    closed = await close_books(client, "close-2025-h1", "2025-06-30")
    assert closed["__typename"] == "BooksClosing", closed
    assert closed["through"] == "2025-06-30"
    assert closed["closedBy"]
    assert (await auditor.data(BOOKS_CLOSING))["booksClosing"] == {
        k: closed[k] for k in ("through", "closedBy", "closedAt")
    }

    head = client.head()
    assert await close_books(client, "close-2025-h1", "2025-06-30") == closed  # a retry
    backwards = await close_books(client, "close-again", "2025-03-31")
    assert backwards["__typename"] == "ValidationError"
    assert backwards["field"] == "through"
    assert "already closed through 2025-06-30" in backwards["message"]
    not_ended = await close_books(client, "close-future", "2999-12-31")
    assert (not_ended["__typename"], not_ended["field"]) == ("ValidationError", "through")
    assert client.head() == head

    auditor_closing = await auditor.execute(
        CLOSE_BOOKS, {"input": {"idempotencyKey": "auditor", "through": "2025-09-30"}}
    )
    assert {e["extensions"]["code"] for e in auditor_closing["errors"]} == {"FORBIDDEN"}
    assert client.head() == head


async def test_a_back_dated_hotel_charge_in_the_closed_period_is_refused(
    client: GraphQLClient,
) -> None:
    booking = await book(client)  # booked 2025-06-01, stay 2025-07-01 to 07-04
    booking_id = booking["id"]
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "checkIn",
    )
    assert checked_in["__typename"] == "Booking"
    minibar = {
        "bookingId": booking_id,
        "kind": "BEVERAGE",
        "description": "Minibar",
        "amount": "35.00",
    }
    first = await run(
        client,
        NUMBERED_CHARGE,
        {**minibar, "idempotencyKey": "c1", "businessDate": "2025-07-01"},
        "postCharge",
    )
    assert first["__typename"] == "Booking", first
    assert (await close_books(client, "close", "2025-07-02"))["__typename"] == "BooksClosing"

    head = client.head()
    refused = await run(
        client,
        CHARGE,
        {**minibar, "idempotencyKey": "c2", "businessDate": "2025-07-02"},
        "postCharge",
    )
    assert refused["__typename"] == "ValidationError", refused
    assert refused["field"] == "businessDate"
    assert "closed through 2025-07-02" in refused["message"]
    assert "date the correction after 2025-07-02" in refused["message"]
    assert client.head() == head  # neither the folio line nor the entry

    accepted = await run(
        client,
        CHARGE,
        {**minibar, "idempotencyKey": "c3", "businessDate": "2025-07-03"},
        "postCharge",
    )
    assert accepted["__typename"] == "Booking", accepted
    assert len(accepted["folio"]["lines"]) == len(first["folio"]["lines"]) + 1

    # The charge of 07-01 (closed) is voided in the open period: its reversal is dated
    # on the void's day.
    void = {"bookingId": booking_id, "chargeNumber": 1, "reason": "Wrong room"}
    head = client.head()
    in_closed = await run(
        client, VOID, {**void, "idempotencyKey": "v1", "businessDate": "2025-07-02"}, "voidCharge"
    )
    # The field named is the input the front desk sent, as for the entries it posts.
    assert (in_closed["__typename"], in_closed["field"]) == ("ValidationError", "businessDate")
    assert "date the correction after 2025-07-02" in in_closed["message"]
    assert client.head() == head
    voided = await run(
        client, VOID, {**void, "idempotencyKey": "v2", "businessDate": "2025-07-03"}, "voidCharge"
    )
    assert voided["__typename"] == "Booking", voided
    assert voided["folio"]["lines"][-1]["amount"] == "-35.00"


async def test_a_hand_entry_of_the_closed_period_is_reversed_in_the_open_one(
    client: GraphQLClient,
) -> None:
    sale = {
        "idempotencyKey": "sale-may",
        "effectiveDate": "2025-05-02",
        "description": "Shop sale",
        "postings": [
            {"account": "1000", "side": "DEBIT", "amount": "12.20"},
            {"account": "4100", "side": "CREDIT", "amount": "10.00"},
            {"account": "2000", "side": "CREDIT", "amount": "2.20"},
        ],
    }
    posted = (await client.data(POST, {"input": sale}))["postJournalEntry"]
    assert posted["__typename"] == "JournalEntry"
    assert (await close_books(client, "close", "2025-06-30"))["__typename"] == "BooksClosing"

    head = client.head()
    late = (await client.data(POST, {"input": {**sale, "idempotencyKey": "sale-june"}}))[
        "postJournalEntry"
    ]
    assert late["__typename"] == "ValidationError"
    assert late["field"] == "effectiveDate"
    donation = (
        await client.data(
            RECORD_DONATION,
            {"input": {"idempotencyKey": "gift", "amount": "50.00", "date": "2025-06-15"}},
        )
    )["recordDonation"]
    assert donation == {
        "__typename": "ValidationError",
        "field": "date",
        "message": late["message"].replace("2025-05-02", "2025-06-15"),
    }
    reverse = {"entryId": posted["id"], "description": "Wrong till"}
    in_closed = (
        await client.data(
            REVERSE,
            {"input": {**reverse, "idempotencyKey": "r1", "effectiveDate": "2025-06-30"}},
        )
    )["reverseJournalEntry"]
    assert in_closed["__typename"] == "ValidationError"
    assert in_closed["field"] == "effectiveDate"
    assert "date the correction after 2025-06-30" in in_closed["message"]
    assert client.head() == head

    reversal = (
        await client.data(
            REVERSE,
            {"input": {**reverse, "idempotencyKey": "r2", "effectiveDate": "2025-07-01"}},
        )
    )["reverseJournalEntry"]
    assert reversal["__typename"] == "JournalEntry", reversal
    assert reversal["effectiveDate"] == "2025-07-01"
    assert reversal["reversesEntryId"] == posted["id"]


@asynccontextmanager
async def projector_stopped(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """The app with its projector down (started again with `start_projector`), caught
    up on a welfare policy giving the fund 10% of shop sales from 2025."""
    behind = settings.model_copy(
        update={"run_projector_in_process": False, "read_your_writes_timeout_s": 0.3}
    )
    async with serving(behind) as anon:
        runtime = anon.runtime
        runtime.welfare.set_policy(
            key="policy",
            actor="t",
            effective_from=date(2025, 1, 1),
            shares=[(Stream.SHOP, 100_000)],
        )
        await runtime.run_sync(runtime.projector.run_until_caught_up)
        yield anon


def shop_sale(runtime: Runtime, day: date) -> None:
    """A 200.00 till sale posted on `day`: income the fund accrues 20.00 of."""
    runtime.ledger.post_entry(
        key=f"till-sale-{day.isoformat()}",
        actor="till",
        effective_date=day,
        description="Shop sale",
        postings=[Posting("1000", Side.DEBIT, 20_000), Posting("4100", Side.CREDIT, 20_000)],
    )


async def test_the_books_do_not_close_while_income_is_not_yet_accrued(
    settings: Settings,
) -> None:
    """A projector that is down at close time: income saved in the period is not yet
    accrued to the welfare fund, and its accrual (dated on the income's day) would
    change the closed period when the projector came back. Refused, nothing stored;
    once it has caught up the close goes through with the accrual inside the period."""
    async with projector_stopped(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        runtime = anon.runtime
        shop_sale(runtime, date(2025, 3, 2))
        head = anon.head()

        refused = await close_books(admin, "close-q1", "2025-03-31")
        assert refused["__typename"] == "Conflict", refused
        assert "nothing was closed" in refused["message"]
        assert "not yet accrued to the welfare fund" in refused["message"]
        assert anon.head() == head
        assert runtime.ledger.chart().closed_through is None

        runtime.start_projector()  # back up
        closed = await close_books(admin, "close-q1", "2025-03-31")
        assert closed["__typename"] == "BooksClosing", closed
        payable = await admin.data(
            ACCOUNT_BALANCE,
            {"code": WELFARE_FUND_PAYABLE_ACCOUNT, "asOf": "2025-03-31T23:00:00+02:00"},
        )
        assert payable["accountBalance"]["balance"] == "20.00"  # 10% of the sale, in Q1


async def test_a_retried_close_is_never_told_nothing_was_closed(settings: Settings) -> None:
    """The admin's close is saved, but the projector is down, so its answer is a
    PROJECTION_LAG ("saved ... retry"). A sale is saved meanwhile and waits for its
    accrual. The retry must not answer "nothing was closed" (the books are closed): it
    says again that the close was saved, and once the projector is back it answers
    the closing. A new close is still refused while the fund is behind."""
    async with projector_stopped(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        runtime = anon.runtime
        close_q1 = {"input": {"idempotencyKey": "close-q1", "through": "2025-03-31"}}
        lagging = await admin.execute(CLOSE_BOOKS, close_q1)
        assert lagging["errors"][0]["extensions"]["code"] == "PROJECTION_LAG", lagging
        assert runtime.ledger.chart().closed_through == date(2025, 3, 31)

        shop_sale(runtime, date(2025, 4, 2))
        head = anon.head()
        retried = await admin.execute(CLOSE_BOOKS, close_q1)
        assert retried["data"] is None, retried
        assert retried["errors"][0]["extensions"]["code"] == "PROJECTION_LAG"
        assert "saved" in retried["errors"][0]["message"]
        refused = await close_books(admin, "close-april", "2025-04-30")
        assert refused["__typename"] == "Conflict", refused
        assert "nothing was closed" in refused["message"]
        assert anon.head() == head

        runtime.start_projector()
        answered = await close_books(admin, "close-q1", "2025-03-31")
        assert (answered["__typename"], answered["through"]) == ("BooksClosing", "2025-03-31")


async def test_a_grant_cut_or_closing_in_the_closed_period_is_refused_even_posting_nothing(
    client: GraphQLClient,
) -> None:
    """No condition of the grant is met yet, so a cut or a closing recognises nothing
    and posts nothing; dated in the closed period they would still change the grant's
    figures of a period already filed. Refused as a posting would be; after the close,
    accepted."""
    grant_id = await award(client, "grant-closed", ["4000.00", "1000.00"])
    assert (await close_books(client, "close", "2025-06-30"))["__typename"] == "BooksClosing"

    head = client.head()
    cut = {"idempotencyKey": "cut", "grantId": grant_id, "budgetedCosts": "100.00",
           "reportedCosts": "50.00"}  # fmt: skip
    closing = {"idempotencyKey": "closing", "grantId": grant_id}
    for mutation_name, value, day in (
        ("reduceGrant", cut, "2025-03-01"),
        ("closeGrant", closing, "2025-03-02"),
    ):
        refused = await grant_step(client, mutation_name, **value, date=day)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "date"), refused
        assert "closed through 2025-06-30" in refused["message"]
    assert client.head() == head

    reduced = await grant_step(client, "reduceGrant", **cut, date="2025-07-15")
    assert (reduced["__typename"], reduced["awarded"]) == ("Grant", "2500.00"), reduced


NON_CASH = """
mutation InKind($goods: RecordInKindDonationInput!, $time: RecordVolunteerHoursInput!) {
  goods: recordInKindDonation(input: $goods) {
    __typename
    ... on NonCashContribution { id }
    ... on ValidationError { field message }
  }
  time: recordVolunteerHours(input: $time) {
    __typename
    ... on NonCashContribution { id }
    ... on ValidationError { field message }
  }
}
"""
NON_CASH_REPORT = """
query { nonCashContributions(from: "2025-01-01", to: "2025-06-30") {
  inKindFairValue volunteerMinutes volunteerFairValue } }
"""


async def non_cash(client: GraphQLClient, key: str, day: str) -> dict[str, Any]:
    goods = {"idempotencyKey": f"{key}-goods", "description": "Winter coats (40)",
             "fairValue": "600.00", "date": day}  # fmt: skip
    time = {"idempotencyKey": f"{key}-time", "activity": "Shop shift", "minutes": 120,
            "hourlyFairValue": "15.00", "date": day}  # fmt: skip
    answered: dict[str, Any] = await client.data(NON_CASH, {"goods": goods, "time": time})
    return answered


async def test_goods_and_volunteer_time_of_the_closed_period_are_refused_though_not_posted(
    client: GraphQLClient,
) -> None:
    """Goods in kind and volunteer time are never posted, but their fair values are
    figures of their period's report, filed with the closed books: recorded or
    reversed in the closed period they would change it. Refused with the date field
    named; after the close, accepted."""
    before = await non_cash(client, "before", "2025-05-10")
    goods_id = before["goods"]["id"]
    assert (await close_books(client, "close", "2025-06-30"))["__typename"] == "BooksClosing"
    report = (await client.data(NON_CASH_REPORT))["nonCashContributions"]

    head = client.head()
    refused = await non_cash(client, "late", "2025-06-30")
    for name in ("goods", "time"):
        assert (refused[name]["__typename"], refused[name]["field"]) == ("ValidationError", "date")
        assert "closed through 2025-06-30" in refused[name]["message"]
    taken_back = await reverse_donation(client, "fix-closed", goods_id, "2025-06-01")
    assert (taken_back["__typename"], taken_back["field"]) == ("ValidationError", "effectiveDate")
    assert "closed through 2025-06-30" in taken_back["message"]
    assert client.head() == head
    expected = {"inKindFairValue": "600.00", "volunteerMinutes": 120, "volunteerFairValue": "30.00"}
    assert report == expected
    assert (await client.data(NON_CASH_REPORT))["nonCashContributions"] == expected

    after = await non_cash(client, "after", "2025-07-01")
    assert (after["goods"]["__typename"], after["time"]["__typename"]) == (
        "NonCashContribution",
        "NonCashContribution",
    )
    fixed = await reverse_donation(client, "fix-open", goods_id, "2025-07-02")
    assert (fixed["__typename"], fixed["reversedOn"]) == ("NonCashContribution", "2025-07-02")

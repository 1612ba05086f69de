"""Review fixes (3), through GraphQL on SQLite and PostgreSQL.

- A retried setHotelPolicy or defineRoom answers with the version it set, even after
  another request set that date's version again (the claim keeps what it decided).
  A retry is recognised by the request as sent, whatever the version in force
  (which completes what it leaves out) has become since.
- alloggiatiPending applies its deadline window before its limit, lists the soonest
  deadline first, and refuses rather than leave a stay out; alloggiatiPendingPage
  pages through all of them and says how many there are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import services.hotel.graphql.queries as hotel_queries
from services.hotel.domain import HotelPolicyChange
from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CHECK_IN,
    SET_POLICY,
    adult,
    book,
    mark_reported,
    policy_input,
    run,
)

DEFINE_ROOM = """
mutation R($input: DefineRoomInput!) { defineRoom(input: $input) {
  __typename ... on Room { number roomType capacity nightlyRate effectiveFrom } } }
"""
CONFIGURATION = """
query C($on: Date!) { hotelConfiguration(on: $on) {
  policy { effectiveFrom cancellationFreeDays }
  rooms { number roomType nightlyRate } } }
"""
PENDING = """
query P($h: Int!) { alloggiatiPending(withinHours: $h) { bookingId nights overdue } }
"""
PENDING_PAGE = """
query P($h: Int!, $first: Int!, $after: String) {
  alloggiatiPendingPage(withinHours: $h, first: $first, after: $after) {
    nodes { bookingId nights overdue deadline }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


async def test_a_retried_set_hotel_policy_answers_with_the_version_it_set(
    client: GraphQLClient,
) -> None:
    """Two admins set the policy from 1 January 2026: A with 10 free days, then B
    with 3. A's client retries (it never saw the answer): it is told of its own
    version, and B's stays in force."""
    first = policy_input("policy-a", "2026-01-01", cancellationFreeDays=10)
    answer = await run(client, SET_POLICY, first, "setHotelPolicy")
    assert (answer["__typename"], answer["cancellationFreeDays"]) == ("HotelPolicy", 10)
    other = policy_input("policy-b", "2026-01-01", cancellationFreeDays=3)
    replaced = await run(client, SET_POLICY, other, "setHotelPolicy")
    assert replaced["cancellationFreeDays"] == 3

    retried = await run(client, SET_POLICY, first, "setHotelPolicy")
    assert retried == answer

    # The retry changed nothing: B's version is the one in force.
    config = (await client.data(CONFIGURATION, {"on": "2026-01-01"}))["hotelConfiguration"]
    assert config["policy"] == {"effectiveFrom": "2026-01-01", "cancellationFreeDays": 3}


async def test_a_retried_set_hotel_policy_is_recognised_after_the_version_in_force_changed(
    client: GraphQLClient,
) -> None:
    """A sets the policy from 1 March 2026 and leaves out the booking horizon (it
    follows the version in force). B then sets that date again with a shorter horizon.
    A's retry is the same request: it is answered, not refused as another request."""
    first = policy_input("policy-march", "2026-03-01", cancellationFreeDays=10)
    answer = await run(client, SET_POLICY, first, "setHotelPolicy")
    assert answer["__typename"] == "HotelPolicy"
    other = policy_input("policy-b", "2026-03-01", bookingHorizonDays=400)
    assert (await run(client, SET_POLICY, other, "setHotelPolicy"))["__typename"] == "HotelPolicy"

    retried = await run(client, SET_POLICY, first, "setHotelPolicy")
    assert retried == answer

    # Same key, different request: still refused.
    changed = policy_input("policy-march", "2026-03-01", cancellationFreeDays=9)
    refused = await client.execute(SET_POLICY, {"input": changed})
    assert refused["data"]["setHotelPolicy"]["__typename"] == "IdempotencyKeyReused", refused


async def test_a_set_hotel_policy_stored_by_the_earlier_release_is_replayed(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release before fingerprinted the completed version (its ledger accounts,
    every VAT account, the horizon). A client retrying across the upgrade is answered,
    not refused as another request."""
    hotel = client.runtime.hotel

    def as_the_earlier_release(change: HotelPolicyChange) -> dict[str, Any]:
        in_force = hotel.configuration().policy_on(change.sent.effective_from)
        return change.completed_from(in_force).as_state()

    first = policy_input("policy-before-upgrade", "2026-03-01", cancellationFreeDays=10)
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(HotelPolicyChange, "as_request", as_the_earlier_release)
        answer = await run(client, SET_POLICY, first, "setHotelPolicy")
    assert answer["__typename"] == "HotelPolicy", answer

    head = client.head()
    assert await run(client, SET_POLICY, first, "setHotelPolicy") == answer
    assert client.head() == head
    changed = policy_input("policy-before-upgrade", "2026-03-01", cancellationFreeDays=9)
    refused = await client.execute(SET_POLICY, {"input": changed})
    assert refused["data"]["setHotelPolicy"]["__typename"] == "IdempotencyKeyReused", refused


async def test_a_retried_define_room_answers_with_the_version_it_defined(
    client: GraphQLClient,
) -> None:
    """Room 301 from 1 August: a suite at EUR 150.00, then redefined for the same day
    as a double at EUR 120.00. The first request's retry answers with the suite."""

    def room(key: str, room_type: str, rate: str) -> dict[str, Any]:
        return {
            "input": {
                "idempotencyKey": key,
                "number": "301",
                "roomType": room_type,
                "capacity": 2,
                "nightlyRate": rate,
                "effectiveFrom": "2025-08-01",
            }
        }

    answer = (await client.data(DEFINE_ROOM, room("room-a", "SUITE", "150.00")))["defineRoom"]
    assert answer == {
        "__typename": "Room",
        "number": "301",
        "roomType": "SUITE",
        "capacity": 2,
        "nightlyRate": "150.00",
        "effectiveFrom": "2025-08-01",
    }
    replaced = await client.data(DEFINE_ROOM, room("room-b", "DOUBLE", "120.00"))
    assert replaced["defineRoom"]["nightlyRate"] == "120.00"

    retried = (await client.data(DEFINE_ROOM, room("room-a", "SUITE", "150.00")))["defineRoom"]
    assert retried == answer

    config = (await client.data(CONFIGURATION, {"on": "2025-08-01"}))["hotelConfiguration"]
    assert {"number": "301", "roomType": "DOUBLE", "nightlyRate": "120.00"} in config["rooms"]


async def _checked_in_today(client: GraphQLClient, key: str, room: str, nights: int) -> str:
    """A booking arriving today for `nights` nights, checked in now."""
    today = datetime.now(ZoneInfo("Europe/Rome")).date()
    booking = await book(
        client,
        key,
        roomNumber=room,
        arrival=today.isoformat(),
        departure=(today + timedelta(days=nights)).isoformat(),
        businessDate=today.isoformat(),
        guests=[adult()],
    )
    value = {"idempotencyKey": f"in-{key}", "bookingId": booking["id"]}
    checked_in = await run(client, CHECK_IN, value, "checkIn")
    assert checked_in["__typename"] == "Booking", checked_in
    return str(booking["id"])


async def _checked_in_last_july(client: GraphQLClient, key: str, room: str) -> str:
    """A stay of 1 to 4 July 2025, checked in on its day (typed in today)."""
    booking = await book(client, key, roomNumber=room, guests=[adult()])
    value = {"idempotencyKey": f"in-{key}", "bookingId": booking["id"]}
    value["businessDate"] = "2025-07-01"
    checked_in = await run(client, CHECK_IN, value, "checkIn")
    assert checked_in["__typename"] == "Booking", checked_in
    return str(booking["id"])


async def _all_pages(client: GraphQLClient, hours: int, first: int) -> list[dict[str, Any]]:
    """Every page of alloggiatiPendingPage, each as the client saw it."""
    pages = []
    after = None
    while True:
        variables = {"h": hours, "first": first, "after": after}
        page = (await client.data(PENDING_PAGE, variables))["alloggiatiPendingPage"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]


async def test_stays_due_within_the_window_are_never_left_out(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One list holds two stays here (standing for 500). Unreported: a stay of last
    July (overdue for a year), one checked in today for three nights (due in 24 h),
    then one for a single night (due in 6 h); a stay of last July that was reported
    is not pending at all. Within 6 hours, the overdue stay and the one-night stay
    are due: both are listed, the stay due tomorrow does not take a place."""
    monkeypatch.setattr(hotel_queries, "MAX_PENDING", 2)
    overdue = await _checked_in_last_july(client, "overdue", "105")
    reported = await _checked_in_last_july(client, "reported", "106")
    await mark_reported(client, reported, datetime(2025, 7, 1, 20, 0, tzinfo=UTC))
    three_nights = await _checked_in_today(client, "three", "107", nights=3)
    one_night = await _checked_in_today(client, "one", "108", nights=1)

    pending = (await client.data(PENDING, {"h": 6}))["alloggiatiPending"]
    assert pending == [
        {"bookingId": overdue, "nights": 3, "overdue": True},
        {"bookingId": one_night, "nights": 1, "overdue": False},
    ]

    # Within 48 hours all three are due, soonest deadline first: the one-night stay
    # came in after the three-night one and is due 18 hours before it. They are
    # more than one list holds, so the list is refused rather than cut ...
    body = await client.execute(PENDING, {"h": 48})
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["CONFLICT"]
    assert "3 stays are waiting to be reported" in body["errors"][0]["message"]
    assert "alloggiatiPendingPage" in body["errors"][0]["message"]

    # ... and the pages give every one of them, each once, with the count.
    pages = await _all_pages(client, 48, first=1)
    assert [[n["bookingId"] for n in p["nodes"]] for p in pages] == [
        [overdue],
        [one_night],
        [three_nights],
    ]
    assert {p["totalCount"] for p in pages} == {3}
    nodes = [node for page in pages for node in page["nodes"]]
    deadlines = [datetime.fromisoformat(n["deadline"]) for n in nodes]
    assert deadlines == sorted(deadlines)
    assert [n["overdue"] for n in nodes] == [True, False, False]
    two_per_page = await _all_pages(client, 48, first=2)
    assert [[n["bookingId"] for n in p["nodes"]] for p in two_per_page] == [
        [overdue, one_night],
        [three_nights],
    ]

    # The window counts too: within 6 hours two are due, on one page.
    page = (await client.data(PENDING_PAGE, {"h": 6, "first": 50}))["alloggiatiPendingPage"]
    assert [n["bookingId"] for n in page["nodes"]] == [overdue, one_night]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (2, False)

    # Reported, the overdue stay leaves the list; the others fit in it again.
    await mark_reported(client, overdue, datetime.now(UTC))
    pending = (await client.data(PENDING, {"h": 48}))["alloggiatiPending"]
    assert [p["bookingId"] for p in pending] == [one_night, three_nights]


async def test_the_pending_page_refuses_what_it_cannot_page(client: GraphQLClient) -> None:
    for variables in ({"h": 6, "first": 0}, {"h": 6, "first": 1, "after": "not-a-cursor"}):
        body = await client.execute(PENDING_PAGE, variables)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    body = await client.execute(PENDING_PAGE, {"h": 49, "first": 1})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]

"""Review fixes in the booking's rules, through GraphQL on SQLite and PostgreSQL: a
deposit never above what the stay is worth, the cancellation terms the guest booked
under, a room in service every night it is sold, and the agreed rate kept in house.

Stays in house are dated from the application's own today, so that they are stays
in house now, as the front desk sees them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CANCEL,
    CHECK_IN,
    NO_SHOW,
    SET_POLICY,
    account_totals,
    adult,
    book,
    entries_for,
    family,
    mutation,
    policy_input,
    run,
)

CHANGE_STAY = mutation("changeStay", "ChangeStayInput")
CHANGE_GUESTS = mutation("changeGuests", "ChangeGuestsInput")
UNDO = mutation("undoCheckIn", "UndoCheckInInput")
DEFINE_ROOM = mutation(
    "defineRoom",
    "DefineRoomInput",
    "__typename ... on Room { number } ... on ValidationError { field message }",
)
OCCUPANCY = """query O($from: Date!, $to: Date!) {
  occupancy(from: $from, to: $to) { night roomsSold } }"""
PENDING = "query { alloggiatiPending(withinHours: 6) { bookingId overdue } }"


async def change_stay(client: GraphQLClient, booking_id: str, key: str, **fields: Any) -> Any:
    value = {"idempotencyKey": key, "bookingId": booking_id, **fields}
    return await run(client, CHANGE_STAY, value, "changeStay")


async def step(client: GraphQLClient, document: str, field: str, booking_id: str, day: str) -> Any:
    """A lifecycle step (check-in, undo, cancellation, no-show) on a business day."""
    value = {
        "idempotencyKey": f"{field}-{booking_id}-{day}",
        "bookingId": booking_id,
        "businessDate": day,
    }
    return await run(client, document, value, field)


async def define_room(client: GraphQLClient, key: str, **fields: Any) -> None:
    value = {"idempotencyKey": key, "roomType": "TRIPLE", "nightlyRate": "90.00", **fields}
    defined = await run(client, DEFINE_ROOM, value, "defineRoom")
    assert defined["__typename"] == "Room", defined


def today_of(client: GraphQLClient) -> date:
    """The front desk's today (COOP_TIMEZONE), as the application reads it."""
    return client.runtime.hotel.today()


def days(start: date, count: int) -> str:
    return (start + timedelta(days=count)).isoformat()


async def rooms_sold(client: GraphQLClient, night: str) -> int:
    rows = (await client.data(OCCUPANCY, {"from": night, "to": night}))["occupancy"]
    sold: int = rows[0]["roomsSold"]
    return sold


# -- a deposit is at most what the stay is worth ----------------------------------


async def test_a_change_that_would_leave_the_deposit_above_the_stay_is_refused(
    client: GraphQLClient,
) -> None:
    """Three nights prepaid in full (EUR 276.00): shortened to one night (EUR 92.00),
    or the party cut to one adult (EUR 273.00), the deposit would be above the stay,
    with no refund before arrival and all of it kept on a late cancellation."""
    booking = await book(client, "prepaid", deposit="276.00", depositMethod="CARD")
    head = client.head()
    shorter = await change_stay(
        client, booking["id"], "shorter", departure="2025-07-02", businessDate="2025-06-20"
    )
    assert shorter["__typename"] == "ValidationError", shorter
    assert shorter["field"] == "deposit"
    assert (
        "deposit of 276.00 EUR would exceed the stay's new total of 92.00 EUR"
        in (shorter["message"])
    )
    alone = await run(
        client,
        CHANGE_GUESTS,
        {
            "idempotencyKey": "alone",
            "bookingId": booking["id"],
            "guests": [adult()],
            "businessDate": "2025-06-20",
        },
        "changeGuests",
    )
    assert alone["__typename"] == "ValidationError", alone
    assert alone["field"] == "deposit"
    assert "new total of 273.00 EUR" in alone["message"]
    assert "Rossi" not in shorter["message"] + alone["message"]
    assert client.head() == head
    # A late cancellation keeps the deposit, which is what the stay was worth.
    cancelled = await step(client, CANCEL, "cancelBooking", booking["id"], "2025-06-28")
    assert [(line["kind"], line["amount"]) for line in cancelled["folio"]["lines"]] == [
        ("RETAINED_DEPOSIT", "276.00")
    ]


async def test_a_late_cancellation_keeps_no_more_than_the_stay_was_worth(
    client: GraphQLClient,
) -> None:
    """Three nights prepaid in full, shortened in house to one (the rest would be
    given back at check-out), then the check-in undone (the wrong family) and the
    booking cancelled the same day: the cancellation keeps the one night's EUR 92.00
    and gives the other EUR 184.00 back on the card that paid."""
    today = today_of(client)
    booking = await book(
        client,
        "prepaid",
        arrival=days(today, 0),
        departure=days(today, 3),
        businessDate=days(today, 0),
        deposit="276.00",
        depositMethod="CARD",
    )
    assert booking["folio"]["total"] == "276.00"
    assert (await step(client, CHECK_IN, "checkIn", booking["id"], days(today, 0)))[
        "status"
    ] == "CHECKED_IN"
    shorter = await change_stay(
        client, booking["id"], "shorter", departure=days(today, 1), businessDate=days(today, 0)
    )
    assert shorter["__typename"] == "Booking", shorter
    assert (shorter["folio"]["total"], shorter["folio"]["balance"]) == ("92.00", "-184.00")
    undone = await step(client, UNDO, "undoCheckIn", booking["id"], days(today, 0))
    assert undone["status"] == "CONFIRMED", undone

    cancelled = await step(client, CANCEL, "cancelBooking", booking["id"], days(today, 0))
    assert cancelled["status"] == "CANCELLED", cancelled
    folio = cancelled["folio"]
    assert [(line["kind"], line["amount"]) for line in folio["lines"]] == [
        ("RETAINED_DEPOSIT", "92.00")
    ]
    assert [(p["kind"], p["method"], p["amount"]) for p in folio["payments"]] == [
        ("DEPOSIT", "CARD", "276.00"),
        ("DEPOSIT_REFUND", "CARD", "184.00"),
    ]
    assert (folio["total"], folio["paid"], folio["balance"]) == ("92.00", "92.00", "0.00")
    # The ledger: the card keeps 92.00, which the penalty account earned; nothing held.
    assert account_totals(await entries_for(client, booking["id"])) == {
        "1020": "92.00",
        "4030": "-92.00",
    }


# -- the terms the guest booked under -----------------------------------------------


async def test_a_policy_set_later_does_not_change_the_terms_of_bookings_made(
    client: GraphQLClient,
) -> None:
    """Booked on 1 June under 7 free days and a one-night no-show penalty; then the
    policy from 1 June says 60 days and three nights. The bookings already made keep
    their terms (a move too); a booking made after the change has the new ones."""
    early = await book(client, "early", deposit="100.00", depositMethod="CARD")
    absent = await book(client, "absent", roomNumber="108", deposit="100.00", depositMethod="CARD")
    value = policy_input("stricter", "2025-06-01", cancellationFreeDays=60, noShowPenaltyNights=3)
    stricter = await run(client, SET_POLICY, value, "setHotelPolicy")
    assert stricter["__typename"] == "HotelPolicy", stricter
    moved = await change_stay(
        client, early["id"], "to-109", roomNumber="109", businessDate="2025-06-05"
    )
    assert moved["roomNumber"] == "109", moved

    # Twenty days before arrival: free under the 7 days booked, not under 60.
    cancelled = await step(client, CANCEL, "cancelBooking", early["id"], "2025-06-11")
    assert cancelled["folio"]["lines"] == []
    assert [(p["kind"], p["amount"]) for p in cancelled["folio"]["payments"]] == [
        ("DEPOSIT", "100.00"),
        ("DEPOSIT_REFUND", "100.00"),
    ]
    assert account_totals(await entries_for(client, early["id"])) == {}

    # The guest who never came pays the one night booked, not three.
    no_show = await step(client, NO_SHOW, "markNoShow", absent["id"], "2025-07-01")
    assert [(line["kind"], line["amount"]) for line in no_show["folio"]["lines"]] == [
        ("NO_SHOW_PENALTY", "90.00")
    ]
    assert [(p["kind"], p["amount"]) for p in no_show["folio"]["payments"]] == [
        ("DEPOSIT", "100.00"),
        ("DEPOSIT_REFUND", "10.00"),
    ]

    # New business is made under the new terms: 20 days before arrival is late now.
    late = await book(
        client,
        "late",
        roomNumber="102",
        guests=[adult()],
        deposit="50.00",
        depositMethod="CARD",
        businessDate="2025-06-05",
    )
    kept = await step(client, CANCEL, "cancelBooking", late["id"], "2025-06-11")
    assert [(line["kind"], line["amount"]) for line in kept["folio"]["lines"]] == [
        ("RETAINED_DEPOSIT", "50.00")
    ]


# -- a room in service every night it is sold -----------------------------------------


async def test_a_room_is_not_sold_for_nights_it_is_out_of_service(client: GraphQLClient) -> None:
    """Room 105 out of service from 2 July, room 108 a double from 3 July: a stay of
    1 to 4 July is refused in either, naming the room and the night; nothing stored."""
    await define_room(
        client, "105-off", number="105", capacity=3, active=False, effectiveFrom="2025-07-02"
    )
    await define_room(
        client,
        "108-double",
        number="108",
        roomType="DOUBLE",
        capacity=2,
        effectiveFrom="2025-07-03",
    )
    head = client.head()
    value = {
        "idempotencyKey": "in-105",
        "roomNumber": "105",
        "arrival": "2025-07-01",
        "departure": "2025-07-04",
        "guests": [adult()],
        "nightlyRate": "90.00",
        "businessDate": "2025-06-01",
    }
    refused = await run(
        client, mutation("createBooking", "CreateBookingInput"), value, "createBooking"
    )
    assert refused["__typename"] == "ValidationError", refused
    assert (refused["field"], refused["message"]) == (
        "roomNumber",
        "room 105 is not in service on the night of 2025-07-02",
    )
    family_in_108 = await run(
        client,
        mutation("createBooking", "CreateBookingInput"),
        {
            **value,
            "idempotencyKey": "in-108",
            "roomNumber": "108",
            "guests": family(),
        },
        "createBooking",
    )
    assert family_in_108["__typename"] == "ValidationError", family_in_108
    assert (family_in_108["field"], family_in_108["message"]) == (
        "guests",
        "room 108 holds at most 2 guest(s)",
    )
    assert client.head() == head
    assert await rooms_sold(client, "2025-07-01") == 0
    # The night before it goes out of service can still be sold.
    one_night = await book(client, "one-night", guests=[adult()], departure="2025-07-02")
    assert one_night["nights"] == 1


async def test_a_stay_in_house_is_not_extended_into_nights_out_of_service(
    client: GraphQLClient,
) -> None:
    today = today_of(client)
    await define_room(
        client, "105-off", number="105", capacity=3, active=False, effectiveFrom=days(today, 2)
    )
    booking = await book(
        client,
        "stay",
        arrival=days(today, 0),
        departure=days(today, 2),
        businessDate=days(today, 0),
    )
    await step(client, CHECK_IN, "checkIn", booking["id"], days(today, 0))
    head = client.head()
    longer = await change_stay(
        client, booking["id"], "longer", departure=days(today, 4), businessDate=days(today, 0)
    )
    assert longer["__typename"] == "ValidationError", longer
    assert (longer["field"], longer["message"]) == (
        "roomNumber",
        f"room 105 is not in service on the night of {days(today, 2)}",
    )
    assert client.head() == head
    assert await rooms_sold(client, days(today, 2)) == 0


# -- in house the agreed rate stays ------------------------------------------------------


async def test_a_stay_in_house_keeps_its_rate(client: GraphQLClient) -> None:
    """The nights already slept were sold at EUR 90.00: a new rate in house would
    re-price them. The same rate given again with a longer stay is fine."""
    today = today_of(client)
    booking = await book(
        client,
        "stay",
        arrival=days(today, 0),
        departure=days(today, 3),
        businessDate=days(today, 0),
    )
    checked_in = await step(client, CHECK_IN, "checkIn", booking["id"], days(today, 0))
    head = client.head()
    cheaper = await change_stay(
        client, booking["id"], "cheaper", nightlyRate="10.00", businessDate=days(today, 0)
    )
    assert cheaper["__typename"] == "ValidationError", cheaper
    assert (cheaper["field"], cheaper["message"]) == (
        "nightlyRate",
        "the guests are in house: the agreed rate stays",
    )
    longer_and_cheaper = await change_stay(
        client,
        booking["id"],
        "longer-cheaper",
        departure=days(today, 4),
        nightlyRate="80.00",
        businessDate=days(today, 0),
    )
    assert longer_and_cheaper["field"] == "nightlyRate", longer_and_cheaper
    assert client.head() == head
    longer = await change_stay(
        client,
        booking["id"],
        "longer",
        departure=days(today, 4),
        nightlyRate="90.00",
        businessDate=days(today, 0),
    )
    assert longer["__typename"] == "Booking", longer
    rooms = [line["amount"] for line in longer["folio"]["lines"] if line["kind"] == "ROOM"]
    assert rooms == ["90.00"] * 4
    assert checked_in["folio"]["lines"][0] == longer["folio"]["lines"][0]


# -- the real day judges an undo and a change in house, not the business date alone --


async def test_a_check_in_of_days_ago_is_not_undone_by_dating_the_undo_the_next_day(
    client: GraphQLClient,
) -> None:
    """Checked in three days ago (typed in today: its police report is overdue), the
    undo dated the day after the check-in is refused: the report stays due, and the
    guests who stayed cannot be made a no-show."""
    today = today_of(client)
    booking = await book(
        client,
        "stayed",
        arrival=days(today, -3),
        departure=days(today, 1),
        businessDate=days(today, -3),
        deposit="100.00",
        depositMethod="CARD",
    )
    await step(client, CHECK_IN, "checkIn", booking["id"], days(today, -3))
    pending = (await client.data(PENDING))["alloggiatiPending"]
    assert pending == [{"bookingId": booking["id"], "overdue": True}]
    head = client.head()
    undone = await step(client, UNDO, "undoCheckIn", booking["id"], days(today, -2))
    assert undone["__typename"] == "Conflict", undone
    assert f"a check-in is undone by {days(today, -2)} at the latest" in undone["message"]
    assert client.head() == head
    assert (await client.data(PENDING))["alloggiatiPending"] == pending
    no_show = await step(client, NO_SHOW, "markNoShow", booking["id"], days(today, -2))
    assert no_show["__typename"] == "Conflict", no_show


async def test_a_stay_in_house_is_not_shortened_to_a_day_already_past(
    client: GraphQLClient,
) -> None:
    """In house since two days ago until the day after tomorrow: a change dated the
    check-in day cannot end the stay yesterday or today (the room would be sold again
    while the guests sleep in it); tomorrow is fine."""
    today = today_of(client)
    booking = await book(
        client,
        "in-house",
        arrival=days(today, -2),
        departure=days(today, 2),
        businessDate=days(today, -2),
    )
    await step(client, CHECK_IN, "checkIn", booking["id"], days(today, -2))
    head = client.head()
    for key, departure in (("yesterday", days(today, -1)), ("today", days(today, 0))):
        refused = await change_stay(
            client, booking["id"], key, departure=departure, businessDate=days(today, -2)
        )
        assert refused["__typename"] == "ValidationError", refused
        assert refused["field"] == "departure"
        assert "after the day of the change and today" in refused["message"]
    assert client.head() == head
    assert await rooms_sold(client, days(today, -1)) == 1
    shorter = await change_stay(
        client, booking["id"], "tomorrow", departure=days(today, 1), businessDate=days(today, -2)
    )
    assert shorter["__typename"] == "Booking", shorter
    assert shorter["nights"] == 3

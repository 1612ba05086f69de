"""changeStay: the front desk moves a booking, or a guest in house stays longer or
leaves earlier. Through GraphQL on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CANCEL,
    CHECK_IN,
    CHECK_OUT,
    PAY,
    account_totals,
    adult,
    book,
    entries_for,
    member,
    mutation,
    pin_hotel_today,
    run,
)

CHANGE = mutation("changeStay", "ChangeStayInput")
OCCUPANCY = """query O($from: Date!, $to: Date!) {
  occupancy(from: $from, to: $to) { night roomsSold guests } }"""


async def change(client: GraphQLClient, booking_id: str, key: str, **fields: Any) -> Any:
    value = {"idempotencyKey": key, "bookingId": booking_id, **fields}
    return await run(client, CHANGE, value, "changeStay")


async def check_in(client: GraphQLClient, booking_id: str, day: str = "2025-07-01") -> None:
    value = {"idempotencyKey": f"in-{booking_id}", "bookingId": booking_id, "businessDate": day}
    assert (await run(client, CHECK_IN, value, "checkIn"))["status"] == "CHECKED_IN"


async def occupancy(client: GraphQLClient, night: str) -> dict[str, int]:
    rows = (await client.data(OCCUPANCY, {"from": night, "to": night}))["occupancy"]
    return {"roomsSold": rows[0]["roomsSold"], "guests": rows[0]["guests"]}


def folio_amounts(booking: dict[str, Any]) -> dict[str, Any]:
    folio = booking["folio"]
    rooms = [line["date"] for line in folio["lines"] if line["kind"] == "ROOM"]
    return {"nights": rooms, "touristTax": folio["touristTax"], "total": folio["total"]}


async def test_a_booking_moves_to_other_dates_and_room_before_arrival(
    client: GraphQLClient,
) -> None:
    booking = await book(client, "move", deposit="100.00")
    deposit_entries = await entries_for(client, booking["id"])
    moved = await change(
        client,
        booking["id"],
        "move-1",
        roomNumber="109",
        arrival="2025-07-10",
        departure="2025-07-12",
        businessDate="2025-06-05",
    )
    assert moved["__typename"] == "Booking", moved
    assert (moved["roomNumber"], moved["arrival"], moved["departure"], moved["nights"]) == (
        "109",
        "2025-07-10",
        "2025-07-12",
        2,
    )
    # The agreed rate goes with the guests to the family room; two adults pay the tax.
    assert moved["nightlyRate"] == "90.00"
    assert folio_amounts(moved) == {
        "nights": ["2025-07-10", "2025-07-11"],
        "touristTax": "4.00",
        "total": "184.00",
    }
    assert (moved["deposit"], moved["folio"]["balance"]) == ("100.00", "84.00")
    # Moving money is for check-out: the change posts nothing.
    assert await entries_for(client, booking["id"]) == deposit_entries
    # The old nights are free for someone else; the new ones are the family room's.
    assert (await book(client, "takes-105"))["roomNumber"] == "105"
    assert await occupancy(client, "2025-07-01") == {"roomsSold": 1, "guests": 3}
    assert await occupancy(client, "2025-07-11") == {"roomsSold": 1, "guests": 3}
    assert await occupancy(client, "2025-07-12") == {"roomsSold": 0, "guests": 0}
    # The same request again changes nothing twice.
    head = client.head()
    again = await change(
        client,
        booking["id"],
        "move-1",
        roomNumber="109",
        arrival="2025-07-10",
        departure="2025-07-12",
        businessDate="2025-06-05",
    )
    assert again == moved
    assert client.head() == head


async def test_a_guest_in_house_stays_longer_and_the_ledger_matches_the_folio(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = pin_hotel_today(client, monkeypatch, "2025-07-02")
    booking_id = str((await book(client, "stay"))["id"])
    await check_in(client, booking_id)
    await book(client, "next", arrival="2025-07-05", departure="2025-07-07")
    head = client.head()
    blocked = await change(
        client, booking_id, "longer-2", departure="2025-07-06", businessDate="2025-07-02"
    )
    assert blocked["__typename"] == "Conflict"
    assert "room 105 is already booked for the night of 2025-07-05" in blocked["message"]
    assert client.head() == head
    longer = await change(
        client, booking_id, "longer-1", departure="2025-07-05", businessDate="2025-07-02"
    )
    assert longer["__typename"] == "Booking", longer
    assert folio_amounts(longer) == {
        "nights": ["2025-07-01", "2025-07-02", "2025-07-03", "2025-07-04"],
        "touristTax": "8.00",
        "total": "368.00",
    }
    assert await occupancy(client, "2025-07-04") == {"roomsSold": 1, "guests": 3}
    today.move_to("2025-07-05")
    pay = {
        "idempotencyKey": "pay",
        "bookingId": booking_id,
        "method": "CARD",
        "amount": "368.00",
        "businessDate": "2025-07-05",
    }
    assert (await run(client, PAY, pay, "recordPayment"))["folio"]["balance"] == "0.00"
    out = {"idempotencyKey": "out", "bookingId": booking_id, "businessDate": "2025-07-05"}
    assert (await run(client, CHECK_OUT, out, "checkOut"))["status"] == "CHECKED_OUT"
    # Four nights at 90.00 (81.82 net + 8.18 VAT each) and 8 guest-nights of tax.
    assert account_totals(await entries_for(client, booking_id)) == {
        "1020": "368.00",  # card receipts
        "2010": "-32.72",
        "2100": "-8.00",
        "4000": "-327.28",
    }


async def test_a_guest_who_will_leave_earlier_frees_the_last_night(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_hotel_today(client, monkeypatch, "2025-07-02")
    booking_id = str((await book(client, "stay"))["id"])
    await check_in(client, booking_id)
    shorter = await change(
        client, booking_id, "shorter", departure="2025-07-03", businessDate="2025-07-02"
    )
    assert folio_amounts(shorter) == {
        "nights": ["2025-07-01", "2025-07-02"],
        "touristTax": "4.00",
        "total": "184.00",
    }
    assert await occupancy(client, "2025-07-03") == {"roomsSold": 0, "guests": 0}
    other = await book(client, "tonight", arrival="2025-07-03", departure="2025-07-04")
    assert other["roomNumber"] == "105"


async def test_a_new_arrival_ages_the_guests_again_for_the_tourist_tax(
    client: GraphQLClient,
) -> None:
    # Thirteen on 1 July, fourteen on 10 July: exempt under 14, taxed from then on.
    guests = [adult(), member("Rossi", "Luca", "M", "2011-07-05")]
    booking = await book(client, "teen", guests=guests, departure="2025-07-03")
    assert booking["folio"]["touristTax"] == "2.00"
    moved = await change(
        client,
        booking["id"],
        "later",
        arrival="2025-07-10",
        departure="2025-07-12",
        businessDate="2025-06-05",
    )
    assert moved["folio"]["touristTax"] == "4.00"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"arrival": "2025-07-02"}, "arrival", "the guests have arrived: the arrival stays"),
        ({"roomNumber": "109"}, "roomNumber", "a stay in house keeps its room"),
        ({"departure": "2025-07-02"}, "departure", "must be after the day of the change"),
        ({"departure": "2025-07-04"}, "departure", "nothing to change"),
        ({"departure": "2025-08-15"}, "departure", "a stay is at most 30 nights"),
        ({"nightlyRate": "0.00"}, "nightlyRate", "must be greater than zero"),
    ],
)
async def test_bad_changes_in_house_are_refused_and_store_nothing(
    client: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    pin_hotel_today(client, monkeypatch, "2025-07-02")
    booking_id = str((await book(client, "stay"))["id"])
    await check_in(client, booking_id)
    head = client.head()
    refused = await change(client, booking_id, "bad", businessDate="2025-07-02", **fields)
    assert refused["__typename"] == "ValidationError", refused
    assert refused["field"] == field
    assert message in refused["message"]
    assert client.head() == head


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"arrival": "2025-06-04"}, "arrival"),  # before the day of the change
        ({"departure": "2025-07-01"}, "departure"),
        ({"roomNumber": "101"}, "guests"),  # a single room for three
        ({"roomNumber": "Rossi"}, "roomNumber"),
        ({"arrival": "2025-07-05", "departure": "2025-07-04"}, "departure"),
        ({"businessDate": "2025-05-31", "departure": "2025-07-05"}, "businessDate"),
        ({"arrival": "2027-07-01", "departure": "2027-07-03"}, "arrival"),  # past the horizon
    ],
)
async def test_bad_moves_before_arrival_are_refused_and_store_nothing(
    client: GraphQLClient, fields: dict[str, str], field: str
) -> None:
    booking_id = str((await book(client, "move"))["id"])
    head = client.head()
    refused = await change(client, booking_id, "bad", **{"businessDate": "2025-06-05", **fields})
    assert refused["__typename"] == "ValidationError", refused
    assert refused["field"] == field
    assert "Rossi" not in refused["message"]
    assert client.head() == head


async def test_closed_bookings_keep_their_stay(client: GraphQLClient) -> None:
    booking_id = str((await book(client, "gone"))["id"])
    cancel = {"idempotencyKey": "cancel", "bookingId": booking_id, "businessDate": "2025-06-02"}
    await run(client, CANCEL, cancel, "cancelBooking")
    refused = await change(client, booking_id, "late", departure="2025-07-05")
    assert refused["__typename"] == "Conflict"
    assert "is CANCELLED: cannot change its stay" in refused["message"]


async def test_two_desks_moving_into_the_same_nights_one_wins(client: GraphQLClient) -> None:
    first = str((await book(client, "a"))["id"])
    second = str((await book(client, "b", roomNumber="108"))["id"])
    desk = client.as_role(Role.FRONT_DESK)
    into_109 = {"roomNumber": "109", "businessDate": "2025-06-05"}
    results = await asyncio.gather(
        change(client, first, "to-109-a", **into_109),
        change(desk, second, "to-109-b", **into_109),
    )
    assert sorted(r["__typename"] for r in results) == ["Booking", "Conflict"]
    winner = next(r for r in results if r["__typename"] == "Booking")
    loser = second if winner["id"] == first else first
    # The loser keeps its own room and nights.
    assert await occupancy(client, "2025-07-02") == {"roomsSold": 2, "guests": 6}
    kept = await change(client, loser, "stay-put", departure="2025-07-05", **into_109)
    assert kept["__typename"] == "Conflict"

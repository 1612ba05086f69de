"""undoCheckIn: the front desk checked in the wrong booking (two families called
Rossi) and takes it back before anything followed it. Through GraphQL on SQLite
and PostgreSQL: the booking is confirmed again and priced as before arrival, it
leaves the police and ISTAT reports, and the right booking can be checked in;
whatever followed the check-in (a charge, a payment, the police report) or a day
too late refuses it, with nothing stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CHARGE,
    CHECK_IN,
    PAY,
    book,
    entries_for,
    mark_reported,
    mutation,
    pin_hotel_today,
    run,
)

UNDO = mutation("undoCheckIn", "UndoCheckInInput")
REPORTS = """
query R($day: Date!, $month: String!) {
  alloggiatiRecords(date: $day) { count }
  alloggiatiPending(withinHours: 48) { bookingId }
  istatMonthly(month: $month) { arrivals nights }
}
"""


async def _check_in(client: GraphQLClient, booking_id: str, key: str, day: str) -> Any:
    value = {"idempotencyKey": key, "bookingId": booking_id, "businessDate": day}
    return await run(client, CHECK_IN, value, "checkIn")


async def _undo(client: GraphQLClient, booking_id: str, key: str, day: str) -> Any:
    value = {"idempotencyKey": key, "bookingId": booking_id, "businessDate": day}
    return await run(client, UNDO, value, "undoCheckIn")


async def _reports(client: GraphQLClient, day: str = "2025-07-02") -> dict[str, Any]:
    data = await client.data(REPORTS, {"day": day, "month": day[:7]})
    return {
        "records": data["alloggiatiRecords"]["count"],
        "pending": [p["bookingId"] for p in data["alloggiatiPending"]],
        "istat": data["istatMonthly"],
    }


async def test_a_check_in_of_the_wrong_booking_is_taken_back(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Booked for 1 to 4 July with a EUR 100.00 deposit; checked in by mistake on
    the 2nd (a late arrival: two adults taxed from the 2nd, EUR 4.00), undone the
    same day: confirmed again, the tax from the 1st again (EUR 6.00), out of the
    reports, and nothing posted beyond the deposit."""
    pin_hotel_today(client, monkeypatch, "2025-07-02")
    wrong = await book(client, "wrong", deposit="100.00")
    assert wrong["folio"]["touristTax"] == "6.00"
    deposit_entries = await entries_for(client, wrong["id"])
    empty = await _reports(client)

    checked_in = await _check_in(client, wrong["id"], "in-wrong", "2025-07-02")
    assert (checked_in["status"], checked_in["checkedInOn"]) == ("CHECKED_IN", "2025-07-02")
    assert checked_in["folio"]["touristTax"] == "4.00"
    assert (await _reports(client))["pending"] == [wrong["id"]]

    undone = await _undo(client, wrong["id"], "undo-wrong", "2025-07-02")
    assert undone["__typename"] == "Booking", undone
    assert (undone["status"], undone["checkedInOn"]) == ("CONFIRMED", None)
    assert undone["folio"] == wrong["folio"]  # priced as before arrival, deposit held
    assert await _reports(client) == empty
    assert await entries_for(client, wrong["id"]) == deposit_entries

    # A retry answers the same and stores nothing.
    head = client.head()
    assert await _undo(client, wrong["id"], "undo-wrong", "2025-07-02") == undone
    assert client.head() == head

    # The right booking is checked in; the wrong one still can be, when its guests come.
    right = await book(client, "right", roomNumber="109")
    assert (await _check_in(client, right["id"], "in-right", "2025-07-02"))["status"] == (
        "CHECKED_IN"
    )
    again = await _check_in(client, wrong["id"], "in-wrong-again", "2025-07-02")
    assert again["status"] == "CHECKED_IN"
    assert (await _reports(client))["istat"]["arrivals"] == 6  # two families of three


async def test_what_followed_the_check_in_refuses_the_undo(client: GraphQLClient) -> None:
    charged = await book(client, "charged")
    await _check_in(client, charged["id"], "in-charged", "2025-07-01")
    charge = {"idempotencyKey": "dinner", "bookingId": charged["id"], "kind": "FOOD",
              "description": "Dinner", "amount": "30.00", "businessDate": "2025-07-01"}  # fmt: skip
    assert (await run(client, CHARGE, charge, "postCharge"))["__typename"] == "Booking"

    paid = await book(client, "paid", roomNumber="109")
    await _check_in(client, paid["id"], "in-paid", "2025-07-01")
    payment = {"idempotencyKey": "pay", "bookingId": paid["id"], "method": "CARD",
               "amount": "50.00", "businessDate": "2025-07-01"}  # fmt: skip
    assert (await run(client, PAY, payment, "recordPayment"))["__typename"] == "Booking"

    reported = await book(client, "reported", arrival="2025-08-01", departure="2025-08-04")
    await _check_in(client, reported["id"], "in-reported", "2025-08-01")
    await mark_reported(client, reported["id"], datetime(2025, 8, 1, 18, tzinfo=UTC))

    head = client.head()
    for booking, reason, day in (
        (charged, "charges", "2025-07-01"),
        (paid, "payments", "2025-07-01"),
        (reported, "Alloggiati", "2025-08-01"),
    ):
        refused = await _undo(client, booking["id"], "undo", day)  # one key for all
        assert refused["__typename"] == "Conflict", refused
        assert reason in refused["message"]
        assert booking["id"] in refused["message"]  # the booking, never a guest's name
        assert "Rossi" not in refused["message"]
    assert client.head() == head

    never = await book(client, "never", arrival="2025-09-01", departure="2025-09-04")
    head = client.head()
    refused = await _undo(client, never["id"], "undo", "2025-07-01")
    assert refused["__typename"] == "Conflict", refused
    assert "CONFIRMED" in refused["message"]
    assert client.head() == head


async def test_an_undo_on_the_wrong_day_is_refused(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked in on 2 July: an undo dated before it, or two days after it, is refused;
    so is one typed in on the 4th, whatever day it is dated; the next day is allowed."""
    today = pin_hotel_today(client, monkeypatch, "2025-07-03")
    booking = await book(client, "late")
    await _check_in(client, booking["id"], "in", "2025-07-02")
    head = client.head()
    for day in ("2025-07-01", "2025-07-04"):  # the 4th is still to come on the 3rd
        refused = await _undo(client, booking["id"], "undo", day)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "businessDate")
    today.move_to("2025-07-04")
    for day in ("2025-07-03", "2025-07-04"):
        refused = await _undo(client, booking["id"], "undo", day)
        assert refused["__typename"] == "Conflict", refused
        assert "undone by 2025-07-03 at the latest" in refused["message"]
    assert client.head() == head
    # The day after the check-in (one typed in late at night) is still allowed.
    today.move_to("2025-07-03")
    assert (await _undo(client, booking["id"], "undo", "2025-07-03"))["status"] == "CONFIRMED"


async def test_an_undo_racing_a_charge_lets_exactly_one_through(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_hotel_today(client, monkeypatch, "2025-07-01")
    booking = await book(client, "race")
    await _check_in(client, booking["id"], "in", "2025-07-01")
    charge = {"idempotencyKey": "dinner", "bookingId": booking["id"], "kind": "FOOD",
              "description": "Dinner", "amount": "30.00", "businessDate": "2025-07-01"}  # fmt: skip
    undone, charged = await asyncio.gather(
        _undo(client, booking["id"], "undo", "2025-07-01"),
        run(client, CHARGE, charge, "postCharge"),
    )
    outcomes = sorted([undone["__typename"], charged["__typename"]])
    assert outcomes == ["Booking", "Conflict"], (undone, charged)
    final = await client.data("query B($id: ID!) { booking(id: $id) { status } }",
                              {"id": booking["id"]})  # fmt: skip
    entries = await entries_for(client, booking["id"])
    if undone["__typename"] == "Booking":
        assert final["booking"]["status"] == "CONFIRMED"
        assert entries == []
    else:
        assert final["booking"]["status"] == "CHECKED_IN"
        assert len(entries) == 1  # the dinner

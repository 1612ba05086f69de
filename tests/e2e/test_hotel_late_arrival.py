"""A late arrival: the guests came on the check-in day, not the booked one. Their
facts (ages, so the tourist tax) are taken on that day, and a guest added in house
is judged against it too."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import CHECK_IN, adult, book, member, mutation, pin_hotel_today, run

CHANGE_GUESTS = mutation("changeGuests", "ChangeGuestsInput")
UNDO = mutation("undoCheckIn", "UndoCheckInInput")


async def test_a_baby_born_between_the_booked_and_the_real_arrival_is_added_in_house(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Booked for 1 July, the family came on 8 July with a baby born on 5 July. In
    house, the desk adds her: she arrived aged 0. Undoing the check-in afterwards
    would put her in a booking that began before she was born: refused, saying so."""
    booking = await book(client, "late", arrival="2025-07-01", departure="2025-07-12",
                         guests=[adult()], nightlyRate="90.00")  # fmt: skip
    pin_hotel_today(client, monkeypatch, "2025-07-08")
    day = {"bookingId": booking["id"], "businessDate": "2025-07-08"}
    checked_in = await run(client, CHECK_IN, {"idempotencyKey": "in", **day}, "checkIn")
    assert checked_in["__typename"] == "Booking", checked_in

    baby = member("Rossi", "Neonata", "F", "2025-07-05")
    changed = await run(
        client,
        CHANGE_GUESTS,
        {"idempotencyKey": "baby", **day, "guests": [adult(), baby]},
        "changeGuests",
    )
    assert changed["__typename"] == "Booking", changed

    head = client.head()
    refused = await run(client, UNDO, {"idempotencyKey": "undo", **day}, "undoCheckIn")
    assert refused["__typename"] == "Conflict", refused
    assert "born after the booked arrival (2025-07-01)" in refused["message"]
    assert client.head() == head

"""alloggiatiPending's deadline is 24 real hours after the check-in (6 for one night),
also when the clocks change in between: a check-in typed in on a later day than its
businessDate counts from the end of that day, local midnight, and on the Saturday
before a change that midnight and the deadline are in different UTC offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import CHECK_IN, adult, book, run

PENDING = "{ alloggiatiPending(withinHours: 0) { bookingId nights checkedInAt deadline overdue } }"


@pytest.mark.parametrize(
    ("arrival", "departure", "hours"),
    [
        ("2025-10-25", "2025-10-28", 24),  # DST ends in the night after the arrival day
        ("2025-10-25", "2025-10-26", 6),
        ("2025-03-29", "2025-04-01", 24),  # DST starts in the night after it
    ],
)
async def test_deadline_is_24_or_6_real_hours_after_check_in(
    client: GraphQLClient, arrival: str, departure: str, hours: int
) -> None:
    booking = await book(
        client,
        "dst",
        roomNumber="101",
        guests=[adult()],
        arrival=arrival,
        departure=departure,
        nightlyRate=None,
        businessDate="2025-03-01",
    )
    # Checked in on the arrival day, typed in today (a later day).
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking["id"], "businessDate": arrival},
        "checkIn",
    )
    assert checked_in["__typename"] == "Booking", checked_in
    pending = (await client.data(PENDING))["alloggiatiPending"]
    (stay,) = [p for p in pending if p["bookingId"] == booking["id"]]
    arrived = datetime.fromisoformat(stay["checkedInAt"])
    deadline = datetime.fromisoformat(stay["deadline"])
    # Instants, compared in UTC: the deadline is N real hours after the arrival.
    assert deadline.astimezone(UTC) - arrived.astimezone(UTC) == timedelta(hours=hours), stay

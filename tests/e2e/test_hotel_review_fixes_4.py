"""Review fixes (4), through GraphQL on SQLite and PostgreSQL.

- alloggiatiRecords(date) holds the day's arrivals not reported yet, and names their
  bookings: the evening's upload after the morning's was accepted does not report the
  morning's guests a second time. `includeReported` gives the whole day.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import CHECK_IN, adult, book, mark_reported, run

RECORDS = """
query R($day: Date!, $all: Boolean! = false) {
  alloggiatiRecords(date: $day, includeReported: $all) { bookingIds count records } }
"""


async def _checked_in(client: GraphQLClient, key: str, room: str, day: str) -> str:
    guest = adult(surname=key.capitalize(), documentNumber=f"CA{room}AB")
    booking = await book(client, key, roomNumber=room, guests=[guest])
    value = {"idempotencyKey": f"in-{key}", "bookingId": booking["id"], "businessDate": day}
    checked_in = await run(client, CHECK_IN, value, "checkIn")
    assert checked_in["__typename"] == "Booking", checked_in
    return str(booking["id"])


async def test_the_day_s_file_leaves_out_guests_already_reported(client: GraphQLClient) -> None:
    morning = await _checked_in(client, "morning", "105", "2025-07-01")
    day = {"day": "2025-07-01"}
    first_upload = (await client.data(RECORDS, day))["alloggiatiRecords"]
    assert (first_upload["bookingIds"], first_upload["count"]) == ([morning], 1)
    await mark_reported(client, morning, datetime(2025, 7, 1, 12, 0, tzinfo=UTC))

    evening = await _checked_in(client, "evening", "106", "2025-07-01")
    second_upload = (await client.data(RECORDS, day))["alloggiatiRecords"]
    assert (second_upload["bookingIds"], second_upload["count"]) == ([evening], 1)
    assert "Evening" in second_upload["records"][0]

    whole_day = (await client.data(RECORDS, {**day, "all": True}))["alloggiatiRecords"]
    assert (sorted(whole_day["bookingIds"]), whole_day["count"]) == (sorted([morning, evening]), 2)
    assert sorted(whole_day["records"]) == sorted(
        first_upload["records"] + second_upload["records"]
    )

    # Everything reported: an empty file, not the day again.
    await mark_reported(client, evening, datetime(2025, 7, 1, 21, 0, tzinfo=UTC))
    assert (await client.data(RECORDS, day))["alloggiatiRecords"]["count"] == 0

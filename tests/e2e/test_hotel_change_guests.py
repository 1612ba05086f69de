"""changeGuests: a booking taken by phone for one guest, with the document number
typed wrong; the family of three arrives. Through GraphQL on SQLite and
PostgreSQL: the party is replaced before arrival or corrected in house, priced
again, counted again, and the police records carry the corrected data; once the
guests were reported, or with more guests than the room holds, it is refused with
nothing stored, and no message names a guest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CHECK_IN,
    CHECK_OUT,
    CREATE,
    PAY,
    adult,
    book,
    booking_input,
    entries_for,
    family,
    mark_reported,
    member,
    mutation,
    run,
)

CHANGE_GUESTS = mutation("changeGuests", "ChangeGuestsInput")
RECORDS = """
query R($day: Date!) { alloggiatiRecords(date: $day, includeReported: true) { count content } }
"""
OCCUPANCY = """query O($night: Date!) {
  occupancy(from: $night, to: $night) { roomsSold guests } }"""
TYPO, RIGHT = "CA12345XX", "CA12345AB"  # the document as typed at booking, and as shown


async def _change(client: GraphQLClient, booking_id: str, key: str, **fields: Any) -> Any:
    value = {"idempotencyKey": key, "bookingId": booking_id, **fields}
    return await run(client, CHANGE_GUESTS, value, "changeGuests")


async def _records(client: GraphQLClient, day: str = "2025-07-01") -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(RECORDS, {"day": day}))["alloggiatiRecords"]
    return result


async def _guests_on(client: GraphQLClient, night: str) -> int:
    rows = (await client.data(OCCUPANCY, {"night": night}))["occupancy"]
    guests: int = rows[0]["guests"]
    return guests


async def test_a_phone_booking_for_one_becomes_the_family_that_arrives(
    client: GraphQLClient,
) -> None:
    booked = await book(client, "phone", guests=[adult(documentNumber=TYPO)])
    assert (booked["guestCount"], booked["folio"]["touristTax"]) == (1, "3.00")
    assert await _guests_on(client, "2025-07-01") == 1

    changed = await _change(client, booked["id"], "family", guests=family(),
                            businessDate="2025-06-20")  # fmt: skip
    assert changed["__typename"] == "Booking", changed
    assert changed["guestCount"] == 3
    assert [g["recordType"] for g in changed["guests"]] == ["17", "19", "19"]
    # Two adults taxed for three nights; the child of seven is exempt.
    assert changed["folio"]["touristTax"] == "6.00"
    assert changed["folio"]["total"] == "276.00"
    assert await _guests_on(client, "2025-07-01") == 3
    assert await entries_for(client, booked["id"]) == []  # nothing posted before arrival

    # A retry answers the same and stores nothing.
    head = client.head()
    again = await _change(client, booked["id"], "family", guests=family(),
                          businessDate="2025-06-20")  # fmt: skip
    assert again == changed
    assert client.head() == head

    checked_in = {"idempotencyKey": "in", "bookingId": booked["id"], "businessDate": "2025-07-01"}
    assert (await run(client, CHECK_IN, checked_in, "checkIn"))["status"] == "CHECKED_IN"
    records = await _records(client)
    assert records["count"] == 3
    assert RIGHT in records["content"]
    assert TYPO not in records["content"]


async def test_the_check_in_data_is_corrected_in_house_and_checked_out(
    client: GraphQLClient,
) -> None:
    """At the desk the leader's document was typed wrong and the child left out;
    corrected after check-in, the stay is priced from the check-in day and the
    check-out posts what the corrected party owes."""
    booked = await book(client, "typo", guests=[adult(documentNumber=TYPO), family()[1]])
    checked_in = {"idempotencyKey": "in", "bookingId": booked["id"], "businessDate": "2025-07-02"}
    assert (await run(client, CHECK_IN, checked_in, "checkIn"))["status"] == "CHECKED_IN"
    assert TYPO in (await _records(client, "2025-07-02"))["content"]

    changed = await _change(client, booked["id"], "fix", guests=family(),
                            businessDate="2025-07-02")  # fmt: skip
    assert changed["__typename"] == "Booking", changed
    assert (changed["status"], changed["guestCount"]) == ("CHECKED_IN", 3)
    # A late arrival: the tax from the check-in, two adults for two nights.
    assert changed["folio"]["touristTax"] == "4.00"
    records = await _records(client, "2025-07-02")
    assert (records["count"], RIGHT in records["content"], TYPO in records["content"]) == (
        3,
        True,
        False,
    )

    pay = {"idempotencyKey": "pay", "bookingId": booked["id"], "method": "CARD",
           "amount": changed["folio"]["balance"], "businessDate": "2025-07-04"}  # fmt: skip
    assert (await run(client, PAY, pay, "recordPayment"))["__typename"] == "Booking"
    out = {"idempotencyKey": "out", "bookingId": booked["id"], "businessDate": "2025-07-04"}
    checked_out = await run(client, CHECK_OUT, out, "checkOut")
    assert checked_out["status"] == "CHECKED_OUT", checked_out
    assert checked_out["folio"]["touristTax"] == "4.00"

    # After check-out the party is history.
    late = await _change(client, booked["id"], "late", guests=[adult()])
    assert late["__typename"] == "Conflict", late
    assert "CHECKED_OUT" in late["message"]


async def test_refusals_store_nothing_and_name_no_guest(client: GraphQLClient) -> None:
    booked = await book(client, "refusals", guests=[adult()])
    head = client.head()
    crowd = [adult(), *(member("Rossi", f"Figlio{'abcd'[i]}", "M", "2010-01-01") for i in range(3))]
    refused = await _change(client, booked["id"], "crowd", guests=crowd)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "guests")
    assert "105" in refused["message"]  # the room and its capacity, no one's name

    wrong_code = {**member("Rossi", "Ada", "F", "2012-01-01"), "citizenshipCode": "12"}
    bad = await _change(client, booked["id"], "bad", guests=[adult(), wrong_code])
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "guests[1].citizenshipCode")
    unborn = await _change(client, booked["id"], "unborn",
                           guests=[adult(), member("Rossi", "Ada", "F", "2025-09-01")])  # fmt: skip
    assert (unborn["__typename"], unborn["field"]) == ("ValidationError", "guests[1].birthDate")
    early = await _change(client, booked["id"], "early", guests=family(),
                          businessDate="2025-05-01")  # fmt: skip
    assert (early["__typename"], early["field"]) == ("ValidationError", "businessDate")
    for answer in (refused, bad, unborn, early):
        assert "Rossi" not in answer["message"]
        assert "Maria" not in answer["message"]
    assert client.head() == head

    # Reported to the police: the book keeps what was reported.
    checked_in = {"idempotencyKey": "in", "bookingId": booked["id"], "businessDate": "2025-07-01"}
    assert (await run(client, CHECK_IN, checked_in, "checkIn"))["status"] == "CHECKED_IN"
    await mark_reported(client, booked["id"], datetime(2025, 7, 1, 18, tzinfo=UTC))
    head = client.head()
    reported = await _change(client, booked["id"], "after-report", guests=family())
    assert reported["__typename"] == "Conflict", reported
    assert "Alloggiati" in reported["message"]
    assert client.head() == head
    assert (await _records(client))["count"] == 1


async def test_a_key_reused_with_a_corrected_document_is_refused_not_replayed(
    client: GraphQLClient,
) -> None:
    """The desk retries with the key it used before, having corrected the document
    number: the request hashes hold the guests' facts only (no names or documents),
    yet it is a different request, refused with nothing stored, rather than answered
    with the first booking and the typo kept. Retried unchanged, it replays."""
    booked = await book(client, "typed", guests=[adult(documentNumber=TYPO)])
    head = client.head()
    rebooked = await run(
        client,
        CREATE,
        booking_input("typed", guests=[adult(documentNumber=RIGHT)]),
        "createBooking",
    )
    assert rebooked["__typename"] == "IdempotencyKeyReused", rebooked
    assert client.head() == head
    again = await run(
        client, CREATE, booking_input("typed", guests=[adult(documentNumber=TYPO)]), "createBooking"
    )
    assert again == booked

    changed = await _change(client, booked["id"], "fix", guests=[adult(documentNumber=RIGHT)])
    assert changed["__typename"] == "Booking", changed
    head = client.head()
    misfiled = await _change(client, booked["id"], "fix", guests=[adult(documentNumber="ZZ999")])
    assert misfiled["__typename"] == "IdempotencyKeyReused", misfiled
    assert "ZZ999" not in misfiled["message"]
    assert "Rossi" not in misfiled["message"]
    assert client.head() == head
    assert await _change(client, booked["id"], "fix", guests=[adult(documentNumber=RIGHT)]) == (
        changed
    )
    checked_in = {"idempotencyKey": "in", "bookingId": booked["id"], "businessDate": "2025-07-01"}
    assert (await run(client, CHECK_IN, checked_in, "checkIn"))["status"] == "CHECKED_IN"
    records = (await _records(client))["content"]
    assert (RIGHT in records, TYPO in records, "ZZ999" in records) == (True, False, False)

"""Guests' identities: sealed in the log, shown to the front desk, erased after the
stay (crypto-shredding) while the accounts, the tourist tax and ISTAT stay whole.
On SQLite and PostgreSQL, through GraphQL over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CANCEL,
    CHECK_IN,
    CHECK_OUT,
    CREATE,
    NO_SHOW,
    PAY,
    WAIVE,
    adult,
    book,
    booking_input,
    family,
    run,
)

# What the front desk typed that identifies someone (hotel_helpers.family()): the
# surname, the leader's document number, a member's given name, birth dates.
IDENTIFYING = ("Rossi", "CA12345AB", "Giulia", "1980-04-12", "2018-05-05", "1978-09-30")

ERASE = """
mutation($input: EraseGuestDataInput!) {
  eraseGuestData(input: $input) {
    __typename
    ... on Booking { id guestDataErased guestCount
                     guests { position surname givenName birthDate residence }
                     folio { total paid } }
    ... on Conflict { message }
    ... on BalanceDue { message amountDue }
  }
}
"""

BOOKING = """
query($id: ID!) {
  booking(id: $id) {
    guestDataErased guestCount
    guests { position recordType surname givenName birthDate residence taxExemptReason }
    folio { total paid touristTax }
  }
}
"""


def stored_states(client: GraphQLClient) -> list[bytes]:
    """Every event's state exactly as stored (what `coop audit export` writes out)."""
    recorder = client.runtime.ledger.recorder
    return [n.state for n in recorder.select_notifications(start=1, limit=100_000)]


def guest_keys(client: GraphQLClient) -> int:
    from services.hotel.keys import hotel_guest_keys

    with client.runtime.sync_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(hotel_guest_keys)).scalar_one())


async def stayed_and_reported(client: GraphQLClient) -> str:
    booking = await book(client, "fam", guests=family())
    booking_id = str(booking["id"])
    await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "checkIn",
    )
    due = (await client.data(BOOKING, {"id": booking_id}))["booking"]["folio"]["total"]
    await run(
        client,
        PAY,
        {"idempotencyKey": "pay", "bookingId": booking_id, "method": "CARD", "amount": due},
        "recordPayment",
    )
    await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "out", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    return booking_id


async def mark_reported(client: GraphQLClient, booking_id: str) -> None:
    await client.data(
        "mutation($input: MarkGuestsReportedInput!) { markGuestsReported(input: $input) "
        "{ __typename } }",
        {
            "input": {
                "idempotencyKey": f"rep-{booking_id}",
                "bookingIds": [booking_id],
                "reportedAt": datetime.now(UTC).isoformat(),
            }
        },
    )


async def erase(client: GraphQLClient, booking_id: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = (
        await client.data(ERASE, {"input": {"idempotencyKey": key, "bookingId": booking_id}})
    )["eraseGuestData"]
    return result


async def test_identities_are_sealed_in_the_log_and_open_for_the_front_desk(
    client: GraphQLClient,
) -> None:
    booking_id = await stayed_and_reported(client)
    states = stored_states(client)
    assert states, "the log holds the stay's events"
    for text in IDENTIFYING:
        assert not any(text.encode() in state for state in states), text
    # The front desk still reads them: opened with the booking's key.
    desk = client.as_role(Role.FRONT_DESK)
    booking = (await desk.data(BOOKING, {"id": booking_id}))["booking"]
    assert booking["guestDataErased"] is False
    assert [g["surname"] for g in booking["guests"]] == ["Rossi", "Rossi", "Rossi"]
    assert [g["recordType"] for g in booking["guests"]] == ["17", "19", "19"]
    records = (
        await desk.data('query { alloggiatiRecords(date: "2025-07-01") { count content } }')
    )["alloggiatiRecords"]
    assert records["count"] == 3
    assert "ROSSI" in records["content"].upper()


async def test_erasure_shreds_the_identities_and_keeps_the_accounts(
    client: GraphQLClient,
) -> None:
    booking_id = await stayed_and_reported(client)
    before = (await client.data(BOOKING, {"id": booking_id}))["booking"]
    istat_before = await client.data('query { istatMonthly(month: "2025-07") { arrivals nights } }')
    keys_before = guest_keys(client)

    # Not before the police report: it needs the identities.
    refused = await erase(client, booking_id, "erase-early")
    assert refused["__typename"] == "Conflict"
    assert "not reported" in refused["message"]
    await mark_reported(client, booking_id)
    whole_day = (
        'query { alloggiatiRecords(date: "2025-07-01", includeReported: true) '
        "{ count bookingIds } }"
    )
    assert (await client.data(whole_day))["alloggiatiRecords"] == {
        "count": 3,
        "bookingIds": [booking_id],
    }
    # An admin task: the front desk may not.
    desk = client.as_role(Role.FRONT_DESK)
    forbidden = await desk.execute(
        ERASE, {"input": {"idempotencyKey": "erase-desk", "bookingId": booking_id}}
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    erased = await erase(client, booking_id, "erase")
    assert erased["__typename"] == "Booking"
    assert erased["guestDataErased"] is True
    assert erased["guests"] == []
    assert erased["guestCount"] == 3
    assert erased["folio"] == {"total": before["folio"]["total"], "paid": before["folio"]["paid"]}
    assert guest_keys(client) == keys_before - 1

    after = (await client.data(BOOKING, {"id": booking_id}))["booking"]
    assert after["folio"] == before["folio"]  # the tourist tax included
    assert after["guests"] == []
    # ISTAT's arrivals and nights by residence are facts kept in clear.
    assert (
        await client.data('query { istatMonthly(month: "2025-07") { arrivals nights } }')
        == istat_before
    )
    # Out of the day's whole police file: no records, and not named in it.
    assert (await client.data(whole_day))["alloggiatiRecords"] == {"count": 0, "bookingIds": []}

    # A retried request changes nothing twice; a new one is refused.
    head = client.head()
    again = await erase(client, booking_id, "erase")
    assert again["guestDataErased"] is True
    assert client.head() == head
    twice = await erase(client, booking_id, "erase-again")
    assert twice["__typename"] == "Conflict"

    # A rebuild from the log cannot bring the identities back: their key is gone.
    client.runtime.projector.rebuild()
    rebuilt = (await client.data(BOOKING, {"id": booking_id}))["booking"]
    assert rebuilt == after


async def test_a_cancelled_booking_is_erased_without_a_report(client: GraphQLClient) -> None:
    booking_id = str((await book(client, "cancel-me"))["id"])
    confirmed = await erase(client, booking_id, "too-soon")
    assert confirmed["__typename"] == "Conflict"  # the stay is not over
    await run(
        client,
        CANCEL,
        {"idempotencyKey": "cancel", "bookingId": booking_id, "businessDate": "2025-06-01"},
        "cancelBooking",
    )
    erased = await erase(client, booking_id, "erase-cancelled")
    assert erased["__typename"] == "Booking"
    assert erased["guestDataErased"] is True


ERASABLE = """
query($before: Date!, $first: Int! = 100, $after: String) {
  guestDataErasable(endedBefore: $before, first: $first, after: $after) {
    nodes { bookingId status endedOn } pageInfo { hasNextPage endCursor } } }
"""


async def erasable(client: GraphQLClient, before: str) -> list[dict[str, Any]]:
    page = (await client.data(ERASABLE, {"before": before}))["guestDataErasable"]
    assert page["pageInfo"]["hasNextPage"] is False
    rows: list[dict[str, Any]] = page["nodes"]
    return rows


async def test_the_retention_list_names_what_may_be_erased(client: GraphQLClient) -> None:
    stayed = await stayed_and_reported(client)  # checked out on 4 July, not reported
    cancelled = str((await book(client, "to-cancel", roomNumber="108"))["id"])
    await run(
        client,
        CANCEL,
        {"idempotencyKey": "cancel", "bookingId": cancelled, "businessDate": "2025-06-02"},
        "cancelBooking",
    )
    await book(client, "still-ahead", roomNumber="109")  # confirmed: never listed
    assert await erasable(client, "2025-12-31") == [
        {"bookingId": cancelled, "status": "CANCELLED", "endedOn": "2025-06-02"}
    ]
    await mark_reported(client, stayed)
    assert [r["bookingId"] for r in await erasable(client, "2025-12-31")] == [cancelled, stayed]
    assert [r["bookingId"] for r in await erasable(client, "2025-07-04")] == [cancelled]
    # Page by page, in the same order: a run that keeps some (a legal hold) still
    # reaches those after them.
    variables = {"before": "2025-12-31", "first": 1}
    first = (await client.data(ERASABLE, variables))["guestDataErasable"]
    assert [r["bookingId"] for r in first["nodes"]] == [cancelled]
    assert first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    rest = (await client.data(ERASABLE, {**variables, "after": after}))["guestDataErasable"]
    assert [r["bookingId"] for r in rest["nodes"]] == [stayed]
    assert rest["pageInfo"] == {"hasNextPage": False, "endCursor": rest["pageInfo"]["endCursor"]}
    await erase(client, cancelled, "erase-c")
    assert await erasable(client, "2025-12-31") == [
        {"bookingId": stayed, "status": "CHECKED_OUT", "endedOn": "2025-07-04"}
    ]


async def test_a_no_show_still_owing_its_penalty_keeps_its_guests_until_settled(
    client: GraphQLClient,
) -> None:
    """The guests' identities are whom the hotel asks for the penalty: the retention
    run leaves the booking alone and an erasure is refused with the amount owed
    (nothing stored) until the penalty is collected or waived."""
    booking_id = str((await book(client, "no-show", guests=family(), nightlyRate="90.00"))["id"])
    marked = await run(
        client,
        NO_SHOW,
        {"idempotencyKey": "ns", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "markNoShow",
    )
    assert marked["folio"]["balance"] == "90.00"
    assert await erasable(client, "2025-12-31") == []
    head = client.head()
    refused = await erase(client, booking_id, "erase-owed")
    assert (refused["__typename"], refused["amountDue"]) == ("BalanceDue", "90.00")
    assert "90.00 EUR is still due" in refused["message"]
    assert "waiveNoShowPenalty" in refused["message"]
    assert not any(fact in refused["message"] for fact in IDENTIFYING)
    assert client.head() == head
    assert (await client.data(BOOKING, {"id": booking_id}))["booking"]["guests"][0][
        "surname"
    ] == "Rossi"

    waive = {"idempotencyKey": "w", "bookingId": booking_id, "reason": "Guest unreachable",
             "businessDate": "2025-07-10"}  # fmt: skip
    await run(client, WAIVE, waive, "waiveNoShowPenalty")
    assert await erasable(client, "2025-12-31") == [
        {"bookingId": booking_id, "status": "NO_SHOW", "endedOn": "2025-07-01"}
    ]
    erased = await erase(client, booking_id, "erase-settled")
    assert (erased["__typename"], erased["guestDataErased"]) == ("Booking", True)


async def test_an_interrupted_erasure_is_finished_from_the_log(
    client: GraphQLClient, monkeypatch: Any
) -> None:
    """The event saved, the process died before deleting the key: the projector's key
    shredder, following the log, deletes it; a later attempt, whatever its idempotency
    key, answers "already erased"."""
    booking_id = await stayed_and_reported(client)
    await mark_reported(client, booking_id)
    hotel = client.runtime.hotel
    keys_before = guest_keys(client)

    def crash(_booking_id: object) -> None:
        raise OSError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(hotel.guest_keys, "delete", crash)
        body = await client.execute(
            ERASE, {"input": {"idempotencyKey": "erase-1", "bookingId": booking_id}}
        )
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
        assert hotel.get_booking(UUID(booking_id)).guest_data_erased  # the event is saved
        await client.runtime.wait_for_position(client.head())
        assert guest_keys(client) == keys_before - 1
    again = await erase(client, booking_id, "erase-2")
    assert again["__typename"] == "Conflict"
    assert guest_keys(client) == keys_before - 1


async def test_a_lost_key_refuses_the_police_file_instead_of_dropping_guests(
    client: GraphQLClient,
) -> None:
    from services.hotel.keys import hotel_guest_keys

    booking_id = await stayed_and_reported(client)
    with client.runtime.sync_engine.begin() as conn:
        conn.execute(hotel_guest_keys.delete())  # e.g. restored from an older backup
    booking = (await client.data(BOOKING, {"id": booking_id}))["booking"]
    assert booking["guests"] == []
    assert booking["guestDataErased"] is False
    body = await client.execute('query { alloggiatiRecords(date: "2025-07-01") { count } }')
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert booking_id in body["errors"][0]["message"]


async def test_the_request_hash_holds_no_identity(client: GraphQLClient) -> None:
    """The idempotency claim outlives an erasure, so its request hash is computed from
    the facts only; the identities are bound to it by a digest under the booking's
    key. A retry that differs in a name alone is another request while the key lives;
    once the guests' data is erased, nothing left can tell the names apart, and the
    same retry answers with the booking."""
    first = await book(client, "same-key")
    renamed = [{**g, "surname": "Bianchi"} for g in family()]
    body = await client.data(CREATE, {"input": {**booking_input("same-key"), "guests": renamed}})
    assert body["createBooking"]["__typename"] == "IdempotencyKeyReused"
    older = [{**g, "birthDate": "1960-01-01"} for g in family()]  # age on arrival differs
    body = await client.data(CREATE, {"input": {**booking_input("same-key"), "guests": older}})
    assert body["createBooking"]["__typename"] == "IdempotencyKeyReused"

    cancel = {"idempotencyKey": "cancel", "bookingId": first["id"], "businessDate": "2025-06-01"}
    await run(client, CANCEL, cancel, "cancelBooking")
    assert (await erase(client, first["id"], "erase"))["__typename"] == "Booking"
    keys = guest_keys(client)
    body = await client.data(CREATE, {"input": {**booking_input("same-key"), "guests": renamed}})
    assert body["createBooking"]["__typename"] == "Booking"
    assert body["createBooking"]["id"] == first["id"]
    assert guest_keys(client) == keys  # the retry made no new key for the erased booking


async def test_input_errors_name_the_place_never_the_guests_data(
    client: GraphQLClient,
) -> None:
    """graphql-core's messages for a malformed input quote what they refused: a whole
    guest ("found: {'surname': ...}"), a birth date, a document number. The answer
    names the place and the fault only, and nothing is stored."""
    head = client.head()
    guest = adult(surname="Ghirardelli", documentNumber="AX1234567")
    missing_sex = {k: v for k, v in guest.items() if k != "sex"}
    cases: list[tuple[dict[str, Any], str]] = [
        (missing_sex, "required field 'sex'"),
        ({**guest, "fiscalCode": "GHRMRA80A01H501U"}, "unknown field 'fiscalCode'"),
        ({**guest, "birthDate": "1980-02-30"}, "cannot represent a Date"),
        ({**guest, "birthDate": "Ghirardelli 1980"}, "Invalid isoformat string"),
        ({**guest, "sex": "Ghirardelli"}, "does not exist in 'Sex' enum"),
        ({**guest, "documentNumber": 9876543}, "cannot represent a non string value"),
    ]
    for bad_guest, fault in cases:
        body = await client.execute(CREATE, {"input": booking_input(guests=[bad_guest])})
        assert body.get("data") is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert ".guests[0]" in error["message"], error
        assert fault in error["message"], error
        for secret in ("Ghirardelli", "AX1234567", "GHRMRA", "1980-02-30", "9876543"):
            assert secret not in error["message"], error
    for birth_date in ("1980-02-30", "Ghirardelli 1980"):
        literal = await client.execute(
            'mutation { createBooking(input: {idempotencyKey: "k", roomNumber: "101", '
            'arrival: "2025-07-01", departure: "2025-07-02", guests: [{surname: "Ghirardelli", '
            f'givenName: "Anna", sex: F, birthDate: "{birth_date}", birthCountryCode: '
            '"100000100", citizenshipCode: "100000100", residenceCountryCode: "100000100"}]}) '
            "{ __typename } }"
        )
        assert literal.get("data") is None
        assert "Ghirardelli" not in str(literal), literal
        assert birth_date not in str(literal), literal
    assert client.head() == head

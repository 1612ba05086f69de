"""Front desk fixes, on both stores: a group booked under its leader's name alone is
reported to the police as a group once its members arrive, and a foreign guest's name
is taken as typed (composed or not) or refused saying what the record file needs."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CHECK_IN,
    CREATE,
    GERMANY,
    adult,
    booking_input,
    member,
    mutation,
    pin_hotel_today,
    run,
)

CHANGE_GUESTS = mutation(
    "changeGuests",
    "ChangeGuestsInput",
    "__typename ... on Booking { id partyType } ... on ValidationError { field message }",
)


async def test_a_group_booked_under_its_leader_is_reported_as_a_group(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_hotel_today(client, monkeypatch, "2025-07-01")
    desk = client.as_role(Role.FRONT_DESK)
    leader = adult("Bianchi", "Luca")
    booking = booking_input("group", guests=[leader], partyType="GROUP")
    booked = await run(desk, CREATE, booking, "createBooking")
    assert booked["__typename"] == "Booking", booked
    checked_in = {"idempotencyKey": "in", "bookingId": booked["id"], "businessDate": "2025-07-01"}
    assert (await run(desk, CHECK_IN, checked_in, "checkIn"))["__typename"] == "Booking"
    # The group arrives; the desk types in the whole party, the party type unchanged.
    party = [leader, member("Verdi", "Marco", "M", "1990-01-01"),
             member("Neri", "Paolo", "M", "1991-02-02")]  # fmt: skip
    change = {"idempotencyKey": "party", "bookingId": booked["id"], "guests": party,
              "businessDate": "2025-07-01"}  # fmt: skip
    changed = await run(desk, CHANGE_GUESTS, change, "changeGuests")
    assert changed == {"__typename": "Booking", "id": booked["id"], "partyType": "GROUP"}
    query = 'query { alloggiatiRecords(date: "2025-07-01") { records } }'
    records = (await desk.data(query))["alloggiatiRecords"]["records"]
    # 18: group leader, 20: group member (17/19 are a family's).
    assert [record[:2] for record in records] == ["18", "20", "20"]


def _german(surname: str, given_name: str) -> dict[str, Any]:
    return {"surname": surname, "givenName": given_name, "sex": "M",
            "birthDate": "1975-03-02", "birthCountryCode": GERMANY,
            "citizenshipCode": GERMANY, "residenceCountryCode": GERMANY,
            "documentType": "PASOR", "documentNumber": "C01X00T47",
            "documentIssuePlaceCode": GERMANY}  # fmt: skip


async def test_a_name_typed_decomposed_is_the_same_name(client: GraphQLClient) -> None:
    desk = client.as_role(Role.FRONT_DESK)
    decomposed = unicodedata.normalize("NFD", "Müller")
    assert len(decomposed) == 7  # u and a combining diaeresis
    booking = booking_input("nfd", guests=[_german(decomposed, "Jürgen")])
    booked = await run(desk, CREATE, booking, "createBooking")
    assert booked["__typename"] == "Booking", booked
    query = "query($id: ID!) { booking(id: $id) { guests { surname } } }"
    guests = (await desk.data(query, {"id": booked["id"]}))["booking"]["guests"]
    assert guests == [{"surname": "Müller"}]  # stored composed, as the record file has it


async def test_a_letter_outside_latin_1_is_refused_saying_so(client: GraphQLClient) -> None:
    desk = client.as_role(Role.FRONT_DESK)
    head = client.head()
    booking = booking_input("pl", guests=[_german("Nowak", "Łukasz")])
    answer = await run(desk, CREATE, booking, "createBooking")
    assert (answer["__typename"], answer["field"]) == ("ValidationError", "guests[0].givenName")
    assert "Latin-1" in answer["message"]
    assert "Łukasz" not in answer["message"]  # personal data is not quoted back
    assert client.head() == head


async def test_a_name_at_its_longest_typed_decomposed_is_not_too_long(
    client: GraphQLClient,
) -> None:
    desk = client.as_role(Role.FRONT_DESK)
    longest = "Jürgen" + "ü" * 3 + "a" * 21  # 30 letters, the longest a given name is
    assert len(longest) == 30
    typed = unicodedata.normalize("NFD", longest)  # 34 characters as sent
    booking = booking_input("long", guests=[_german("Müller", typed)])
    assert (await run(desk, CREATE, booking, "createBooking"))["__typename"] == "Booking"

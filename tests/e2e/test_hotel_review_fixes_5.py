"""Review fixes (5), through GraphQL on SQLite and PostgreSQL.

- setHotelPolicy refuses a tourist-tax category given twice (the second rate silently
  replaced the first: a 0.00 typed by mistake stopped collecting the tax).
- Money goes back no earlier than it came in: a refund in house is not dated before
  the check-in, and a void that refunds after check-out is not dated before the
  check-out or the payment it returns.
- changeGuests checks capacity, not service, on the nights the booking already holds:
  a room taken out of service later, from the arrival night on, no longer blocks a
  correction of the guests.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import (
    CHARGE,
    CHECK_IN,
    CHECK_OUT,
    PAY,
    REFUND,
    SET_POLICY,
    VOID,
    adult,
    book,
    family,
    member,
    mutation,
    policy_input,
    run,
)
from tests.e2e.test_graphql_hotel import guest_from_abroad_checked_in
from tests.e2e.test_hotel_review_fixes_2 import define_room

CHANGE_GUESTS = mutation("changeGuests", "ChangeGuestsInput")


async def test_a_tax_category_given_twice_is_refused(client: GraphQLClient) -> None:
    head = client.head()
    twice = [{"stars": 3, "amount": "1.00"}, {"stars": 4, "amount": "1.50"},
             {"stars": 3, "amount": "0.00"}]  # fmt: skip
    value = policy_input("twice", "2025-08-01", touristTaxByStars=twice)
    refused = await run(client, SET_POLICY, value, "setHotelPolicy")
    assert (refused["__typename"], refused["field"]) == (
        "ValidationError",
        "touristTaxByStars[2].stars",
    )
    assert client.head() == head
    value["touristTaxByStars"] = twice[:2]
    assert (await run(client, SET_POLICY, value, "setHotelPolicy"))["__typename"] == "HotelPolicy"


def payments(booking: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(p["kind"], p["amount"], p["date"]) for p in booking["folio"]["payments"]]


async def test_a_refund_in_house_is_not_dated_before_the_check_in(client: GraphQLClient) -> None:
    booked = await book(client, "b", deposit="100.00", depositMethod="CARD")
    check_in = {"idempotencyKey": "i", "bookingId": booked["id"], "businessDate": "2025-07-01"}
    assert (await run(client, CHECK_IN, check_in, "checkIn"))["status"] == "CHECKED_IN"
    head = client.head()
    refund = {"idempotencyKey": "r", "bookingId": booked["id"], "method": "CARD",
              "amount": "50.00", "businessDate": "2025-06-15"}  # fmt: skip
    refused = await run(client, REFUND, refund, "recordRefund")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "businessDate")
    assert "check-in" in refused["message"]
    assert client.head() == head
    refund |= {"idempotencyKey": "r2", "businessDate": "2025-07-01"}
    refunded = await run(client, REFUND, refund, "recordRefund")
    assert ("REFUND", "50.00", "2025-07-01") in payments(refunded)


async def test_a_void_that_refunds_after_check_out_is_not_dated_before_it(
    client: GraphQLClient,
) -> None:
    """Dinner on 1 July, the folio paid in cash and the guest out on 4 July: a credit
    note refunding the dinner dated 1 July showed the cash going out three days
    before it came in."""
    booking_id = await guest_from_abroad_checked_in(client)
    charge = {"idempotencyKey": "c", "bookingId": booking_id, "kind": "FOOD",
              "description": "Dinner", "amount": "40.00", "businessDate": "2025-07-01"}  # fmt: skip
    await run(client, CHARGE, charge, "postCharge")
    pay = {"idempotencyKey": "p", "bookingId": booking_id, "method": "CASH",
           "amount": "313.00", "businessDate": "2025-07-04"}  # fmt: skip
    assert (await run(client, PAY, pay, "recordPayment"))["folio"]["balance"] == "0.00"
    out = {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-07-04"}
    assert (await run(client, CHECK_OUT, out, "checkOut"))["status"] == "CHECKED_OUT"
    head = client.head()
    void = {"idempotencyKey": "v", "bookingId": booking_id, "chargeNumber": 1,
            "reason": "not eaten", "businessDate": "2025-07-01",
            "refundMethod": "CASH"}  # fmt: skip
    refused = await run(client, VOID, void, "voidCharge")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "businessDate")
    assert "2025-07-04" in refused["message"]
    assert client.head() == head
    void |= {"idempotencyKey": "v2", "businessDate": "2025-07-05"}
    voided = await run(client, VOID, void, "voidCharge")
    assert voided["__typename"] == "Booking", voided
    assert ("REFUND", "40.00", "2025-07-05") in payments(voided)


async def test_guests_are_corrected_in_a_room_taken_out_of_service_from_the_arrival(
    client: GraphQLClient,
) -> None:
    """Room 105 is retired from 1 July after two bookings were made for it: one not yet
    arrived, one in house. Their guests can still be corrected (the police data must
    be right); a party larger than the room as sold is still refused."""
    ahead = await book(client, "ahead", guests=[adult(documentNumber="CA12345XX")])
    arrived = await book(
        client, "arrived", arrival="2025-06-20", departure="2025-06-23", guests=[adult()]
    )
    check_in = {"idempotencyKey": "i", "bookingId": arrived["id"], "businessDate": "2025-06-20"}
    assert (await run(client, CHECK_IN, check_in, "checkIn"))["status"] == "CHECKED_IN"
    await define_room(
        client, "105-off", number="105", capacity=3, active=False, effectiveFrom="2025-06-20"
    )
    change = {"idempotencyKey": "g1", "bookingId": ahead["id"], "guests": family(),
              "businessDate": "2025-06-02"}  # fmt: skip
    changed = await run(client, CHANGE_GUESTS, change, "changeGuests")
    assert (changed["__typename"], changed["guestCount"]) == ("Booking", 3), changed
    change = {"idempotencyKey": "g2", "bookingId": arrived["id"],
              "guests": [adult(documentNumber="CA99999XX")],
              "businessDate": "2025-06-20"}  # fmt: skip
    assert (await run(client, CHANGE_GUESTS, change, "changeGuests"))["__typename"] == "Booking"
    head = client.head()
    four = [*family(), member("Rossi", "Luca", "M", "1975-01-01")]
    change = {"idempotencyKey": "g3", "bookingId": ahead["id"], "guests": four,
              "businessDate": "2025-06-02"}  # fmt: skip
    refused = await run(client, CHANGE_GUESTS, change, "changeGuests")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "guests"), refused
    assert client.head() == head

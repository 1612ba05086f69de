"""The front desk's day through GraphQL over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.common.auth import Role
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from tests.e2e.conftest import GraphQLClient, serving
from tests.e2e.hotel_helpers import (
    CANCEL,
    CHARGE,
    CHECK_IN,
    CHECK_OUT,
    CREATE,
    GERMANY,
    JOURNAL,
    NO_SHOW,
    NUMBERED_CHARGE,
    PAY,
    REFUND,
    SET_POLICY,
    VOID,
    WAIVE,
    account_totals,
    adult,
    book,
    booking_input,
    entries_for,
    member,
    pin_hotel_today,
    policy_input,
    run,
)


async def test_three_night_family_stay_with_dinner_and_card_payment(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    booking = await book(client)
    booking_id = booking["id"]
    assert booking["status"] == "CONFIRMED"
    assert booking["nights"] == 3

    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in-1", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "checkIn",
    )
    assert checked_in["status"] == "CHECKED_IN"
    dinner = await run(
        client,
        CHARGE,
        {
            "idempotencyKey": "dinner-1",
            "bookingId": booking_id,
            "kind": "FOOD",
            "description": "Dinner for three",
            "amount": "48.00",
            "businessDate": "2025-07-02",
        },
        "postCharge",
    )
    # By hand: 3 nights x 90.00 = 270.00; tourist tax 2 adults x 3 nights x 1.00 = 6.00
    # (the child of seven is exempt); dinner 48.00. Total 324.00.
    assert dinner["folio"]["total"] == "324.00"
    assert dinner["folio"]["balance"] == "324.00"
    paid = await run(
        client,
        PAY,
        {
            "idempotencyKey": "pay-1",
            "bookingId": booking_id,
            "method": "CARD",
            "amount": "324.00",
            "businessDate": "2025-07-04",
        },
        "recordPayment",
    )
    assert paid["folio"]["balance"] == "0.00"
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "out-1", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    assert out["status"] == "CHECKED_OUT"
    folio = out["folio"]
    # Each night: 90.00 gross -> net 9000 / 1.10 = 8181.8 -> 81.82, VAT 8.18.
    # Dinner: 48.00 -> net 4800 / 1.10 = 4363.6 -> 43.64, VAT 4.36.
    assert folio["lines"] == [
        {
            "kind": "ROOM",
            "description": f"Room 105, night of 2025-07-0{day}",
            "date": f"2025-07-0{day}",
            "amount": "90.00",
            "vatRate": "10",
            "net": "81.82",
            "vat": "8.18",
        }
        for day in (1, 2, 3)
    ] + [
        {
            "kind": "TOURIST_TAX",
            "description": "Tourist tax: 6 guest-night(s) at 1.00 EUR",
            "date": "2025-07-01",
            "amount": "6.00",
            "vatRate": None,
            "net": "6.00",
            "vat": "0.00",
        },
        {
            "kind": "FOOD",
            "description": "Dinner for three",
            "date": "2025-07-02",
            "amount": "48.00",
            "vatRate": "10",
            "net": "43.64",
            "vat": "4.36",
        },
    ]
    assert folio["touristTax"] == "6.00"
    assert folio["total"] == "324.00"
    assert folio["paid"] == "324.00"
    assert folio["balance"] == "0.00"
    assert folio["vatSummary"] == [
        {"rate": "10", "net": "289.10", "vat": "28.90", "gross": "318.00"}
    ]
    assert "rounded half up" in folio["roundingRule"]
    assert folio["payments"] == [
        {"kind": "PAYMENT", "method": "CARD", "amount": "324.00", "date": "2025-07-04"}
    ]

    entries = await entries_for(client, booking_id)
    by_cause = {e["cause"]: e for e in entries}
    assert set(by_cause) == {
        f"hotel:charge:{booking_id}:1",
        f"hotel:payment:{booking_id}:1",
        f"hotel:checkout:{booking_id}",
    }
    assert by_cause[f"hotel:charge:{booking_id}:1"]["lines"] == [
        {"account": "1100", "debit": "48.00", "credit": "0.00"},
        {"account": "4010", "debit": "0.00", "credit": "43.64"},
        {"account": "2010", "debit": "0.00", "credit": "4.36"},
    ]
    assert by_cause[f"hotel:payment:{booking_id}:1"]["lines"] == [
        {"account": "1020", "debit": "324.00", "credit": "0.00"},
        {"account": "1100", "debit": "0.00", "credit": "324.00"},
    ]
    checkout = by_cause[f"hotel:checkout:{booking_id}"]
    assert checkout["effectiveDate"] == "2025-07-04"
    assert checkout["lines"] == [
        {"account": "1100", "debit": "276.00", "credit": "0.00"},
        {"account": "4000", "debit": "0.00", "credit": "245.46"},
        {"account": "2010", "debit": "0.00", "credit": "24.54"},
        {"account": "2100", "debit": "0.00", "credit": "6.00"},
    ]
    # Over the booking's entries: revenue + VAT + tourist tax = the folio total, the
    # receivable is settled, and the card clearing holds what was paid.
    assert account_totals(entries) == {
        "1020": "324.00",
        "2010": "-28.90",
        "2100": "-6.00",
        "4000": "-245.46",
        "4010": "-43.64",
    }
    assert "Rossi" not in str(entries)  # no personal data in the ledger
    assert "Rossi" not in caplog.text
    assert "CA12345AB" not in caplog.text

    # The police records of that day's arrivals: leader (head of family) first.
    records = (
        await client.data(
            'query { alloggiatiRecords(date: "2025-07-01") { count records content } }'
        )
    )["alloggiatiRecords"]
    assert records["count"] == 3
    assert [len(r) for r in records["records"]] == [168, 168, 168]
    assert [r[:2] for r in records["records"]] == ["17", "19", "19"]
    assert records["records"][0][2:14] == "01/07/202503"
    assert records["records"][0][14:64].rstrip() == "Rossi"
    assert records["records"][0][-34:].rstrip() == "IDENTCA12345AB" + " " * 11 + "403015146"
    assert records["records"][1][-34:] == " " * 34  # members carry no document
    # A line break after every record but the last (the portal's file format).
    assert records["content"] == "\r\n".join(records["records"])

    istat = await client.data(
        'query { j: istatMonthly(month: "2025-07") { arrivals nights '
        "byResidence { residence arrivals nights } } "
        'f: istatMonthly(month: "2025-02") { arrivals nights byResidence { residence } } }'
    )
    assert istat["j"] == {
        "arrivals": 3,
        "nights": 9,
        "byResidence": [{"residence": "IT-MI", "arrivals": 3, "nights": 9}],
    }
    assert istat["f"] == {"arrivals": 0, "nights": 0, "byResidence": []}

    tax = (
        await client.data(
            'query { touristTaxReport(from: "2025-07-01", to: "2025-07-31") '
            "{ amount stays taxedGuestNights exemptGuestNights "
            "byMonth { month amount exemptAge } } }"
        )
    )["touristTaxReport"]
    assert tax == {
        "amount": "6.00",
        "stays": 1,
        "taxedGuestNights": 6,
        "exemptGuestNights": 3,
        "byMonth": [{"month": "2025-07", "amount": "6.00", "exemptAge": 3}],
    }


async def checked_in_booking(client: GraphQLClient, key: str = "book-1", **kw: Any) -> str:
    booking_id = str((await book(client, key, **kw))["id"])
    result = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": f"in-{key}", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "checkIn",
    )
    assert result["__typename"] == "Booking"
    return booking_id


async def test_twenty_concurrent_check_outs_one_wins(client: GraphQLClient) -> None:
    booking_id = await checked_in_booking(client)
    pay = {
        "idempotencyKey": "pay",
        "bookingId": booking_id,
        "method": "CASH",
        "amount": "276.00",
        "businessDate": "2025-07-04",
    }
    assert (await run(client, PAY, pay, "recordPayment"))["folio"]["balance"] == "0.00"

    async def check_out(n: int) -> str:
        result = await run(
            client,
            CHECK_OUT,
            {"idempotencyKey": f"out-{n}", "bookingId": booking_id, "businessDate": "2025-07-04"},
            "checkOut",
        )
        return str(result["__typename"])

    outcomes = await asyncio.gather(*(check_out(n) for n in range(20)))
    assert sorted(outcomes) == ["Booking"] + ["Conflict"] * 19
    entries = await entries_for(client, booking_id)
    assert [e["cause"] for e in entries].count(f"hotel:checkout:{booking_id}") == 1
    assert account_totals(entries) == {
        "1000": "276.00",
        "2010": "-24.54",
        "2100": "-6.00",
        "4000": "-245.46",
    }


async def test_two_desks_booking_overlapping_nights_one_wins(client: GraphQLClient) -> None:
    desk = client.as_role(Role.FRONT_DESK)
    first = booking_input("desk-a")
    second = booking_input("desk-b", arrival="2025-07-03", departure="2025-07-06")
    results = await asyncio.gather(
        run(client, CREATE, first, "createBooking"), run(desk, CREATE, second, "createBooking")
    )
    assert sorted(r["__typename"] for r in results) == ["Booking", "Conflict"]
    winner = next(r for r in results if r["__typename"] == "Booking")
    # A later attempt is refused with the night named, and nothing is stored.
    head = client.head()
    loser_input = second if winner["arrival"] == "2025-07-01" else first
    again = await run(client, CREATE, {**loser_input, "idempotencyKey": "desk-c"}, "createBooking")
    assert again["__typename"] == "Conflict"
    assert "room 105 is already booked for the night of 2025-07-03" in again["message"]
    assert client.head() == head
    # Cancelling frees the nights for another booking.
    cancelled = await run(
        client,
        CANCEL,
        {"idempotencyKey": "cancel", "bookingId": winner["id"], "businessDate": "2025-06-02"},
        "cancelBooking",
    )
    assert cancelled["status"] == "CANCELLED"
    rebooked = await run(
        client, CREATE, {**loser_input, "idempotencyKey": "desk-d"}, "createBooking"
    )
    assert rebooked["__typename"] == "Booking"
    occupancy = (
        await client.data(
            'query { occupancy(from: "2025-07-03", to: "2025-07-03") '
            "{ night roomsSold roomsAvailable guests occupancyPercent } }"
        )
    )["occupancy"]
    assert occupancy == [
        {
            "night": "2025-07-03",
            "roomsSold": 1,
            "roomsAvailable": 20,
            "guests": 3,
            "occupancyPercent": "5.0",
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"departure": "2025-07-01"}, "departure"),
        ({"departure": "2025-06-30"}, "departure"),
        ({"departure": "2025-08-15"}, "departure"),  # 45 nights > the 30 allowed
        ({"roomNumber": "999"}, "roomNumber"),
        ({"roomNumber": "Rossi"}, "roomNumber"),  # a name in the wrong box: not echoed
        ({"roomNumber": "101"}, "guests"),  # a single room for three
        ({"nightlyRate": "-90.00"}, "nightlyRate"),
        ({"nightlyRate": "0.00"}, "nightlyRate"),
        # Each night within the ceiling, the stay above it: check-out could never post.
        ({"nightlyRate": "9000000.00"}, "nightlyRate"),
        ({"deposit": "-10.00"}, "deposit"),
        ({"deposit": "500.00"}, "deposit"),  # more than the stay
        ({"guests": []}, "guests"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"guests": [adult(surname="Ro55i")]}, "guests[0].surname"),
        ({"guests": [adult(documentNumber=None)]}, "guests[0].documentNumber"),
        ({"guests": [adult(birthProvince=None)]}, "guests[0].birthProvince"),
        ({"guests": [adult(birthCountryCode=GERMANY)]}, "guests[0].birthMunicipalityCode"),
        ({"guests": [adult(birthDate="2026-01-01")]}, "guests[0].birthDate"),
        ({"guests": [adult(), {**adult(), "surname": "Bianchi"}]}, "guests[1].documentType"),
    ],
)
async def test_bad_bookings_get_a_typed_error_and_store_nothing(
    client: GraphQLClient,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, Any],
    field: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    head = client.head()
    result = await run(client, CREATE, booking_input(**overrides), "createBooking")
    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert client.head() == head
    # Personal data is neither echoed nor logged.
    for secret in ("Ro55i", "Rossi", "CA12345AB", "1980-04-12"):
        assert secret not in result["message"]
        assert secret not in caplog.text


@pytest.mark.parametrize("amount", [48.0, 48, "48.001", "1e3", "NaN"])
async def test_float_and_malformed_amounts_are_refused(
    client: GraphQLClient, amount: object
) -> None:
    booking_id = await checked_in_booking(client)
    head = client.head()
    body = await client.execute(
        CHARGE,
        {
            "input": {
                "idempotencyKey": "c",
                "bookingId": booking_id,
                "kind": "FOOD",
                "description": "Dinner",
                "amount": amount,
            }
        },
    )
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "BAD_REQUEST")
    assert client.head() == head


async def test_illegal_transitions_and_closed_folios(client: GraphQLClient) -> None:
    booking_id = str((await book(client))["id"])
    never_in = await run(
        client, CHECK_OUT, {"idempotencyKey": "o0", "bookingId": booking_id}, "checkOut"
    )
    assert never_in["__typename"] == "Conflict"
    assert "never checked in" in never_in["message"]
    early = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in-early", "bookingId": booking_id, "businessDate": "2025-06-30"},
        "checkIn",
    )
    assert early == {
        "__typename": "ValidationError",
        "field": "businessDate",
        "message": "check-in is on or after the arrival day",
    }
    await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "checkIn",
    )
    charge = {
        "idempotencyKey": "neg",
        "bookingId": booking_id,
        "kind": "BEVERAGE",
        "description": "Wine",
        "amount": "-5.00",
    }
    negative = await run(client, CHARGE, charge, "postCharge")
    assert (negative["__typename"], negative["field"]) == ("ValidationError", "amount")

    due = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o1", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    assert due["__typename"] == "BalanceDue"
    assert due["amountDue"] == "276.00"
    assert "276.00 EUR is still due" in due["message"]
    too_much = await run(
        client,
        PAY,
        {"idempotencyKey": "p0", "bookingId": booking_id, "method": "CASH", "amount": "300.00"},
        "recordPayment",
    )
    assert (too_much["__typename"], too_much["field"]) == ("ValidationError", "amount")
    await run(
        client,
        PAY,
        {"idempotencyKey": "p1", "bookingId": booking_id, "method": "CASH", "amount": "276.00"},
        "recordPayment",
    )
    await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o2", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    head = client.head()
    late_charge = await run(
        client, CHARGE, {**charge, "idempotencyKey": "late", "amount": "5.00"}, "postCharge"
    )
    assert late_charge["__typename"] == "Conflict"
    assert "CHECKED_OUT" in late_charge["message"]
    closed_payment = await run(
        client,
        PAY,
        {"idempotencyKey": "p2", "bookingId": booking_id, "method": "CASH", "amount": "1.00"},
        "recordPayment",
    )
    assert closed_payment["__typename"] == "Conflict"
    assert client.head() == head
    missing = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "x", "bookingId": "00000000-0000-0000-0000-000000000000"},
        "checkIn",
    )
    assert missing["__typename"] == "NotFound"
    garbage = await run(client, CHECK_IN, {"idempotencyKey": "y", "bookingId": "nope"}, "checkIn")
    assert (garbage["__typename"], garbage["field"]) == ("ValidationError", "bookingId")


async def test_retried_keys_change_nothing_twice(client: GraphQLClient) -> None:
    first = await book(client)
    head = client.head()
    assert await book(client) == first
    assert client.head() == head
    reused = await run(client, CREATE, booking_input(nightlyRate="95.00"), "createBooking")
    assert reused["__typename"] == "IdempotencyKeyReused"
    assert client.head() == head


async def test_cancellation_refunds_or_retains_the_deposit_per_policy(
    client: GraphQLClient,
) -> None:
    # Seven days' notice or more (the default policy): the deposit goes back.
    early = await book(client, "early", deposit="100.00", depositMethod="TRANSFER")
    cancelled = await run(
        client,
        CANCEL,
        {"idempotencyKey": "c1", "bookingId": early["id"], "businessDate": "2025-06-20"},
        "cancelBooking",
    )
    assert cancelled["folio"]["total"] == "0.00"
    assert cancelled["folio"]["balance"] == "0.00"
    assert [p["kind"] for p in cancelled["folio"]["payments"]] == ["DEPOSIT", "DEPOSIT_REFUND"]
    assert account_totals(await entries_for(client, early["id"])) == {}

    late = await book(client, "late", roomNumber="108", deposit="100.00")
    kept = await run(
        client,
        CANCEL,
        {"idempotencyKey": "c2", "bookingId": late["id"], "businessDate": "2025-06-28"},
        "cancelBooking",
    )
    assert kept["folio"]["lines"][0]["kind"] == "RETAINED_DEPOSIT"
    assert kept["folio"]["total"] == "100.00"
    assert kept["folio"]["balance"] == "0.00"
    assert account_totals(await entries_for(client, late["id"])) == {
        "1020": "100.00",
        "4030": "-100.00",
    }


async def test_a_deposit_that_comes_after_the_booking_is_held_and_applied(
    client: GraphQLClient,
) -> None:
    """A bank transfer arrives days after the booking: recorded before check-in it is
    a deposit (held on 2200), applied at check-out, refunded on an early cancellation
    the way it came; one method per booking."""
    booking = await book(client, "transfer")  # no deposit when booked on 06-01
    pay = {"idempotencyKey": "dep-1", "bookingId": booking["id"], "method": "TRANSFER",
           "amount": "100.00", "businessDate": "2025-06-05"}  # fmt: skip
    deposited = await run(client, PAY, pay, "recordPayment")
    assert deposited["__typename"] == "Booking", deposited
    assert deposited["deposit"] == "100.00"
    assert [(p["kind"], p["amount"]) for p in deposited["folio"]["payments"]] == [
        ("DEPOSIT", "100.00")
    ]
    assert account_totals(await entries_for(client, booking["id"])) == {
        "1010": "100.00",
        "2200": "-100.00",
    }
    head = client.head()
    for change, field in (
        ({"method": "CASH"}, "method"),  # a second deposit by another way
        ({"amount": "500.00"}, "amount"),  # beyond the stay's 276.00 still open
        ({"businessDate": "2025-05-31"}, "businessDate"),  # before the booking
        ({"businessDate": "2025-06-04"}, "businessDate"),  # before the first deposit
    ):
        refused = await run(client, PAY, {**pay, "idempotencyKey": "dep-x", **change},
                            "recordPayment")  # fmt: skip
        assert (refused["__typename"], refused.get("field")) == ("ValidationError", field)
    # Nor a cancellation dated before the deposit it gives back (2200 went negative).
    early = {"idempotencyKey": "c0", "bookingId": booking["id"], "businessDate": "2025-06-03"}
    refused = await run(client, CANCEL, early, "cancelBooking")
    assert (refused["__typename"], refused.get("field")) == ("ValidationError", "businessDate")
    assert client.head() == head
    cancelled = await run(
        client,
        CANCEL,
        {"idempotencyKey": "c", "bookingId": booking["id"], "businessDate": "2025-06-10"},
        "cancelBooking",
    )
    assert [p["kind"] for p in cancelled["folio"]["payments"]] == ["DEPOSIT", "DEPOSIT_REFUND"]
    assert account_totals(await entries_for(client, booking["id"])) == {}
    # Signed, the deposit and its refund read as money in and back, adding up to `paid`.
    signed = await client.data(
        "query($id: ID!) { booking(id: $id) { folio { paid payments { signedAmount } } } }",
        {"id": booking["id"]},
    )
    folio = signed["booking"]["folio"]
    amounts = [Decimal(p["signedAmount"]) for p in folio["payments"]]
    assert [str(a) for a in amounts] == ["100.00", "-100.00"]
    assert sum(amounts) == Decimal(folio["paid"])


async def test_no_show_takes_one_night_from_the_deposit(client: GraphQLClient) -> None:
    booking = await book(client, deposit="150.00", depositMethod="CARD")
    result = await run(
        client,
        NO_SHOW,
        {"idempotencyKey": "ns", "bookingId": booking["id"], "businessDate": "2025-07-02"},
        "markNoShow",
    )
    assert result["status"] == "NO_SHOW"
    assert result["folio"]["lines"] == [
        {
            "kind": "NO_SHOW_PENALTY",
            "description": "No-show penalty: 1 night(s)",
            "date": "2025-07-02",
            "amount": "90.00",
            "vatRate": None,
            "net": "90.00",
            "vat": "0.00",
        }
    ]
    assert result["folio"]["balance"] == "0.00"
    # 150.00 taken, 60.00 back on the card, 90.00 kept as a penalty outside VAT.
    assert account_totals(await entries_for(client, booking["id"])) == {
        "1020": "90.00",
        "4030": "-90.00",
    }
    free = await run(client, CREATE, booking_input("again"), "createBooking")
    assert free["__typename"] == "Booking"  # the nights were released


async def guest_from_abroad_checked_in(client: GraphQLClient, **overrides: Any) -> str:
    """One adult resident in Germany (taxed) in single room 101, 2025-07-01 to 07-04,
    checked in on arrival."""
    abroad: dict[str, Any] = {"residenceCountryCode": GERMANY, "residenceMunicipalityCode": None}
    return await checked_in_booking(
        client,
        guests=[adult(**abroad, residenceProvince=None)],
        roomNumber="101",
        **overrides,
    )


async def refund_and_check_out_after_one_night(
    client: GraphQLClient, booking_id: str, refund: str
) -> None:
    """A single guest in room 101 at 90.00 leaving on 2025-07-02: `refund` back on the
    card, then the check-out of one night (90.00 + 1.00 tax) with the folio settled,
    91.00 kept and the guest's receivable at zero."""
    refunded = await run(
        client,
        REFUND,
        {"idempotencyKey": "r", "bookingId": booking_id, "method": "CARD", "amount": refund},
        "recordRefund",
    )
    assert refunded["__typename"] == "Booking", refunded
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o2", "bookingId": booking_id, "businessDate": "2025-07-02"},
        "checkOut",
    )
    assert out["status"] == "CHECKED_OUT"
    assert out["folio"]["total"] == "91.00"
    assert out["folio"]["balance"] == "0.00"
    assert account_totals(await entries_for(client, booking_id)) == {
        "1020": "91.00",
        "2010": "-8.18",
        "2100": "-1.00",
        "4000": "-81.82",
    }


async def test_early_departure_charges_the_nights_stayed_and_frees_the_rest(
    client: GraphQLClient,
) -> None:
    booking_id = await guest_from_abroad_checked_in(client)
    await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CARD", "amount": "273.00"},
        "recordPayment",
    )
    # Leaving after one night: 90.00 + 1.00 tax is due; 182.00 goes back first.
    due = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o1", "bookingId": booking_id, "businessDate": "2025-07-02"},
        "checkOut",
    )
    assert due["__typename"] == "BalanceDue"
    assert due["amountDue"] == "-182.00"
    await refund_and_check_out_after_one_night(client, booking_id, "182.00")
    nights = (
        await client.data('query { occupancy(from: "2025-07-01", to: "2025-07-03") { roomsSold } }')
    )["occupancy"]
    assert [n["roomsSold"] for n in nights] == [1, 0, 0]
    istat = (
        await client.data(
            'query { istatMonthly(month: "2025-07") { byResidence { residence arrivals nights } } }'
        )
    )["istatMonthly"]
    assert istat["byResidence"] == [{"residence": GERMANY, "arrivals": 1, "nights": 1}]


async def test_early_departure_gives_back_the_deposit_above_the_nights_stayed(
    client: GraphQLClient,
) -> None:
    """Paid only by its deposit: after an early departure the excess of the deposit is
    refunded, then the guest checks out (the refund was once capped at what was paid
    since check-in, 0.00 here, and the guest could never check out)."""
    booking_id = await guest_from_abroad_checked_in(client, deposit="150.00", depositMethod="CARD")
    due = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o1", "bookingId": booking_id, "businessDate": "2025-07-02"},
        "checkOut",
    )
    assert due["amountDue"] == "-59.00"  # one night 90.00 + 1.00 tax, against 150.00
    too_much = await run(
        client,
        REFUND,
        {"idempotencyKey": "r0", "bookingId": booking_id, "method": "CARD", "amount": "150.01"},
        "recordRefund",
    )
    assert too_much["__typename"] == "ValidationError"
    assert too_much["field"] == "amount"
    # The deposit applied in full, the receivable back at zero, 91.00 kept.
    await refund_and_check_out_after_one_night(client, booking_id, "59.00")


async def test_a_late_arrival_pays_the_held_nights_but_tourist_tax_only_for_nights_stayed(
    client: GraphQLClient,
) -> None:
    """Two adults booked for three nights arrive on the third: the room was held, so
    the three nights are paid, but the tax is per guest per night stayed (2 guest-
    nights, not 6), as the municipality's return and ISTAT count them."""
    abroad: dict[str, Any] = {
        "residenceCountryCode": GERMANY,
        "residenceMunicipalityCode": None,
        "residenceProvince": None,
    }
    booking = await book(
        client, guests=[adult(**abroad), {**member("Bianchi", "Luca", "M", "1979-01-20"), **abroad}]
    )
    booking_id = booking["id"]
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-07-03"},
        "checkIn",
    )
    assert checked_in["folio"]["touristTax"] == "2.00"
    await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CARD", "amount": "272.00"},
        "recordPayment",
    )
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    assert out["status"] == "CHECKED_OUT"
    assert out["folio"]["total"] == "272.00"  # 3 x 90.00 + 2 x 1.00
    tax_lines = [line for line in out["folio"]["lines"] if line["kind"] == "TOURIST_TAX"]
    assert [line["description"] for line in tax_lines] == [
        "Tourist tax: 2 guest-night(s) at 1.00 EUR"
    ]
    tax = (
        await client.data(
            'query { touristTaxReport(from: "2025-07-01", to: "2025-07-31") '
            "{ amount taxedGuestNights exemptGuestNights } }"
        )
    )["touristTaxReport"]
    assert tax == {"amount": "2.00", "taxedGuestNights": 2, "exemptGuestNights": 0}


async def test_front_desk_facts_cannot_be_dated_after_today(client: GraphQLClient) -> None:
    """Back-dating is normal (yesterday's dinner posted this morning); a day after
    today is a mistyped year, which went to the ledger as it was."""
    from datetime import date, timedelta

    tomorrow = (date.today() + timedelta(days=2)).isoformat()  # whatever the zone
    booking_id = await checked_in_booking(client)
    head = client.head()
    attempts = [
        (
            CHARGE,
            {
                "idempotencyKey": "c",
                "bookingId": booking_id,
                "kind": "FOOD",
                "description": "Dinner",
                "amount": "20.00",
                "businessDate": tomorrow,
            },
            "postCharge",
        ),
        (
            PAY,
            {
                "idempotencyKey": "p",
                "bookingId": booking_id,
                "method": "CASH",
                "amount": "1.00",
                "businessDate": "9999-12-31",
            },
            "recordPayment",
        ),
        (
            CHECK_OUT,
            {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": tomorrow},
            "checkOut",
        ),
        (CREATE, booking_input("later", businessDate=tomorrow), "createBooking"),
    ]
    for document, value, field in attempts:
        result = await run(client, document, value, field)
        assert result["__typename"] == "ValidationError", (field, result)
        assert result["field"] == "businessDate"
    assert client.head() == head
    # Yesterday's dinner, today: still fine.
    dinner = await run(
        client, CHARGE, {**attempts[0][1], "businessDate": "2025-07-02"}, "postCharge"
    )
    assert dinner["__typename"] == "Booking", dinner


async def test_guests_pending_report_until_marked(client: GraphQLClient) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Rome")
    today = datetime.now(zone).date()
    stay = {
        "arrival": today.isoformat(),
        "departure": (today + timedelta(days=3)).isoformat(),
        "businessDate": today.isoformat(),
    }
    booking_id = str((await book(client, "today", **stay))["id"])
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in-today", "bookingId": booking_id, "businessDate": stay["arrival"]},
        "checkIn",
    )
    assert checked_in["__typename"] == "Booking", checked_in
    query = (
        "query($h: Int!) { alloggiatiPending(withinHours: $h) "
        "{ bookingId overdue deadline checkedInAt } }"
    )
    # Checked in just now for 3 nights: due within 24 h, not within the next 6 h.
    assert (await client.data(query, {"h": 6}))["alloggiatiPending"] == []
    pending = (await client.data(query, {"h": 24}))["alloggiatiPending"]
    assert [p["bookingId"] for p in pending] == [booking_id]
    assert pending[0]["overdue"] is False
    deadline = datetime.fromisoformat(pending[0]["deadline"])
    arrived = datetime.fromisoformat(pending[0]["checkedInAt"])
    assert deadline - arrived == timedelta(hours=24)
    assert abs(arrived - datetime.now(UTC)) < timedelta(minutes=5)

    # A check-in typed in long after its day: the deadline runs from that day (its
    # end, the latest the guests can have come), so it is overdue, not 24 h away.
    late = await checked_in_booking(client, "late")  # checked in for 2025-07-01
    pending = (await client.data(query, {"h": 0}))["alloggiatiPending"]
    assert [p["bookingId"] for p in pending] == [late]
    assert pending[0]["overdue"] is True
    assert datetime.fromisoformat(pending[0]["checkedInAt"]) == datetime(2025, 7, 2, tzinfo=zone)

    marked = await client.data(
        "mutation($input: MarkGuestsReportedInput!) { markGuestsReported(input: $input) "
        "{ __typename ... on BookingList { bookings { id } } } }",
        {
            "input": {
                "idempotencyKey": "rep",
                "bookingIds": [booking_id, late],
                "reportedAt": datetime.now(UTC).isoformat(),
            }
        },
    )
    assert marked["markGuestsReported"]["bookings"] == [{"id": booking_id}, {"id": late}]
    assert (await client.data(query, {"h": 48}))["alloggiatiPending"] == []


async def test_roles(client: GraphQLClient) -> None:
    volunteer = client.as_role(Role.VOLUNTEER, "till-1")
    body = await volunteer.execute(CREATE, {"input": booking_input()})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    auditor = client.as_role(Role.AUDITOR)
    assert (await auditor.execute(CREATE, {"input": booking_input()}))["errors"][0]["extensions"][
        "code"
    ] == "FORBIDDEN"
    report = await auditor.data('query { istatMonthly(month: "2025-07") { arrivals } }')
    assert report == {"istatMonthly": {"arrivals": 0}}
    anonymous = client.anonymous()
    body = await anonymous.execute('query { booking(id: "x") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    desk = client.as_role(Role.FRONT_DESK)
    created = await run(desk, CREATE, booking_input(), "createBooking")
    assert created["__typename"] == "Booking"
    policy = await desk.execute(
        'mutation { defineRoom(input: {idempotencyKey: "r", number: "301", roomType: "DOUBLE", '
        'capacity: 2, nightlyRate: "80.00", effectiveFrom: "2025-01-01"}) { __typename } }'
    )
    assert policy["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_configuration_changes_take_effect_from_their_date(client: GraphQLClient) -> None:
    room = await client.data(
        'mutation { defineRoom(input: {idempotencyKey: "r", number: "301", roomType: "SUITE", '
        'capacity: 2, nightlyRate: "150.00", effectiveFrom: "2025-08-01"}) '
        "{ __typename ... on Room { number capacity nightlyRate } } }"
    )
    assert room["defineRoom"] == {
        "__typename": "Room",
        "number": "301",
        "capacity": 2,
        "nightlyRate": "150.00",
    }
    before = await run(
        client,
        CREATE,
        booking_input("b", roomNumber="301", guests=[adult()], nightlyRate=None),
        "createBooking",
    )
    assert (before["__typename"], before["field"]) == ("ValidationError", "roomNumber")
    policy = await client.data(
        "mutation($input: SetHotelPolicyInput!) { setHotelPolicy(input: $input) "
        "{ __typename ... on HotelPolicy { effectiveFrom touristTaxPerNight vatRoom } "
        "... on ValidationError { field message } } }",
        {
            "input": {
                "idempotencyKey": "p",
                "effectiveFrom": "2025-08-01",
                "hotelStars": 4,
                "municipalityCode": "403017028",
                "touristTaxByStars": [
                    {"stars": 3, "amount": "1.00"},
                    {"stars": 4, "amount": "1.50"},
                ],
                "touristTaxExemptUnderAge": 12,
                "touristTaxMaxNights": 2,
                "maxStayNights": 14,
                "cancellationFreeDays": 3,
                "noShowPenaltyNights": 1,
                "vatRoom": "10",
                "vatFood": "10",
                "vatBeverage": "10",
                "vatOther": "22",
            }
        },
    )
    assert policy["setHotelPolicy"] == {
        "__typename": "HotelPolicy",
        "effectiveFrom": "2025-08-01",
        "touristTaxPerNight": "1.50",
        "vatRoom": "10",
    }
    # A stay across the change: each night is taxed at the rate in force that night.
    across = await book(
        client,
        "a",
        arrival="2025-07-31",
        departure="2025-08-02",
        guests=[adult(), member("Rossi", "Paolo", "M", "1978-09-30")],
    )
    taxes = [line for line in across["folio"]["lines"] if line["kind"] == "TOURIST_TAX"]
    assert [(t["description"], t["amount"]) for t in taxes] == [
        ("Tourist tax: 2 guest-night(s) at 1.00 EUR", "2.00"),
        ("Tourist tax: 2 guest-night(s) at 1.50 EUR", "3.00"),
    ]
    # The new room from its date; only two nights taxed (the new cap), 4-star rate.
    suite = await book(
        client,
        "s",
        roomNumber="301",
        arrival="2025-08-01",
        departure="2025-08-04",
        guests=[adult()],
        nightlyRate=None,
    )
    assert suite["nightlyRate"] == "150.00"
    assert suite["folio"]["touristTax"] == "3.00"
    assert suite["folio"]["total"] == "453.00"
    too_long = await run(
        client,
        CREATE,
        booking_input("l", arrival="2025-08-10", departure="2025-08-30"),
        "createBooking",
    )
    assert too_long == {
        "__typename": "ValidationError",
        "field": "departure",
        "message": "a stay is at most 14 nights",
    }


async def test_a_mistaken_charge_is_voided_by_a_negative_line_and_a_reversal(
    client: GraphQLClient,
) -> None:
    booking_id = await checked_in_booking(client)
    charge = {"bookingId": booking_id, "businessDate": "2025-07-02"}
    await run(
        client,
        NUMBERED_CHARGE,
        {**charge, "idempotencyKey": "c1", "kind": "BEVERAGE", "description": "Minibar",
         "amount": "35.00"},
        "postCharge",
    )  # fmt: skip
    charged = await run(
        client,
        NUMBERED_CHARGE,
        {**charge, "idempotencyKey": "c2", "kind": "OTHER", "description": "Laundry",
         "amount": "12.20"},
        "postCharge",
    )  # fmt: skip
    numbers = {line["description"]: line["chargeNumber"] for line in charged["folio"]["lines"]}
    assert (numbers["Minibar"], numbers["Laundry"]) == (1, 2)
    assert all(line["chargeNumber"] is None for line in charged["folio"]["lines"][:-2])
    # 270.00 room + 6.00 tourist tax + 35.00 + 12.20
    assert charged["folio"]["total"] == "323.20"

    void = {
        "idempotencyKey": "v1",
        "bookingId": booking_id,
        "chargeNumber": 1,
        "reason": "Posted to the wrong room",
        "businessDate": "2025-07-03",
    }
    voided = await run(client, VOID, void, "voidCharge")
    assert voided["__typename"] == "Booking", voided
    folio = voided["folio"]
    assert folio["total"] == "288.20"
    assert folio["lines"][-1] == {
        "kind": "BEVERAGE",
        "description": "Void of charge 1: Posted to the wrong room",
        "date": "2025-07-03",
        "amount": "-35.00",
        "vatRate": "10",
        "net": "-31.82",
        "vat": "-3.18",
        "chargeNumber": 3,
    }
    minibar = next(line for line in folio["lines"] if line["description"] == "Minibar")
    assert (minibar["net"], minibar["vat"]) == ("31.82", "3.18")  # the void mirrors it exactly
    head = client.head()
    assert await run(client, VOID, void, "voidCharge") == voided  # a retry changes nothing
    assert client.head() == head

    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"idempotencyKey": "v2"}, "Conflict", "already voided"),
        ({"idempotencyKey": "v3", "chargeNumber": 3}, "Conflict", "cannot be voided"),
        ({"idempotencyKey": "v4", "chargeNumber": 9}, "NotFound", "no charge number 9"),
        ({"idempotencyKey": "v5", "chargeNumber": 2, "reason": "  "}, "ValidationError", ""),
        (
            {"idempotencyKey": "v6", "chargeNumber": 2, "businessDate": "2025-07-01"},
            "ValidationError",
            "cannot precede",
        ),
        (
            {"idempotencyKey": "v7", "chargeNumber": 2, "refundMethod": "CASH"},
            "ValidationError",
            "only after check-out",
        ),
    ]
    for change, typename, text in refusals:
        refused = await run(client, VOID, {**void, **change}, "voidCharge")
        assert refused["__typename"] == typename, (change, refused)
        assert text in refused.get("message", ""), refused
    assert client.head() == head
    # The ledger will not reverse the charge behind the folio's back.
    laundry_entry = next(
        n
        for n in (await client.data(JOURNAL))["journal"]["nodes"]
        if n["description"].endswith(f"{booking_id}: other charge 2")
    )
    by_hand = await client.data(
        """mutation R($input: ReverseJournalEntryInput!) { reverseJournalEntry(input: $input) {
          __typename ... on Conflict { message } } }""",
        {"input": {"idempotencyKey": "r1", "entryId": laundry_entry["id"],
                   "effectiveDate": "2025-07-03", "description": "Laundry by mistake"}},
    )  # fmt: skip
    assert by_hand["reverseJournalEntry"]["__typename"] == "Conflict"
    assert "voidCharge" in by_hand["reverseJournalEntry"]["message"]
    assert client.head() == head

    # Every euro once: the charge's entry and its reversal cancel out in the ledger,
    # and the receivable is zero once the corrected folio is paid and closed.
    await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CARD", "amount": "288.20",
         "businessDate": "2025-07-04"},
        "recordPayment",
    )  # fmt: skip
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    assert out["status"] == "CHECKED_OUT"
    journal = (await client.data(JOURNAL))["journal"]["nodes"]
    mine = [n for n in journal if booking_id in n["description"]]
    minibar_entry = next(n for n in mine if n["description"].endswith("beverage charge 1"))
    reversal = next(n for n in mine if n["description"].endswith("void of charge 1"))
    assert reversal["effectiveDate"] == "2025-07-03"
    assert "Posted to the wrong room" not in str(mine)  # the reason stays out of the ledger
    swapped = [
        {"account": line["account"], "debit": line["credit"], "credit": line["debit"]}
        for line in minibar_entry["lines"]
    ]
    assert sorted(reversal["lines"], key=str) == sorted(swapped, key=str)
    totals = account_totals(mine)
    assert "1100" not in totals  # the guest receivable nets to zero
    # An auditor going from the booking to its entries gets the void's reversal too
    # (its cause names the charge's entry, not the booking).
    by_cause = await client.as_role(Role.AUDITOR).data(
        "query($c: String!) { ledgerEntriesByCause(cause: $c) "
        "{ nodes { id lines { account debit credit } } } }",
        {"c": booking_id},
    )
    found = by_cause["ledgerEntriesByCause"]["nodes"]
    assert reversal["id"] in {entry["id"] for entry in found}
    assert "1100" not in account_totals(found)
    revenue_and_taxes = sum(
        -Decimal(amount) for account, amount in totals.items() if account[0] in "24"
    )
    assert revenue_and_taxes == Decimal("288.20")  # what the corrected folio charged

    # After check-out the laundry turns out to be someone else's: a credit note, the
    # void and its refund in one step; the folio stays settled.
    late = {**void, "idempotencyKey": "late", "chargeNumber": 2, "businessDate": "2025-07-06"}
    no_method = await run(client, VOID, late, "voidCharge")
    assert no_method["__typename"] == "ValidationError"
    assert no_method["field"] == "refundMethod"
    credited = await run(client, VOID, {**late, "refundMethod": "CARD"}, "voidCharge")
    assert credited["__typename"] == "Booking", credited
    assert credited["status"] == "CHECKED_OUT"
    assert credited["folio"]["lines"][-1]["amount"] == "-12.20"
    assert (credited["folio"]["total"], credited["folio"]["paid"]) == ("276.00", "276.00")
    assert credited["folio"]["balance"] == "0.00"
    assert credited["folio"]["payments"][-1] == {
        "kind": "REFUND", "method": "CARD", "amount": "12.20", "date": "2025-07-06",
    }  # fmt: skip
    journal = (await client.data(JOURNAL))["journal"]["nodes"]
    mine = [n for n in journal if booking_id in n["description"]]
    totals = account_totals(mine)
    assert "1100" not in totals  # still settled
    assert totals["1020"] == "276.00"  # the card clearing holds what was kept
    assert sum(
        -Decimal(amount) for account, amount in totals.items() if account[0] in "24"
    ) == Decimal("276.00")


async def test_two_desks_voiding_the_same_charge_one_wins(client: GraphQLClient) -> None:
    booking_id = await checked_in_booking(client)
    await run(
        client,
        CHARGE,
        {"idempotencyKey": "c1", "bookingId": booking_id, "kind": "FOOD",
         "description": "Lunch", "amount": "20.00", "businessDate": "2025-07-02"},
        "postCharge",
    )  # fmt: skip
    void = {
        "bookingId": booking_id,
        "chargeNumber": 1,
        "reason": "Duplicate",
        "businessDate": "2025-07-02",
    }
    results = await asyncio.gather(
        *(run(client, VOID, {**void, "idempotencyKey": f"v{n}"}, "voidCharge") for n in range(4))
    )
    assert sorted(r["__typename"] for r in results) == [
        "Booking",
        "Conflict",
        "Conflict",
        "Conflict",
    ]
    journal = (await client.data(JOURNAL))["journal"]["nodes"]
    voids = [n for n in journal if n["description"].endswith(f"{booking_id}: void of charge 1")]
    assert len(voids) == 1


async def test_nights_before_the_tax_came_in_do_not_use_up_the_cap(
    client: GraphQLClient,
) -> None:
    """Review finding 1: ten nights from 28 May 2025, the tax in force from 1 June.
    1-5 June are taxed, 6 June is exempt under the cap of 5; 28-31 May are neither."""
    abroad: dict[str, Any] = {
        "residenceCountryCode": GERMANY,
        "residenceMunicipalityCode": None,
        "residenceProvince": None,
    }
    booking = await book(
        client,
        "cap",
        roomNumber="101",
        arrival="2025-05-28",
        departure="2025-06-07",
        businessDate="2025-05-01",
        guests=[adult(**abroad)],
    )
    assert booking["folio"]["touristTax"] == "5.00"
    taxes = [line for line in booking["folio"]["lines"] if line["kind"] == "TOURIST_TAX"]
    assert [(t["description"], t["date"]) for t in taxes] == [
        ("Tourist tax: 5 guest-night(s) at 1.00 EUR", "2025-06-01")
    ]
    booking_id = booking["id"]
    await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-05-28"},
        "checkIn",
    )
    paid = await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CARD", "amount": "905.00",
         "businessDate": "2025-06-07"},
        "recordPayment",
    )  # fmt: skip
    assert paid["folio"]["balance"] == "0.00", paid
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-06-07"},
        "checkOut",
    )
    assert out["folio"]["touristTax"] == "5.00"
    report = (
        await client.data(
            'query { touristTaxReport(from: "2025-06-01", to: "2025-06-30") '
            "{ amount taxedGuestNights byMonth { exemptCap } } }"
        )
    )["touristTaxReport"]
    assert report == {"amount": "5.00", "taxedGuestNights": 5, "byMonth": [{"exemptCap": 1}]}


async def test_a_void_after_check_out_refunds_only_by_a_method_that_took_the_money(
    client: GraphQLClient,
) -> None:
    """Review finding 2: the folio was paid in cash; a card refund of the voided dinner
    left the card clearing account at -40.00 for the booking."""
    booking_id = await guest_from_abroad_checked_in(client)
    await run(
        client,
        CHARGE,
        {"idempotencyKey": "c", "bookingId": booking_id, "kind": "FOOD",
         "description": "Dinner", "amount": "40.00", "businessDate": "2025-07-01"},
        "postCharge",
    )  # fmt: skip
    # 3 nights x 90.00 + 3 x 1.00 tax + 40.00
    await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CASH", "amount": "313.00",
         "businessDate": "2025-07-04"},
        "recordPayment",
    )  # fmt: skip
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-07-04"},
        "checkOut",
    )
    assert out["status"] == "CHECKED_OUT", out
    void = {"bookingId": booking_id, "chargeNumber": 1, "reason": "not eaten",
            "businessDate": "2025-07-05"}  # fmt: skip
    head = client.head()
    refused = await run(
        client, VOID, {**void, "idempotencyKey": "v1", "refundMethod": "CARD"}, "voidCharge"
    )
    assert refused == {
        "__typename": "ValidationError",
        "field": "refundMethod",
        "message": "CARD took 0.00 EUR of this stay's payments",
    }
    assert client.head() == head
    credited = await run(
        client, VOID, {**void, "idempotencyKey": "v2", "refundMethod": "CASH"}, "voidCharge"
    )
    assert credited["__typename"] == "Booking", credited
    assert credited["folio"]["payments"][-1]["method"] == "CASH"
    # The void's reversal is caused by the charge's entry: find it by description.
    journal = (await client.data(JOURNAL))["journal"]["nodes"]
    totals = account_totals([n for n in journal if booking_id in n["description"]])
    assert totals["1000"] == "273.00"  # the cash kept
    assert "1020" not in totals
    assert "1100" not in totals


async def test_a_late_arrival_staying_one_night_is_reported_within_six_hours(
    client: GraphQLClient,
) -> None:
    """Review finding 3: booked for three nights, the guest arrives on the last one:
    a stay of one night, 6 h to report it (as its Alloggiati record's days say)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Europe/Rome")).date()
    booking = await book(
        client,
        "late",
        arrival=(today - timedelta(days=2)).isoformat(),
        departure=(today + timedelta(days=1)).isoformat(),
        businessDate=(today - timedelta(days=2)).isoformat(),
    )
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking["id"], "businessDate": today.isoformat()},
        "checkIn",
    )
    assert checked_in["__typename"] == "Booking", checked_in
    pending = (
        await client.data(
            "{ alloggiatiPending(withinHours: 6) { bookingId nights checkedInAt deadline } }"
        )
    )["alloggiatiPending"]
    assert [(p["bookingId"], p["nights"]) for p in pending] == [(booking["id"], 1)]
    deadline = datetime.fromisoformat(pending[0]["deadline"])
    assert deadline - datetime.fromisoformat(pending[0]["checkedInAt"]) == timedelta(hours=6)
    records = (
        await client.data(
            "query($d: Date!) { alloggiatiRecords(date: $d) { records } }",
            {"d": today.isoformat()},
        )
    )["alloggiatiRecords"]["records"]
    assert {record[12:14] for record in records} == {"01"}  # days of stay: 1


async def test_the_report_time_keeps_its_instant_on_every_store(client: GraphQLClient) -> None:
    """Review finding 4: 18:00+01:00 was stored on SQLite as 18:00 and read as UTC."""
    from datetime import UTC, datetime

    booking_id = await checked_in_booking(client)  # checked in on 2025-07-01
    marked = await client.data(
        "mutation($input: MarkGuestsReportedInput!) { markGuestsReported(input: $input) "
        "{ __typename ... on BookingList { bookings { id guestsReportedAt } } } }",
        {
            "input": {
                "idempotencyKey": "rep",
                "bookingIds": [booking_id],
                "reportedAt": "2025-07-01T18:00:00+01:00",
            }
        },
    )
    expected = datetime(2025, 7, 1, 17, tzinfo=UTC)
    shown = marked["markGuestsReported"]["bookings"][0]["guestsReportedAt"]
    assert datetime.fromisoformat(shown) == expected
    read = await client.data(
        "query($id: ID!) { booking(id: $id) { guestsReportedAt } }", {"id": booking_id}
    )
    assert datetime.fromisoformat(read["booking"]["guestsReportedAt"]) == expected


async def test_cancellation_and_no_show_apply_the_terms_booked_under(
    client: GraphQLClient,
) -> None:
    """Review finding 5: booked on 2025-06-01 under 7 days' free cancellation and a
    one-night no-show penalty; from 2025-06-10 the hotel asks 30 days and two nights
    of new business. The bookings made before keep their terms."""
    cancelled_early = await book(client, "early", deposit="50.00", depositMethod="TRANSFER")
    absent = await book(client, "absent", roomNumber="108", deposit="200.00")
    tightened = await run(
        client,
        SET_POLICY,
        policy_input("p", "2025-06-10", cancellationFreeDays=30, noShowPenaltyNights=2),
        "setHotelPolicy",
    )
    assert tightened["__typename"] == "HotelPolicy", tightened
    cancelled = await run(
        client,
        CANCEL,
        {"idempotencyKey": "c", "bookingId": cancelled_early["id"], "businessDate": "2025-06-20"},
        "cancelBooking",
    )
    assert cancelled["folio"]["lines"] == []  # nothing retained: 11 days' notice >= 7
    assert [p["kind"] for p in cancelled["folio"]["payments"]] == ["DEPOSIT", "DEPOSIT_REFUND"]
    assert account_totals(await entries_for(client, cancelled_early["id"])) == {}
    no_show = await run(
        client,
        NO_SHOW,
        {"idempotencyKey": "ns", "bookingId": absent["id"], "businessDate": "2025-07-01"},
        "markNoShow",
    )
    assert [(line["description"], line["amount"]) for line in no_show["folio"]["lines"]] == [
        ("No-show penalty: 1 night(s)", "90.00")
    ]
    # New business after the change is held to the new terms.
    later = await book(client, "later", roomNumber="109", deposit="50.00",
                       businessDate="2025-06-15", arrival="2025-07-10",
                       departure="2025-07-12")  # fmt: skip
    kept = await run(
        client,
        CANCEL,
        {"idempotencyKey": "c2", "bookingId": later["id"], "businessDate": "2025-06-20"},
        "cancelBooking",
    )
    assert [line["kind"] for line in kept["folio"]["lines"]] == ["RETAINED_DEPOSIT"]


async def test_a_deposit_before_the_books_opened_names_the_business_date(
    settings: Settings,
) -> None:
    """Onboarding review: the refusal named `effectiveDate`, a field of a journal entry
    that createBooking's input does not have; the date the desk typed is businessDate."""
    opened = settings.model_copy(update={"books_opened_on": date(2025, 6, 10)})
    async with serving(opened) as anonymous:
        client = anonymous.as_role(Role.ADMIN)
        head = client.head()
        refused = await run(
            client,
            CREATE,
            booking_input("early", businessDate="2025-06-09", deposit="50.00",
                          depositMethod="CASH"),
            "createBooking",
        )  # fmt: skip
        assert refused["__typename"] == "ValidationError", refused
        assert refused["field"] == "businessDate"
        assert "before the books opened (2025-06-10" in refused["message"]
        assert client.head() == head


async def test_a_policy_without_a_tax_rate_for_its_own_category_is_refused(
    client: GraphQLClient,
) -> None:
    """Onboarding review: hotelStars 4 with rates for 3 stars only was accepted, and
    the tax in force became 0.00: under-collected, and the operator is liable."""
    head = client.head()
    refused = await run(
        client,
        SET_POLICY,
        policy_input("four", "2025-08-01", hotelStars=4,
                     touristTaxByStars=[{"stars": 3, "amount": "1.50"}]),
        "setHotelPolicy",
    )  # fmt: skip
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "touristTaxByStars")
    assert "no rate for the hotel's category (4 stars)" in refused["message"]
    assert client.head() == head
    # A municipality with no tax is said so, as 0.00 for the category.
    none = await run(
        client,
        SET_POLICY,
        policy_input("four-free", "2025-08-01", hotelStars=4,
                     touristTaxByStars=[{"stars": 4, "amount": "0.00"}]),
        "setHotelPolicy",
    )  # fmt: skip
    assert none["__typename"] == "HotelPolicy", none


async def test_a_new_vat_rate_is_set_with_its_account(client: GraphQLClient) -> None:
    """Review finding 6: a VAT rate with no account was refused with no way to give
    one. The admin opens the account in the ledger and names it in vatAccounts."""
    twelve = policy_input("v1", "2025-08-01", vatRoom="12")
    refused = await run(client, SET_POLICY, twelve, "setHotelPolicy")
    assert refused["__typename"] == "ValidationError"
    assert refused["field"] == "vatAccounts"
    assert "ROOM rate of 12%" in refused["message"]
    assert "vatAccounts" in refused["message"]

    for key, account, text in (
        ("v2", "2030", "not an open account"),  # not opened yet
        ("v3", "4000", "not a liability account"),
        # A liability, but the welfare fund's: VAT posted there would break its
        # "2400 = accrued - paid" with no hand entry allowed to mend it.
        ("v3b", "2400", "kept by the welfare fund; the hotel may not post to it"),
    ):
        wrong = {**twelve, "idempotencyKey": key,
                 "vatAccounts": [{"rate": "12", "account": account}]}  # fmt: skip
        result = await run(client, SET_POLICY, wrong, "setHotelPolicy")
        assert (result["__typename"], result["field"]) == ("ValidationError", "vatAccounts")
        assert text in result["message"], result
    opened = await client.data(
        'mutation { openAccount(input: {idempotencyKey: "open-2030", code: "2030", '
        'name: "VAT payable 12%", type: LIABILITY}) { __typename } }'
    )
    assert opened["openAccount"]["__typename"] == "Account"
    accepted = await run(
        client,
        SET_POLICY,
        {**twelve, "idempotencyKey": "v4", "vatAccounts": [{"rate": "12", "account": "2030"}]},
        "setHotelPolicy",
    )
    assert accepted["__typename"] == "HotelPolicy", accepted
    assert accepted["vatRoom"] == "12"
    assert {"rate": "12", "account": "2030"} in accepted["vatAccounts"]
    assert {"rate": "10", "account": "2010"} in accepted["vatAccounts"]

    # A stay in August is priced and posted at 12%.
    booking = await book(
        client, "aug", roomNumber="101", arrival="2025-08-01", departure="2025-08-02",
        guests=[adult()], nightlyRate="112.00",
    )  # fmt: skip
    room = booking["folio"]["lines"][0]
    assert (room["vatRate"], room["net"], room["vat"]) == ("12", "100.00", "12.00")
    booking_id = booking["id"]
    await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking_id, "businessDate": "2025-08-01"},
        "checkIn",
    )
    await run(
        client,
        PAY,
        {"idempotencyKey": "p", "bookingId": booking_id, "method": "CARD", "amount": "113.00",
         "businessDate": "2025-08-02"},
        "recordPayment",
    )  # fmt: skip
    out = await run(
        client,
        CHECK_OUT,
        {"idempotencyKey": "o", "bookingId": booking_id, "businessDate": "2025-08-02"},
        "checkOut",
    )
    assert out["__typename"] == "Booking", out
    assert account_totals(await entries_for(client, booking_id))["2030"] == "-12.00"


CLOSE_ACCOUNT = (
    "mutation($code: String!) { closeAccount(input: {idempotencyKey: $code, code: $code}) "
    "{ __typename ... on Account { isOpen } ... on ValidationError { field message } } }"
)


async def test_a_vat_account_in_force_cannot_be_closed_under_the_front_desk(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing an account is for good: closed while a policy posts its VAT there on a
    day facts can still be dated (yesterday's dinner, posted this morning, goes by
    yesterday's policy), every charge and check-out at that rate would be refused.
    Refused, saying why; once a policy naming another account is in force and the
    books are closed past the old one's last day, the old account closes."""
    today = pin_hotel_today(client, monkeypatch, "2025-07-01")
    for code in ("2030", "2031"):
        opened = await client.data(
            f'mutation {{ openAccount(input: {{idempotencyKey: "open-{code}", code: "{code}", '
            f'name: "VAT payable 12% ({code})", type: LIABILITY}}) {{ __typename }} }}'
        )
        assert opened["openAccount"]["__typename"] == "Account"
    for key, day, account in (("aug", "2025-08-01", "2030"), ("sep", "2025-09-01", "2031")):
        policy = policy_input(
            key, day, vatRoom="12", vatAccounts=[{"rate": "12", "account": account}]
        )
        assert (await run(client, SET_POLICY, policy, "setHotelPolicy"))[
            "__typename"
        ] == "HotelPolicy"

    head = client.head()
    # August's policy, not yet in force, will post there.
    refused = (await client.data(CLOSE_ACCOUNT, {"code": "2030"}))["closeAccount"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "code")
    assert "the hotel's policy from 2025-08-01 posts its 12% VAT to it" in refused["message"]
    assert "close the books" in refused["message"]
    today.move_to("2025-09-02")  # September's names 2031, but August's days are open
    again = (await client.data(CLOSE_ACCOUNT, {"code": "2030"}))["closeAccount"]
    assert again["__typename"] == "ValidationError", again
    assert client.head() == head

    closing = {"idempotencyKey": "close-august", "through": "2025-08-31"}
    closed_books = await client.data(
        "mutation($i: CloseBooksInput!) { closeBooks(input: $i) { __typename } }", {"i": closing}
    )
    assert closed_books["closeBooks"]["__typename"] == "BooksClosing", closed_books
    closed = (await client.data(CLOSE_ACCOUNT, {"code": "2030"}))["closeAccount"]
    assert closed == {"__typename": "Account", "isOpen": False}
    kept = (await client.data(CLOSE_ACCOUNT, {"code": "2031"}))["closeAccount"]
    assert kept["__typename"] == "ValidationError", kept


async def test_a_policy_decided_before_its_vat_account_was_closed_is_not_saved_after_it(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write skew: setHotelPolicy found its VAT account open, another process closed
    the account, then the policy was saved naming it: every charge at that rate from
    its first day would be refused for good. The policy's save sees the close."""
    pin_hotel_today(client, monkeypatch, "2025-07-01")
    opened = await client.data(
        'mutation { openAccount(input: {idempotencyKey: "open-2030", code: "2030", '
        'name: "VAT payable 12%", type: LIABILITY}) { __typename } }'
    )
    assert opened["openAccount"]["__typename"] == "Account"
    other_process = LedgerApplication(client.runtime.settings)  # its own cache, no hotel
    hotel = client.runtime.hotel
    check_vat_accounts = hotel._check_vat_accounts

    def checked_then_closed_elsewhere(policy: Any, chart: Any) -> None:
        check_vat_accounts(policy, chart)
        if other_process.chart().accounts["2030"].is_open:
            other_process.close_account(key="close-2030", actor="admin", code="2030")

    monkeypatch.setattr(hotel, "_check_vat_accounts", checked_then_closed_elsewhere)
    try:
        policy = policy_input(
            "aug", "2025-08-01", vatRoom="12", vatAccounts=[{"rate": "12", "account": "2030"}]
        )
        refused = await run(client, SET_POLICY, policy, "setHotelPolicy")
    finally:
        other_process.close()
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "vatAccounts")
    assert "'2030'" in refused["message"]
    versions = await client.data("{ hotelConfiguration { policies { effectiveFrom } } }")
    assert "2025-08-01" not in str(versions)


async def test_the_police_file_is_latin1_bytes_with_typed_apostrophes_made_plain(
    client: GraphQLClient,
) -> None:
    """Review formats: D'Amico typed with a curly apostrophe, as phones do, was refused
    with a message saying apostrophes are allowed; and the file existed only as text,
    which saved as UTF-8 makes Zoë's record 169 bytes, shifting the fields after it."""
    typed = [
        adult(surname="D\u2019Amico", given="Zoë"),
        member("Dell`Orto", "Jean\u2010Luc", "M", "2015-05-05"),
    ]
    booking = await book(client, "typed", roomNumber="105", guests=typed)
    checked_in = await run(
        client,
        CHECK_IN,
        {"idempotencyKey": "in", "bookingId": booking["id"], "businessDate": "2025-07-01"},
        "checkIn",
    )
    assert checked_in["__typename"] == "Booking", checked_in
    file = (
        await client.data(
            'query { alloggiatiRecords(date: "2025-07-01") '
            "{ records content contentLatin1Base64 } }"
        )
    )["alloggiatiRecords"]
    saved = base64.b64decode(file["contentLatin1Base64"])
    assert saved.split(b"\r\n") == [r.encode("latin-1") for r in file["records"]]
    assert [len(line) for line in saved.split(b"\r\n")] == [168, 168]
    leader, child = saved.split(b"\r\n")
    assert (leader[14:64].rstrip(), leader[64:94].rstrip()) == (b"D'Amico", "Zoë".encode("latin-1"))
    assert (child[14:64].rstrip(), child[64:94].rstrip()) == (b"Dell'Orto", b"Jean-Luc")


async def test_an_arrival_beyond_the_booking_horizon_is_a_mistyped_year(
    client: GraphQLClient,
) -> None:
    """Two years ahead by default, the admin's policy from its date: a booking for
    2062 (meant 2026) is refused and stores nothing; the horizon's last day is not."""
    head = client.head()
    typo = booking_input("typo", arrival="2062-07-01", departure="2062-07-04")
    refused = await run(client, CREATE, typo, "createBooking")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "arrival")
    assert "730 days" in refused["message"]
    assert client.head() == head
    # Booked on 2025-06-01: 2027-06-01 is day 730.
    await book(client, "far", arrival="2027-06-01", departure="2027-06-03")
    one_more = booking_input("too-far", arrival="2027-06-02", departure="2027-06-03")
    assert (await run(client, CREATE, one_more, "createBooking"))["field"] == "arrival"

    shorter = policy_input("p", "2025-09-01", bookingHorizonDays=365)
    policy = await client.data(
        "mutation($input: SetHotelPolicyInput!) { setHotelPolicy(input: $input) "
        "{ __typename ... on HotelPolicy { bookingHorizonDays } } }",
        {"input": shorter},
    )
    assert policy["setHotelPolicy"] == {"__typename": "HotelPolicy", "bookingHorizonDays": 365}
    late = booking_input("late", arrival="2026-10-01", departure="2026-10-02")
    refused = await run(client, CREATE, {**late, "businessDate": "2025-09-15"}, "createBooking")
    assert "365 days" in refused["message"]
    # The horizon in force on the day a booking is made, not on its arrival.
    early = await run(client, CREATE, {**late, "idempotencyKey": "early"}, "createBooking")
    assert early["__typename"] == "Booking"
    # Left out, the horizon stays as the version in force; out of range, refused.
    kept = policy_input("p2", "2025-10-01")
    again = await client.data(
        "mutation($input: SetHotelPolicyInput!) { setHotelPolicy(input: $input) "
        "{ __typename ... on HotelPolicy { bookingHorizonDays } } }",
        {"input": kept},
    )
    assert again["setHotelPolicy"]["bookingHorizonDays"] == 365
    for bad in (0, 3651):
        body = await client.data(
            "mutation($input: SetHotelPolicyInput!) { setHotelPolicy(input: $input) "
            "{ __typename ... on ValidationError { field } } }",
            {"input": policy_input(f"bad-{bad}", "2025-11-01", bookingHorizonDays=bad)},
        )
        assert body["setHotelPolicy"] == {
            "__typename": "ValidationError",
            "field": "bookingHorizonDays",
        }


async def test_an_unpaid_no_show_penalty_is_waived_and_the_books_close(
    client: GraphQLClient,
) -> None:
    """No deposit, one night's penalty due; 40.00 paid, the rest given up: the folio
    is settled, the receivable is back to zero and only what was paid stays revenue."""
    booking_id = str((await book(client, "book-ns", nightlyRate="90.00"))["id"])
    marked = await run(
        client,
        NO_SHOW,
        {"idempotencyKey": "ns", "bookingId": booking_id, "businessDate": "2025-07-01"},
        "markNoShow",
    )
    assert marked["folio"]["balance"] == "90.00"
    value = {"idempotencyKey": "pay", "bookingId": booking_id, "method": "CASH",
             "amount": "40.00", "businessDate": "2025-07-03"}  # fmt: skip
    assert (await run(client, PAY, value, "recordPayment"))["folio"]["balance"] == "50.00"

    head = client.head()
    waive = {"idempotencyKey": "w", "bookingId": booking_id, "reason": "Guest unreachable"}
    for bad, field in (
        ({"businessDate": "2025-07-02"}, "businessDate"),  # before the payment
        ({"reason": "  "}, "reason"),
    ):
        refused = await run(client, WAIVE, {**waive, "idempotencyKey": "bad", **bad},
                            "waiveNoShowPenalty")  # fmt: skip
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
    assert client.head() == head

    waived = await run(client, WAIVE, {**waive, "businessDate": "2025-07-10"}, "waiveNoShowPenalty")
    assert waived["status"] == "NO_SHOW"
    assert [(line["description"], line["amount"]) for line in waived["folio"]["lines"]] == [
        ("No-show penalty: 1 night(s)", "90.00"),
        ("Penalty waived: Guest unreachable", "-50.00"),
    ]
    assert (waived["folio"]["total"], waived["folio"]["paid"]) == ("40.00", "40.00")
    assert waived["folio"]["balance"] == "0.00"
    entries = await entries_for(client, booking_id)
    assert account_totals(entries) == {"1000": "40.00", "4030": "-40.00"}
    waiver_entry = [e for e in entries if "waived" in e["description"]]
    assert len(waiver_entry) == 1
    assert "unreachable" not in waiver_entry[0]["description"]

    # A retry changes nothing twice; a second waiver finds nothing due.
    head = client.head()
    again = await run(client, WAIVE, {**waive, "businessDate": "2025-07-10"}, "waiveNoShowPenalty")
    assert again == waived
    assert client.head() == head
    twice = await run(client, WAIVE, {**waive, "idempotencyKey": "w2"}, "waiveNoShowPenalty")
    assert twice["__typename"] == "Conflict"
    assert "no penalty is due" in twice["message"]
    # The read model agrees, before and after a rebuild.
    query = "query($id: ID!) { booking(id: $id) { folio { total balance lines { amount } } } }"
    read = (await client.data(query, {"id": booking_id}))["booking"]
    assert read["folio"]["balance"] == "0.00"
    assert [line["amount"] for line in read["folio"]["lines"]] == ["90.00", "-50.00"]
    client.runtime.projector.rebuild()
    assert (await client.data(query, {"id": booking_id}))["booking"] == read


async def test_only_a_no_show_with_something_due_can_have_its_penalty_waived(
    client: GraphQLClient,
) -> None:
    booking = await book(client, "kept", deposit="150.00", depositMethod="CARD")
    waive = {"idempotencyKey": "w", "bookingId": booking["id"], "reason": "Courtesy"}
    head = client.head()
    confirmed = await run(client, WAIVE, waive, "waiveNoShowPenalty")
    assert confirmed["__typename"] == "Conflict"
    assert client.head() == head
    value = {"idempotencyKey": "ns", "bookingId": booking["id"], "businessDate": "2025-07-02"}
    await run(client, NO_SHOW, value, "markNoShow")  # the deposit covered the penalty
    head = client.head()
    settled = await run(client, WAIVE, {**waive, "idempotencyKey": "w2"}, "waiveNoShowPenalty")
    assert settled["__typename"] == "Conflict"
    assert "no penalty is due" in settled["message"]
    assert client.head() == head

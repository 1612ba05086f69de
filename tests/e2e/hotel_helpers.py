"""GraphQL documents and inputs the hotel tests share (the front desk's calls)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from tests.e2e.conftest import GraphQLClient

BOOKING_FIELDS = """
    __typename
    ... on Booking {
      id roomNumber arrival departure nights status guestCount nightlyRate deposit
      checkedInOn checkedOutOn
      folio {
        lines { kind description date amount vatRate net vat }
        touristTax total paid balance roundingRule
        vatSummary { rate net vat gross }
        payments { kind method amount date }
      }
      guests { position recordType residence }
    }
    ... on ValidationError { field message }
    ... on NotFound { message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
    ... on BalanceDue { message amountDue }
"""


# The same, with each folio line's chargeNumber (what voidCharge takes).
NUMBERED_FIELDS = BOOKING_FIELDS.replace("vatRate net vat }", "vatRate net vat chargeNumber }")


def mutation(name: str, input_type: str, fields: str = BOOKING_FIELDS) -> str:
    return f"mutation Op($input: {input_type}!) {{ {name}(input: $input) {{ {fields} }} }}"


CREATE = mutation("createBooking", "CreateBookingInput")
CHECK_IN = mutation("checkIn", "CheckInInput")
CHARGE = mutation("postCharge", "PostChargeInput")
PAY = mutation("recordPayment", "RecordPaymentInput")
REFUND = mutation("recordRefund", "RecordRefundInput")
VOID = mutation("voidCharge", "VoidChargeInput", NUMBERED_FIELDS)
NUMBERED_CHARGE = mutation("postCharge", "PostChargeInput", NUMBERED_FIELDS)
CHECK_OUT = mutation("checkOut", "CheckOutInput")
CANCEL = mutation("cancelBooking", "CancelBookingInput")
NO_SHOW = mutation("markNoShow", "MarkNoShowInput")
WAIVE = mutation("waiveNoShowPenalty", "WaiveNoShowPenaltyInput")


class HotelToday:
    """The hotel application's calendar day, pinned by a test and moved as its story
    goes. The hotel tests date their stays in 2025, but undoCheckIn and a changeStay
    in house are judged on the real day too: their clock follows the business dates
    (never before one of them: a business date after today is refused)."""

    def __init__(self, day: str) -> None:
        self.day = date.fromisoformat(day)

    def __call__(self) -> date:
        return self.day

    def move_to(self, day: str) -> None:
        self.day = date.fromisoformat(day)


def pin_hotel_today(client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, day: str) -> HotelToday:
    """Make `day` the hotel application's today (every role's client shares it)."""
    today = HotelToday(day)
    monkeypatch.setattr(client.runtime.hotel, "today", today)
    return today


MARK_REPORTED = """
mutation M($input: MarkGuestsReportedInput!) { markGuestsReported(input: $input) {
  __typename } }
"""


async def mark_reported(client: GraphQLClient, booking_id: str, at: datetime) -> None:
    """Alloggiati Web accepted the booking's guests at `at`."""
    value = {"idempotencyKey": f"reported-{booking_id}", "bookingIds": [booking_id],
             "reportedAt": at.isoformat()}  # fmt: skip
    marked = await client.data(MARK_REPORTED, {"input": value})
    assert marked["markGuestsReported"]["__typename"] == "BookingList", marked


JOURNAL = """
query J($from: Date, $to: Date, $after: String) {
  journal(from: $from, to: $to, first: 500, after: $after) {
    nodes { id effectiveDate description cause lines { account debit credit } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ITALY = "100000100"
MILANO = "403015146"
GERMANY = "100000216"
BRENO = "403017028"


def adult(surname: str = "Rossi", given: str = "Maria", **overrides: Any) -> dict[str, Any]:
    guest: dict[str, Any] = {
        "surname": surname,
        "givenName": given,
        "sex": "F",
        "birthDate": "1980-04-12",
        "birthCountryCode": ITALY,
        "birthMunicipalityCode": MILANO,
        "birthProvince": "MI",
        "citizenshipCode": ITALY,
        "residenceCountryCode": ITALY,
        "residenceMunicipalityCode": MILANO,
        "residenceProvince": "MI",
        "documentType": "IDENT",
        "documentNumber": "CA12345AB",
        "documentIssuePlaceCode": MILANO,
    }
    guest.update(overrides)
    return guest


def member(surname: str, given: str, sex: str, birth: str) -> dict[str, Any]:
    return {
        "surname": surname,
        "givenName": given,
        "sex": sex,
        "birthDate": birth,
        "birthCountryCode": ITALY,
        "birthMunicipalityCode": MILANO,
        "birthProvince": "MI",
        "citizenshipCode": ITALY,
        "residenceCountryCode": ITALY,
        "residenceMunicipalityCode": MILANO,
        "residenceProvince": "MI",
    }


def family() -> list[dict[str, Any]]:
    """Two adults and a child of seven (under the tourist tax's age limit of 14)."""
    return [
        adult(),
        member("Rossi", "Paolo", "M", "1978-09-30"),
        member("Rossi", "Giulia", "F", "2018-05-05"),
    ]


def booking_input(key: str = "book-1", **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "idempotencyKey": key,
        "roomNumber": "105",  # a triple
        "arrival": "2025-07-01",
        "departure": "2025-07-04",
        "guests": family(),
        "nightlyRate": "90.00",
        "businessDate": "2025-06-01",
    }
    value.update(overrides)
    return value


async def run(
    client: GraphQLClient, document: str, value: dict[str, Any], field: str
) -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(document, {"input": value}))[field]
    return result


async def book(client: GraphQLClient, key: str = "book-1", **overrides: Any) -> dict[str, Any]:
    result = await run(client, CREATE, booking_input(key, **overrides), "createBooking")
    assert result["__typename"] == "Booking", result
    return result


async def entries_for(client: GraphQLClient, booking_id: str) -> list[dict[str, Any]]:
    """Every journal entry caused by this booking (the cause names it)."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.data(JOURNAL, {"after": after}))["journal"]
        out.extend(n for n in page["nodes"] if booking_id in n["cause"])
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def account_totals(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Net per account over the entries, in cents (debit positive)."""
    from decimal import Decimal

    totals: dict[str, Decimal] = {}
    for entry in entries:
        for line in entry["lines"]:
            net = Decimal(line["debit"]) - Decimal(line["credit"])
            totals[line["account"]] = totals.get(line["account"], Decimal(0)) + net
    return {account: f"{value:.2f}" for account, value in sorted(totals.items()) if value}


SET_POLICY = mutation(
    "setHotelPolicy",
    "SetHotelPolicyInput",
    """__typename
    ... on HotelPolicy { effectiveFrom cancellationFreeDays noShowPenaltyNights vatRoom
                         vatAccounts { rate account } }
    ... on ValidationError { field message }""",
)


def policy_input(key: str, effective_from: str, **overrides: Any) -> dict[str, Any]:
    """setHotelPolicy's input: the seeded Breno policy, changed by `overrides`."""
    value: dict[str, Any] = {
        "idempotencyKey": key,
        "effectiveFrom": effective_from,
        "hotelStars": 3,
        "municipalityCode": BRENO,
        "touristTaxByStars": [
            {"stars": 1, "amount": "1.00"},
            {"stars": 2, "amount": "1.00"},
            {"stars": 3, "amount": "1.00"},
            {"stars": 4, "amount": "1.50"},
            {"stars": 5, "amount": "2.00"},
        ],
        "touristTaxExemptUnderAge": 14,
        "touristTaxMaxNights": 5,
        "maxStayNights": 30,
        "cancellationFreeDays": 7,
        "noShowPenaltyNights": 1,
        "vatRoom": "10",
        "vatFood": "10",
        "vatBeverage": "10",
        "vatOther": "22",
    }
    value.update(overrides)
    return value

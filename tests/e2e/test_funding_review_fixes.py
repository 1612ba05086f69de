"""The funding review's findings on reception contracts, through GraphQL on both stores:
what was accepted and should not have been is refused with nothing stored, and a retry
answers what its own request did."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

import services.ledger.funding as funding_module
from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_graphql_funding import (
    CONTINUE_NUMBERING,
    ERRORS,
    INVOICE,
    REGISTER,
    contract_input,
    presence,
    trial,
)

PROFILE = f"""
mutation($input: SetInvoicingProfileInput!) {{ setInvoicingProfile(input: $input) {{
  __typename ... on InvoicingProfile {{ name vatNumber taxCode taxRegime iban }} {ERRORS}
}} }}
"""
ADDRESS = {
    "street": "Via Mazzini 12",
    "postcode": "25043",
    "municipality": "Breno",
    "province": "BS",
}
IBAN = "IT60X0542811101000000123456"


async def set_profile(
    client: GraphQLClient, key: str, name: str, iban: str | None
) -> dict[str, Any]:
    value = {
        "idempotencyKey": key,
        "name": name,
        "vatNumber": "03012345678",
        "taxRegime": "RF01",
        "address": ADDRESS,
        "iban": iban,
    }
    answer: dict[str, Any] = (await client.data(PROFILE, {"input": value}))["setInvoicingProfile"]
    return answer


async def register(client: GraphQLClient) -> str:
    result = (await client.data(REGISTER, {"input": contract_input()}))["registerContract"]
    assert result["__typename"] == "Contract", result
    return str(result["id"])


async def invoice(
    client: GraphQLClient, key: str, contract_id: str, month: str, issued: str | None
) -> dict[str, Any]:
    value = {"idempotencyKey": key, "contractId": contract_id, "month": month}
    if issued is not None:
        value["issueDate"] = issued
    answer: dict[str, Any] = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
    return answer


async def carry_on(client: GraphQLClient, key: str, last_number: int, last_issued_on: str) -> Any:
    value = {
        "idempotencyKey": key,
        "year": 2025,
        "lastNumber": last_number,
        "lastIssuedOn": last_issued_on,
    }
    return (await client.data(CONTINUE_NUMBERING, {"input": value}))["continueInvoiceNumbering"]


def pin_today(client: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> Callable[[date], None]:
    """The funding service's calendar day, set by the test (what "future" means)."""
    today = [date(2000, 1, 1)]
    monkeypatch.setattr(client.runtime.funding, "today", lambda: today[0])

    def move_to(day: date) -> None:
        today[0] = day

    return move_to


async def test_a_month_is_invoiced_from_the_next_months_first_day_not_on_its_last(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: on 31 March, March was invoiced (the default issue date is today), which
    closed its presence register: the 31st's presence could then never be recorded, nor
    billed. A month is over, and can be invoiced, from the next month's first day."""
    move_to = pin_today(client, monkeypatch)
    move_to(date(2025, 3, 31))
    await set_profile(client, "profile", "K-Pax", None)
    contract_id = await register(client)
    for day in ("2025-03-01", "2025-03-15", "2025-03-30"):
        assert (await presence(client, contract_id, day, 14))["revision"] == 1

    head = client.head()
    for key, issue_date in (("on-last-day", None), ("dated-last-day", "2025-03-31")):
        refused = await invoice(client, key, contract_id, "2025-03", issue_date)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "issueDate")
        assert "2025-03 is not over on 2025-03-31" in refused["message"]
        assert "invoiced from 2025-04-01" in refused["message"]
    assert client.head() == head  # no invoice, no number, no entry

    # The last day's presence is recorded, and corrected, on that day.
    assert (await presence(client, contract_id, "2025-03-31", 14))["revision"] == 1
    assert (await presence(client, contract_id, "2025-03-31", 13))["revision"] == 2

    move_to(date(2025, 4, 1))
    issued = await invoice(client, "invoice-march", contract_id, "2025-03", None)
    assert issued["__typename"] == "ContractInvoice", issued
    # 14 x 3 + 13 = 55 presence days: 55 x 32.31 = 1,777.05 net, VAT 5% 88.85, pocket
    # money 55 x 2.50 = 137.50; total 2,003.40, of which the Prefecture pays 1,914.55.
    assert {k: issued[k] for k in ("number", "presenceDays", "net", "total", "payable")} == {
        "number": "PA-2025-0001",
        "presenceDays": 55,
        "net": "1777.05",
        "total": "2003.40",
        "payable": "1914.55",
    }
    assert (await trial(client, "2025-04-01"))["1110"] == ("1914.55", "0.00")

    head = client.head()
    closed = await presence(client, contract_id, "2025-03-31", 12)
    assert closed["__typename"] == "Conflict", closed
    assert "already invoiced" in closed["message"]
    assert client.head() == head


async def test_a_retried_profile_answers_the_profile_it_set_not_another_admins_later_one(
    client: GraphQLClient,
) -> None:
    """Review: admin A sets the profile with an IBAN, admin B sets it again without
    one; A's retry (same key, same input) answered B's profile as A's (no IBAN). It
    answers what A's request set, stores nothing, and B's profile stays in force."""
    admin_b = client.as_person(Role.ADMIN)
    first = await set_profile(client, "profile-a", "K-Pax Onlus", IBAN)
    assert first == {
        "__typename": "InvoicingProfile",
        "name": "K-Pax Onlus",
        "vatNumber": "03012345678",
        "taxCode": None,
        "taxRegime": "RF01",
        "iban": IBAN,
    }
    later = await set_profile(admin_b, "profile-b", "K-Pax Cooperativa Sociale", None)
    assert (later["name"], later["iban"]) == ("K-Pax Cooperativa Sociale", None)

    head = client.head()
    assert await set_profile(client, "profile-a", "K-Pax Onlus", IBAN) == first
    assert client.head() == head

    # The retry changed nothing: an invoice issued now carries B's details.
    contract_id = await register(client)
    assert (await presence(client, contract_id, "2025-03-01", 14))["revision"] == 1
    issued = await invoice(client, "invoice", contract_id, "2025-03", "2025-04-01")
    assert issued["__typename"] == "ContractInvoice", issued
    assert "<Denominazione>K-Pax Cooperativa Sociale</Denominazione>" in issued["xml"]
    assert "<IBAN>" not in issued["xml"]


async def test_a_retried_numbering_continuation_answers_what_it_set_after_invoices_moved_on(
    client: GraphQLClient,
) -> None:
    """Review: after numbering went on from 57 and June was invoiced as PA-2025-0058,
    a retry of the continuation answered last number 58, next PA-2025-0059, as if it
    had set those. It answers what it set, and stores nothing."""
    carried = await carry_on(client, "carry-on", 57, "2025-06-20")
    assert carried == {
        "__typename": "InvoiceNumbering",
        "year": 2025,
        "lastNumber": 57,
        "lastIssuedOn": "2025-06-20",
        "nextInvoiceNumber": "PA-2025-0058",
    }
    await set_profile(client, "profile", "K-Pax", None)
    contract_id = await register(client)
    assert (await presence(client, contract_id, "2025-06-01", 14))["revision"] == 1
    issued = await invoice(client, "june", contract_id, "2025-06", "2025-07-01")
    assert issued["number"] == "PA-2025-0058", issued

    head = client.head()
    assert await carry_on(client, "carry-on", 57, "2025-06-20") == carried
    assert client.head() == head
    # A new continuation is still refused: the year's numbering is this system's.
    late = await carry_on(client, "carry-on-again", 60, "2025-06-30")
    assert late["__typename"] == "Conflict", late
    assert client.head() == head


async def test_claims_stored_before_answer_a_retry_with_the_state_now(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim stored before claims kept their result (no state in its reference)
    answers a retry as it always did: with the profile and the numbering as they are."""
    with monkeypatch.context() as before:
        before.setattr(funding_module, "ref_with_state", lambda ref, _state: dict(ref))
        await set_profile(client, "profile-a", "K-Pax Onlus", IBAN)
        assert (await carry_on(client, "carry-on", 57, "2025-06-20"))["lastNumber"] == 57
    await set_profile(client, "profile-b", "K-Pax Cooperativa Sociale", None)
    contract_id = await register(client)
    assert (await presence(client, contract_id, "2025-06-01", 14))["revision"] == 1
    assert (await invoice(client, "june", contract_id, "2025-06", "2025-07-01"))[
        "number"
    ] == "PA-2025-0058"

    head = client.head()
    retried = await set_profile(client, "profile-a", "K-Pax Onlus", IBAN)
    assert (retried["name"], retried["iban"]) == ("K-Pax Cooperativa Sociale", None)
    assert await carry_on(client, "carry-on", 57, "2025-06-20") == {
        "__typename": "InvoiceNumbering",
        "year": 2025,
        "lastNumber": 58,
        "lastIssuedOn": "2025-07-01",
        "nextInvoiceNumber": "PA-2025-0059",
    }
    assert client.head() == head

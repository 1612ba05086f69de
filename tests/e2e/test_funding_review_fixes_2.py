"""Funding fixes, on both stores: an e-invoice states a service period within the
contract's term; a grant's second cut is refused as a second cut whatever its date;
a month typed as December 9999 is a typed refusal, not an internal error."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_graphql_funding import (
    AWARD,
    INVOICE,
    PROFILE,
    REGISTER,
    contract_input,
    presence,
)

REDUCE = (
    "mutation($input: ReduceGrantInput!) { reduceGrant(input: $input) "
    "{ __typename ... on Grant { awarded } ... on ValidationError { field message } "
    "... on Conflict { message } } }"
)


async def _contract(client: GraphQLClient, **overrides: Any) -> str:
    await client.data(PROFILE)
    registered = (await client.data(REGISTER, {"input": contract_input(**overrides)}))[
        "registerContract"
    ]
    assert registered["__typename"] == "Contract", registered
    return str(registered["id"])


async def _invoice(client: GraphQLClient, contract_id: str, month: str, issued: str) -> Any:
    value = {"idempotencyKey": f"inv-{month}", "contractId": contract_id, "month": month,
             "issueDate": issued}  # fmt: skip
    return await client.execute(INVOICE, {"input": value})


async def test_the_e_invoice_period_stays_within_the_contract_term(client: GraphQLClient) -> None:
    """A contract from 10 March to 20 April 2025 was invoiced for 1-31 March and 1-30
    April: days it did not cover (recordPresence refuses them). Issued, an invoice is
    never issued again."""
    contract_id = await _contract(client, startDate="2025-03-10", endDate="2025-04-20")
    assert (await presence(client, contract_id, "2025-03-10", 4))["__typename"] == "PresenceRecord"
    assert (await presence(client, contract_id, "2025-04-20", 4))["__typename"] == "PresenceRecord"
    march = (await _invoice(client, contract_id, "2025-03", "2025-04-01"))["data"]
    april = (await _invoice(client, contract_id, "2025-04", "2025-05-02"))["data"]
    march_xml, april_xml = march["invoiceContract"]["xml"], april["invoiceContract"]["xml"]
    assert "<DataInizioPeriodo>2025-03-10</DataInizioPeriodo>" in march_xml
    assert "<DataFinePeriodo>2025-03-31</DataFinePeriodo>" in march_xml
    assert "<DataInizioPeriodo>2025-04-01</DataInizioPeriodo>" in april_xml
    assert "<DataFinePeriodo>2025-04-20</DataFinePeriodo>" in april_xml


async def test_a_month_typed_as_december_9999_is_refused_on_a_field(client: GraphQLClient) -> None:
    contract_id = await _contract(client)
    head = client.head()
    body = await _invoice(client, contract_id, "9999-12", "2025-04-01")
    assert "errors" not in body, body["errors"]
    refused = body["data"]["invoiceContract"]
    assert refused["__typename"] == "ValidationError", refused
    assert client.head() == head


async def test_a_second_cut_is_refused_as_one_whatever_its_date(client: GraphQLClient) -> None:
    """A second cut dated before the first was told to change its date; re-dated, it
    was then refused as a second cut (a grant is reduced at most once)."""
    award = {"idempotencyKey": "g", "funder": "Regione Lombardia", "purpose": "Housing",
             "amount": "20000.00", "awardedOn": "2025-01-10",
             "tranches": [{"amount": "10000.00", "condition": "Start"},
                          {"amount": "10000.00", "condition": "Cost report"}]}  # fmt: skip
    grant = (await client.data(AWARD, {"input": award}))["awardGrant"]

    async def cut(key: str, day: str, reported: str) -> dict[str, Any]:
        value = {"idempotencyKey": key, "grantId": grant["id"], "budgetedCosts": "40000.00",
                 "reportedCosts": reported, "date": day}  # fmt: skip
        answer: dict[str, Any] = (await client.data(REDUCE, {"input": value}))["reduceGrant"]
        return answer

    assert (await cut("cut-1", "2025-10-15", "30000.00"))["awarded"] == "15000.00"
    head = client.head()
    for key, day in (("cut-2", "2025-10-01"), ("cut-3", "2025-10-20")):
        second = await cut(key, day, "35000.00")
        assert second["__typename"] == "Conflict", second
        assert "already reduced on 2025-10-15" in second["message"]
    assert client.head() == head


CLOSE_ACCOUNT = (
    "mutation($c: String!) { closeAccount(input: {idempotencyKey: $c, code: $c}) "
    "{ __typename ... on ValidationError { field message } } }"
)


async def test_an_account_the_funding_commands_post_to_is_not_closed(client: GraphQLClient) -> None:
    """2020 (VAT at 5%) nets to zero under split payment and 2300 with no advance held,
    so they looked closable; closed (for good), every later invoice or tranche receipt
    was refused on a journal posting the admin never sent."""
    head = client.head()
    for code in ("2020", "2300", "4300"):
        refused = (await client.data(CLOSE_ACCOUNT, {"c": code}))["closeAccount"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "code")
        assert "contract invoices post to it" in refused["message"]
    assert client.head() == head
    # An account no context posts to on its own closes as before.
    opened = await client.data(
        'mutation { openAccount(input: {idempotencyKey: "o", code: "6990", '
        'name: "Sundry", type: EXPENSE}) { __typename } }'
    )
    assert opened["openAccount"]["__typename"] == "Account"
    closed = (await client.data(CLOSE_ACCOUNT, {"c": "6990"}))["closeAccount"]
    assert closed["__typename"] == "Account"

"""The ledger through GraphQL over HTTP, as the auditors' and admins' tools use it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.schema import SCHEMA_FILE, printed_schema
from tests.e2e.conftest import GraphQLClient

POST = """
mutation Post($input: PostJournalEntryInput!) {
  postJournalEntry(input: $input) {
    __typename
    ... on JournalEntry { id total effectiveDate cause actor lines { account debit credit } }
    ... on ValidationError { field message }
    ... on Conflict { message }
    ... on NotFound { message }
    ... on IdempotencyKeyReused { message }
  }
}
"""

REVERSE = """
mutation Reverse($input: ReverseJournalEntryInput!) {
  reverseJournalEntry(input: $input) {
    __typename
    ... on JournalEntry { id reversesEntryId total lines { account debit credit } }
    ... on Conflict { message }
    ... on NotFound { message }
    ... on ValidationError { field message }
  }
}
"""

TRIAL = """
query Trial($asOf: DateTime) {
  trialBalance(asOf: $asOf) { asOf totalDebit totalCredit balanced lines { account debit credit } }
}
"""


def sale_input(key: str = "sale-1", **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "idempotencyKey": key,
        "effectiveDate": "2025-05-02",
        "description": "Shop sale: winter coat",
        "postings": [
            {"account": "1000", "side": "DEBIT", "amount": "12.20"},
            {"account": "4100", "side": "CREDIT", "amount": "10.00"},
            {"account": "2000", "side": "CREDIT", "amount": "2.20"},
        ],
    }
    value.update(overrides)
    return value


async def test_posted_entry_is_visible_in_journal_balances_and_trial_balance(
    client: GraphQLClient,
) -> None:
    posted = (await client.data(POST, {"input": sale_input()}))["postJournalEntry"]
    assert posted["__typename"] == "JournalEntry"
    assert posted["total"] == "12.20"
    assert posted["cause"] == "manual:sale-1"
    assert posted["lines"] == [
        {"account": "1000", "debit": "12.20", "credit": "0.00"},
        {"account": "4100", "debit": "0.00", "credit": "10.00"},
        {"account": "2000", "debit": "0.00", "credit": "2.20"},
    ]
    # Read-your-writes: the very next queries see it.
    journal = await client.data(
        'query { journal(account: "4100") { nodes { id description } pageInfo { hasNextPage } } }'
    )
    assert [n["id"] for n in journal["journal"]["nodes"]] == [posted["id"]]

    trial = (await client.data(TRIAL, {"asOf": "2025-05-02T23:00:00+02:00"}))["trialBalance"]
    assert trial["balanced"] is True
    assert trial["totalDebit"] == trial["totalCredit"] == "12.20"
    assert {line["account"]: (line["debit"], line["credit"]) for line in trial["lines"]} == {
        "1000": ("12.20", "0.00"),
        "2000": ("0.00", "2.20"),
        "4100": ("0.00", "10.00"),
    }
    # The day before (Rome time), nothing had happened yet.
    before = (await client.data(TRIAL, {"asOf": "2025-05-01T23:59:59+02:00"}))["trialBalance"]
    assert before["lines"] == []

    balance_query = (
        "query($asOf: DateTime) "
        '{ accountBalance(code: "4100", asOf: $asOf) { balance credit type } }'
    )
    balance = await client.data(balance_query, {"asOf": "2025-12-31T12:00:00Z"})
    assert balance["accountBalance"] == {"balance": "10.00", "credit": "10.00", "type": "REVENUE"}

    accounts = (await client.data("query { accounts { code balance isOpen } }"))["accounts"]
    by_code = {a["code"]: a for a in accounts}
    assert by_code["1000"]["balance"] == "12.20"
    assert by_code["2000"]["balance"] == "2.20"


async def test_retry_with_same_key_returns_the_original_and_changes_nothing(
    client: GraphQLClient,
) -> None:
    first = (await client.data(POST, {"input": sale_input()}))["postJournalEntry"]
    head = client.head()
    again = (await client.data(POST, {"input": sale_input()}))["postJournalEntry"]
    assert again == first
    assert client.head() == head
    reused = (await client.data(POST, {"input": sale_input(description="Other")}))[
        "postJournalEntry"
    ]
    assert reused["__typename"] == "IdempotencyKeyReused"
    assert client.head() == head


@pytest.mark.parametrize(
    "bad_amount", [12.2, 12, "1e3", "NaN", "Infinity", "12.345", "12,20", "", None]
)
async def test_money_must_be_a_decimal_string_and_nothing_is_stored(
    client: GraphQLClient, bad_amount: object
) -> None:
    head = client.head()
    value = sale_input()
    value["postings"][0]["amount"] = bad_amount
    body = await client.execute(POST, {"input": value})
    assert body.get("data") is None
    error = body["errors"][0]
    assert error["extensions"]["code"] in ("BAD_USER_INPUT", "BAD_REQUEST")
    assert "postings" in error["message"]  # names the field
    assert client.head() == head


async def test_money_literal_that_is_a_number_is_refused(client: GraphQLClient) -> None:
    body = await client.execute(
        'mutation { postJournalEntry(input: {idempotencyKey: "x", effectiveDate: "2025-01-01", '
        'description: "d", postings: [{account: "1000", side: DEBIT, amount: 5.5}, '
        '{account: "4100", side: CREDIT, amount: "5.50"}]}) { __typename } }'
    )
    assert body["errors"]
    assert body.get("data") is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"description": ""}, "description"),
        ({"description": "x" * 501}, "description"),
        ({"idempotencyKey": "k" * 256}, "idempotencyKey"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        (
            {
                "postings": [
                    {"account": "1000", "side": "DEBIT", "amount": "10000000.01"},
                    {"account": "4100", "side": "CREDIT", "amount": "10000000.01"},
                ]
            },
            "postings[0].amount",
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "DEBIT", "amount": "0.00"},
                    {"account": "4100", "side": "CREDIT", "amount": "0.00"},
                ]
            },
            "postings[0].amount",
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "DEBIT", "amount": "-1.00"},
                    {"account": "4100", "side": "CREDIT", "amount": "-1.00"},
                ]
            },
            "postings[0].amount",
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "DEBIT", "amount": "12.20"},
                    {"account": "4100", "side": "CREDIT", "amount": "12.00"},
                ]
            },
            "postings",
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "DEBIT", "amount": "1.00"},
                    {"account": "9999", "side": "CREDIT", "amount": "1.00"},
                ]
            },
            "postings[1].account",
        ),
        ({"postings": [{"account": "1000", "side": "DEBIT", "amount": "1.00"}]}, "postings"),
        # A year typed wrong either way: before the books opened, or in the future.
        ({"effectiveDate": "1902-05-02"}, "effectiveDate"),
        ({"effectiveDate": "2999-05-02"}, "effectiveDate"),
    ],
)
async def test_invalid_entries_get_a_typed_error_naming_the_field(
    client: GraphQLClient, overrides: dict[str, Any], field: str
) -> None:
    head = client.head()
    result = (await client.data(POST, {"input": sale_input(**overrides)}))["postJournalEntry"]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == field
    assert client.head() == head


async def test_no_money_fact_is_dated_before_the_books_opened(client: GraphQLClient) -> None:
    """A donation typed as received in 1902 (for 2025) was accepted, then sat in no
    report and could not be moved: every context's entries stop at the books' first
    day (COOP_BOOKS_OPENED_ON)."""
    head = client.head()
    donated = await client.data(
        "mutation($i: RecordDonationInput!) { recordDonation(input: $i) "
        "{ __typename ... on ValidationError { field message } } }",
        {"i": {"idempotencyKey": "d-1902", "amount": "50.00", "date": "1902-03-01"}},
    )
    refused = donated["recordDonation"]
    assert refused["__typename"] == "ValidationError", refused
    assert "2000-01-01" in refused["message"]
    assert client.head() == head


async def test_closed_account_refuses_postings(client: GraphQLClient) -> None:
    closed = await client.data(
        'mutation { closeAccount(input: {idempotencyKey: "c1", code: "4100"}) '
        "{ __typename ... on Account { code isOpen } } }"
    )
    assert closed["closeAccount"] == {"__typename": "Account", "code": "4100", "isOpen": False}
    result = (await client.data(POST, {"input": sale_input()}))["postJournalEntry"]
    assert result == {
        "__typename": "ValidationError",
        "field": "postings[1].account",
        "message": "account '4100' is closed",
    }


async def test_closing_an_account_the_chart_does_not_have_is_not_found(
    client: GraphQLClient,
) -> None:
    """The account is what closeAccount acts on: one the chart does not have is
    NOT_FOUND (as accountBalance answers), not a wrong input value."""
    head = client.head()
    refused = await client.data(
        'mutation { closeAccount(input: {idempotencyKey: "c-none", code: "4999"}) '
        "{ __typename ... on NotFound { message } } }"
    )
    assert refused["closeAccount"] == {
        "__typename": "NotFound",
        "message": "account '4999' does not exist",
    }
    assert client.head() == head


async def test_an_account_missing_from_emptied_read_models_is_not_found_not_internal(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review pg #2: while a rebuild in another process has emptied the read models, a
    worker whose projector had seen a later position answered openAccount with an
    internal error (StopIteration from next()) instead of a typed one."""
    from services.ledger.projections import queries

    async def emptied(_conn: object) -> list[object]:
        return []

    monkeypatch.setattr(queries, "list_accounts", emptied)
    body = await client.execute(
        'mutation { openAccount(input: {idempotencyKey: "o-4101", code: "4101", '
        'name: "Shop revenue: shoes", type: REVENUE}) { __typename } }'
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert error["message"] == "account '4101' is not projected yet"


async def test_a_hand_entry_on_the_welfare_fund_payable_is_refused(client: GraphQLClient) -> None:
    """Review fund #6: Dr 2400 / Cr 1010 by hand was accepted and the fund never saw it,
    so 2400 no longer equalled accrued - paid. The error names the posting and the
    commands that do move 2400."""
    head = client.head()
    paid_by_hand = sale_input(
        key="fund-by-hand",
        description="Paid the welfare fund",
        postings=[
            {"account": "2400", "side": "DEBIT", "amount": "50.00"},
            {"account": "1010", "side": "CREDIT", "amount": "50.00"},
        ],
    )
    result = (await client.data(POST, {"input": paid_by_hand}))["postJournalEntry"]
    assert result["__typename"] == "ValidationError", result
    assert result["field"] == "postings[0].account"
    assert "welfare fund" in result["message"]
    assert "payDisbursement" in result["message"]
    assert client.head() == head


async def test_open_account_then_post_to_it(client: GraphQLClient) -> None:
    opened = await client.data(
        'mutation { openAccount(input: {idempotencyKey: "o1", code: "4101", '
        'name: "Shop revenue: shoes", '
        "type: REVENUE}) { __typename ... on Account { code name balance } } }"
    )
    assert opened["openAccount"] == {
        "__typename": "Account",
        "code": "4101",
        "name": "Shop revenue: shoes",
        "balance": "0.00",
    }
    value = sale_input()
    value["postings"][1]["account"] = "4101"
    assert (await client.data(POST, {"input": value}))["postJournalEntry"][
        "__typename"
    ] == "JournalEntry"


async def test_reversal_restores_balances_and_happens_once(client: GraphQLClient) -> None:
    posted = (await client.data(POST, {"input": sale_input()}))["postJournalEntry"]
    reverse_input = {
        "idempotencyKey": "void-1",
        "entryId": posted["id"],
        "effectiveDate": "2025-05-03",
        "description": "Sale voided: wrong price",
    }
    reversal = (await client.data(REVERSE, {"input": reverse_input}))["reverseJournalEntry"]
    assert reversal["__typename"] == "JournalEntry"
    assert reversal["reversesEntryId"] == posted["id"]
    assert reversal["lines"][0] == {"account": "1000", "debit": "0.00", "credit": "12.20"}
    trial = (await client.data(TRIAL, {"asOf": "2025-05-03T12:00:00+02:00"}))["trialBalance"]
    assert trial["lines"] == []
    assert (await client.data(TRIAL, {"asOf": "2025-05-02T12:00:00+02:00"}))["trialBalance"][
        "totalDebit"
    ] == "12.20"

    again = await client.data(REVERSE, {"input": {**reverse_input, "idempotencyKey": "void-2"}})
    assert again["reverseJournalEntry"]["__typename"] == "Conflict"
    missing = await client.data(
        REVERSE,
        {
            "input": {
                **reverse_input,
                "idempotencyKey": "void-3",
                "entryId": "00000000-0000-0000-0000-000000000000",
            }
        },
    )
    assert missing["reverseJournalEntry"]["__typename"] == "NotFound"


async def test_journal_pages_through_every_entry_once(client: GraphQLClient) -> None:
    ids = []
    for i in range(7):
        value = sale_input(key=f"s{i}", effectiveDate=f"2025-05-{10 - i:02d}")
        ids.append((await client.data(POST, {"input": value}))["postJournalEntry"]["id"])
    seen: list[str] = []
    after = None
    while True:
        page = (
            await client.data(
                'query($after: String) { journal(first: 3, after: $after, from: "2025-05-01") '
                "{ nodes { id effectiveDate } pageInfo { hasNextPage endCursor } } }",
                {"after": after},
            )
        )["journal"]
        seen.extend(n["id"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))  # by effective date


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("query { journal(first: 501) { nodes { id } } }", "BAD_USER_INPUT"),
        ("query { journal(first: 0) { nodes { id } } }", "BAD_USER_INPUT"),
        ('query { journal(after: "garbage") { nodes { id } } }', "BAD_USER_INPUT"),
        ('query { trialBalance(asOf: "2025-01-01T00:00:00") { balanced } }', "BAD_USER_INPUT"),
        ('query { accountBalance(code: "4999") { balance } }', "NOT_FOUND"),
        ("query { nope }", "BAD_REQUEST"),
    ],
)
async def test_bad_queries_get_coded_errors(client: GraphQLClient, query: str, code: str) -> None:
    body = await client.execute(query)
    assert body["errors"][0]["extensions"]["code"] == code


async def test_unexpected_errors_are_masked_with_an_id_that_is_logged(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from services.ledger.projections import queries

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database exploded with secret detail")

    monkeypatch.setattr(queries, "list_accounts", broken)
    with caplog.at_level(logging.ERROR, logger="coop.gateway.errors"):
        body = await client.execute("query { accounts { code } }")
    error = body["errors"][0]
    assert error["message"] == "Internal error"
    assert "secret" not in str(body)
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["errorId"] in caplog.text


async def test_healthz_request_ids_and_no_queries_over_get(client: GraphQLClient) -> None:
    health = await client.http.get("/healthz")
    assert health.json() == {"status": "ok"}
    assert len(health.headers["X-Request-Id"]) == 32
    get = await client.http.get("/graphql", params={"query": "{ accounts { code } }"})
    assert get.status_code == 400
    assert "not allowed" in get.text


def test_checked_in_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == printed_schema(), (
        "gateway/schema.graphql is stale: run `coop schema > gateway/schema.graphql`"
    )

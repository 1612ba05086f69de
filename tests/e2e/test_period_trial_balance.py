"""The accountant's period trial balance through GraphQL, on SQLite and PostgreSQL:
each account's opening balance, the period's debits and credits (a reversal in the
period on both sides), its closing balance, and nothing dated outside the period."""

from __future__ import annotations

from typing import Any

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_graphql_ledger import POST, REVERSE, TRIAL

PERIOD = """
query Period($from: Date!, $to: Date!) {
  periodTrialBalance(from: $from, to: $to) {
    from to balanced
    totalOpeningDebit totalOpeningCredit totalDebit totalCredit
    totalClosingDebit totalClosingCredit
    lines {
      account type openingDebit openingCredit debit credit closingDebit closingCredit
    }
  }
}
"""
YEAR_2026 = {"from": "2026-01-01", "to": "2026-06-30"}


async def post(
    client: GraphQLClient, key: str, day: str, debit: str, credit: str, cents: str
) -> str:
    entry = {
        "idempotencyKey": key,
        "effectiveDate": day,
        "description": f"Entry {key}",
        "postings": [
            {"account": debit, "side": "DEBIT", "amount": cents},
            {"account": credit, "side": "CREDIT", "amount": cents},
        ],
    }
    posted = (await client.data(POST, {"input": entry}))["postJournalEntry"]
    assert posted["__typename"] == "JournalEntry", posted
    entry_id: str = posted["id"]
    return entry_id


async def period(client: GraphQLClient, **dates: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(PERIOD, dates or YEAR_2026))["periodTrialBalance"]
    return result


async def test_a_period_shows_opening_movements_and_closing_per_account(
    client: GraphQLClient, app_client: GraphQLClient
) -> None:
    await post(client, "last-year-gift", "2025-12-10", "1010", "4400", "100.00")
    await post(client, "spring-gift", "2026-03-01", "1010", "4400", "30.00")
    await post(client, "supplies", "2026-06-30", "5200", "1010", "20.00")
    mistake = await post(client, "mistake", "2026-02-01", "5400", "1010", "50.00")
    reversal = {
        "idempotencyKey": "undo-mistake",
        "entryId": mistake,
        "effectiveDate": "2026-02-15",
        "description": "Posted twice",
    }
    undone = (await client.data(REVERSE, {"input": reversal}))["reverseJournalEntry"]
    assert undone["__typename"] == "JournalEntry"
    await post(client, "summer-gift", "2026-07-01", "1010", "4400", "7.00")  # after the period

    report = await period(app_client.as_role(Role.AUDITOR))

    assert (report["from"], report["to"], report["balanced"]) == ("2026-01-01", "2026-06-30", True)
    lines = {line.pop("account"): line for line in report["lines"]}
    assert lines == {
        "1010": {
            "type": "ASSET",
            "openingDebit": "100.00",
            "openingCredit": "0.00",
            "debit": "80.00",  # the gift and the reversal of the mistake
            "credit": "70.00",  # the mistake and the supplies
            "closingDebit": "110.00",
            "closingCredit": "0.00",
        },
        "4400": {
            "type": "REVENUE",
            "openingDebit": "0.00",
            "openingCredit": "100.00",
            "debit": "0.00",
            "credit": "30.00",
            "closingDebit": "0.00",
            "closingCredit": "130.00",
        },
        "5200": {
            "type": "EXPENSE",
            "openingDebit": "0.00",
            "openingCredit": "0.00",
            "debit": "20.00",
            "credit": "0.00",
            "closingDebit": "20.00",
            "closingCredit": "0.00",
        },
        "5400": {
            "type": "EXPENSE",
            "openingDebit": "0.00",
            "openingCredit": "0.00",
            "debit": "50.00",
            "credit": "50.00",
            "closingDebit": "0.00",
            "closingCredit": "0.00",
        },
    }
    assert (report["totalOpeningDebit"], report["totalOpeningCredit"]) == ("100.00", "100.00")
    assert (report["totalDebit"], report["totalCredit"]) == ("150.00", "150.00")
    assert (report["totalClosingDebit"], report["totalClosingCredit"]) == ("130.00", "130.00")

    # The closing side is the trial balance as of the period's last day.
    trial = (await client.data(TRIAL, {"asOf": "2026-06-30T23:59:59+02:00"}))["trialBalance"]
    assert {t["account"]: (t["debit"], t["credit"]) for t in trial["lines"]} == {
        code: (line["closingDebit"], line["closingCredit"])
        for code, line in lines.items()
        if line["closingDebit"] != line["closingCredit"]
    }


async def test_a_period_with_nothing_before_or_in_it_is_empty_and_balanced(
    client: GraphQLClient,
) -> None:
    await post(client, "later", "2026-07-01", "1010", "4400", "5.00")
    report = await period(client)
    assert report["lines"] == []
    assert report["balanced"] is True
    assert report["totalClosingDebit"] == "0.00"


async def test_a_period_ending_before_it_starts_is_refused(client: GraphQLClient) -> None:
    body = await client.execute(PERIOD, {"from": "2026-06-30", "to": "2026-01-01"})
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "to"}


async def test_only_admins_and_auditors_read_it(app_client: GraphQLClient) -> None:
    for role in (Role.FRONT_DESK, Role.VOLUNTEER, Role.FUND_OFFICER):
        body = await app_client.as_role(role, "till-1" if role is Role.VOLUNTEER else None).execute(
            PERIOD, YEAR_2026
        )
        assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}

"""The welfare fund review's third round, on both stores: income a narrower mapping
left out of every stream cannot be brought under a version set (or withdrawn) later,
so its reversal takes back nothing it never accrued; stipend rules that would govern
no month are refused rather than failing later."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_stipend_rules_graphql import SET, _rules, _set
from tests.e2e.test_stipend_rules_graphql import _withdraw as _withdraw_rules
from tests.e2e.test_welfare_graphql import BALANCE, POLICY, _income
from tests.e2e.test_welfare_policy_withdrawal import _withdraw

SHARES = [{"stream": "HOTEL", "percent": "10"}, {"stream": "SHOP", "percent": "10"}]
ROOMS_ONLY = [{"accountPrefix": "4000", "stream": "HOTEL"}]
WHOLE = [{"accountPrefix": "40", "stream": "HOTEL"}, {"accountPrefix": "41", "stream": "SHOP"}]
POST = """
mutation P($input: PostJournalEntryInput!) {
  postJournalEntry(input: $input) { ... on JournalEntry { id } }
}
"""
REVERSE = """
mutation R($input: ReverseJournalEntryInput!) {
  reverseJournalEntry(input: $input) { __typename }
}
"""


async def _version(officer: GraphQLClient, key: str, day: str, mapping: Any) -> Any:
    value = {"idempotencyKey": key, "effectiveFrom": day, "shares": SHARES,
             "accountStreams": mapping}  # fmt: skip
    return (await officer.data(POLICY, {"input": value}))["setRedistributionPolicy"]


async def test_income_left_out_of_every_stream_is_not_brought_in_by_a_later_version(
    app_client: GraphQLClient,
) -> None:
    """Rooms only from January: a shop sale of 10 March accrues nothing. A version from
    5 March mapping the shop would govern that sale, already read; set anyway, the
    sale's reversal took back 100.00 it never gave (the fund at -90.00). Refused like
    a version over accrued income; one from 11 March is accepted, and the reversal
    leaves the fund at what the rooms gave."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    first = await _version(officer, "v1", "2025-01-01", ROOMS_ONLY)
    assert first["__typename"] == "RedistributionPolicy", first
    await _income(admin, "room", "2025-03-01", "4000", "100.00")
    sale = {"idempotencyKey": "sale", "effectiveDate": "2025-03-10", "description": "Sale",
            "postings": [{"account": "1010", "side": "DEBIT", "amount": "1000.00"},
                         {"account": "4100", "side": "CREDIT", "amount": "1000.00"}]}  # fmt: skip
    sale_id = (await admin.data(POST, {"input": sale}))["postJournalEntry"]["id"]
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "10.00"

    head = app_client.head()
    refused = await _version(officer, "v2", "2025-03-05", WHOLE)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert "2025-03-10" in refused["message"]
    assert "2025-03-11" in refused["message"]
    assert app_client.head() == head

    accepted = await _version(officer, "v2", "2025-03-11", WHOLE)
    assert accepted["__typename"] == "RedistributionPolicy", accepted

    reversal = {"idempotencyKey": "rev", "entryId": sale_id, "effectiveDate": "2025-03-20",
                "description": "Typed by mistake"}  # fmt: skip
    reversed_ = await admin.data(REVERSE, {"input": reversal})
    assert reversed_["reverseJournalEntry"]["__typename"] == "JournalEntry"
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert balance["accrued"] == "10.00"
    assert {s["stream"]: s["accrued"] for s in balance["byStream"]}.get("SHOP", "0.00") == "0.00"


async def test_a_version_whose_left_out_income_was_read_is_not_withdrawn(
    app_client: GraphQLClient,
) -> None:
    """Rooms and shop from January, rooms only from March (income of February was
    accrued). A shop sale of 10 March is read under the March version at no share;
    withdrawn, the January version would govern the sale and its reversal take back
    100.00 it never gave. Refused, naming the sale's day."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    assert (await _version(officer, "v1", "2025-01-01", WHOLE))["__typename"] == (
        "RedistributionPolicy"
    )
    await _income(admin, "room", "2025-02-15", "4000", "100.00")
    march = await _version(officer, "v2", "2025-03-01", ROOMS_ONLY)
    assert march["__typename"] == "RedistributionPolicy", march
    await _income(admin, "sale", "2025-03-10", "4100", "1000.00")
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "10.00"

    head = app_client.head()
    refused = await _withdraw(officer, "withdraw-march", "2025-03-01")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert "2025-03-10" in refused["message"]
    assert app_client.head() == head


async def test_stipend_rules_that_would_govern_no_month_are_refused(
    app_client: GraphQLClient,
) -> None:
    """From 15 December 9999 a version would govern from January 10000: no month. It
    was stored, and its withdrawal then failed as an internal error. From 1 December
    9999 it governs that month, and is withdrawn as any other."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    head = app_client.head()
    answer = await officer.data(SET, {"input": _rules("far", date(9999, 12, 15), "550.00")})
    refused = answer["setStipendRules"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert "would govern no month" in refused["message"]
    assert app_client.head() == head

    await _set(officer, "last", date(9999, 12, 1), "550.00")
    withdrawn = await _withdraw_rules(officer, "withdraw-last", date(9999, 12, 1))
    assert (withdrawn["__typename"], withdrawn["withdrawn"]) == ("StipendRuleSet", True)

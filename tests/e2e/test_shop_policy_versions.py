"""The shop's configuration versions, as an admin corrects them through GraphQL on
SQLite and PostgreSQL: a version set for a mistyped year (2206) no longer holds
every change until then, since a version not yet in force can be withdrawn; one in
force stays. A retried setShopPolicy answers with what it set, not with what another
admin set for the same day since; and card takings cannot be booked as cash."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.e2e.conftest import GraphQLClient

SET = """
mutation S($i: SetShopPolicyInput!) { setShopPolicy(input: $i) {
  __typename
  ... on ShopPolicyVersion { effectiveFrom zTolerance }
  ... on ValidationError { field message } } }
"""
WITHDRAW = """
mutation W($i: WithdrawShopPolicyInput!) { withdrawShopPolicy(input: $i) {
  __typename
  ... on ShopPolicyWithdrawn { effectiveFrom withdrawnOn }
  ... on ValidationError { field message }
  ... on NotFound { message } } }
"""
POLICY = "query P($on: Date) { shopPolicy(on: $on) { effectiveFrom zTolerance } }"
CATEGORIES = [
    {"code": "CLOTHES", "name": "Clothes", "vatRate": "22", "revenueAccount": "4110",
     "vatAccount": "2000"},
]  # fmt: skip


def _version(key: str, day: date, tolerance: str, **fields: Any) -> dict[str, Any]:
    return {"idempotencyKey": key, "effectiveFrom": day.isoformat(), "categories": CATEGORIES,
            "cashReasons": [], "zTolerance": tolerance, **fields}  # fmt: skip


async def _set(client: GraphQLClient, version: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = (await client.data(SET, {"i": version}))["setShopPolicy"]
    return answer


async def _withdraw(client: GraphQLClient, key: str, day: date) -> dict[str, Any]:
    value = {"idempotencyKey": key, "effectiveFrom": day.isoformat()}
    answer: dict[str, Any] = (await client.data(WITHDRAW, {"i": value}))["withdrawShopPolicy"]
    return answer


async def _tolerance_on(client: GraphQLClient, day: date) -> str:
    policy = (await client.data(POLICY, {"on": day.isoformat()}))["shopPolicy"]
    tolerance: str = policy["zTolerance"]
    return tolerance


async def test_a_version_for_a_mistyped_year_is_withdrawn_and_the_right_one_set(
    client: GraphQLClient,
) -> None:
    today = date.today()
    typo = date(today.year + 180, 7, 1)  # 2206 for 2026
    meant = today + timedelta(days=30)
    assert (await _set(client, _version("typo", typo, "2.00")))["__typename"] == "ShopPolicyVersion"
    held = await _set(client, _version("meant", meant, "2.00"))
    assert (held["__typename"], held["field"]) == ("ValidationError", "effectiveFrom")

    withdrawn = await _withdraw(client, "withdraw-typo", typo)
    assert withdrawn == {"__typename": "ShopPolicyWithdrawn", "effectiveFrom": typo.isoformat(),
                         "withdrawnOn": withdrawn["withdrawnOn"]}  # fmt: skip
    assert date.fromisoformat(withdrawn["withdrawnOn"]) in {today, today + timedelta(days=1)}
    head = client.head()
    assert await _withdraw(client, "withdraw-typo", typo) == withdrawn  # a retry
    assert client.head() == head
    # Its days fall back to the version before it.
    assert await _tolerance_on(client, typo) == "1.00"

    set_now = await _set(client, _version("meant-again", meant, "2.00"))
    assert set_now["__typename"] == "ShopPolicyVersion", set_now
    assert await _tolerance_on(client, typo) == "2.00"
    assert await _tolerance_on(client, today) == "1.00"


async def test_only_a_version_not_yet_in_force_can_be_withdrawn(client: GraphQLClient) -> None:
    head = client.head()
    in_force = await _withdraw(client, "w-default", date(2000, 1, 1))  # the seeded version
    assert (in_force["__typename"], in_force["field"]) == ("ValidationError", "effectiveFrom")
    assert "in force" in in_force["message"]
    missing = await _withdraw(client, "w-missing", date.today() + timedelta(days=9))
    assert missing["__typename"] == "NotFound", missing
    assert client.head() == head
    assert await _tolerance_on(client, date.today()) == "1.00"


async def test_a_retried_version_answers_with_what_it_set(client: GraphQLClient) -> None:
    day = date.today() + timedelta(days=10)
    mine = await _set(client, _version("mine", day, "2.00"))
    assert mine["zTolerance"] == "2.00"
    theirs = await _set(client, _version("theirs", day, "50.00"))  # another admin, same day
    assert theirs["zTolerance"] == "50.00"
    head = client.head()
    assert await _set(client, _version("mine", day, "2.00")) == mine  # not 50.00
    assert client.head() == head
    assert await _tolerance_on(client, day) == "50.00"


async def test_card_takings_cannot_be_booked_to_the_cash_account(client: GraphQLClient) -> None:
    head = client.head()
    day = date.today() + timedelta(days=3)
    refused = await _set(client, _version("card-as-cash", day, "1.00", cardAccount="1000"))
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "cardAccount")
    assert client.head() == head


async def test_an_intake_before_the_first_version_names_its_own_field(
    client: GraphQLClient,
) -> None:
    intake = await client.data(
        'mutation { recordGoodsIntake(input: {idempotencyKey: "old", receivedOn: "1999-12-31", '
        'category: "CLOTHES", bags: 1, items: 5}) { __typename ... on ValidationError { field } } }'
    )
    assert intake["recordGoodsIntake"] == {"__typename": "ValidationError", "field": "receivedOn"}


async def test_a_policy_asked_for_before_the_first_version_names_on(
    client: GraphQLClient,
) -> None:
    """shopPolicy's argument is `on`: a client maps the refusal to the input it sent."""
    body = await client.execute(POLICY, {"on": "1999-12-31"})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "on"

"""API.md's conventions hold for every operation, so a client can write them once:
the four shared error members on every mutation's union, `pageInfo` on every
connection, percent inputs refused alike in every context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLUnionType, build_schema

from gateway.schema import printed_schema
from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.hotel_helpers import SET_POLICY, policy_input

SHARED_ERRORS = {"ValidationError", "NotFound", "Conflict", "IdempotencyKeyReused"}
SHARED_ERROR_FRAGMENTS = """
    ... on ValidationError { field message }
    ... on NotFound { message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
"""


def test_every_mutation_union_carries_the_four_shared_error_members() -> None:
    schema = build_schema(printed_schema())
    assert schema.mutation_type is not None
    lacking: dict[str, list[str]] = {}
    for name, field in schema.mutation_type.fields.items():
        result = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        assert isinstance(result, GraphQLUnionType), name
        missing = SHARED_ERRORS - {member.name for member in result.types}
        if missing:
            lacking[name] = sorted(missing)
    assert lacking == {}


def test_every_connection_pages_through_page_info() -> None:
    schema = build_schema(printed_schema())
    connections = {
        name: graphql_type
        for name, graphql_type in schema.type_map.items()
        if name.endswith("Connection") and isinstance(graphql_type, GraphQLObjectType)
    }
    assert len(connections) > 5  # the check looks at something
    assert [name for name, c in connections.items() if "pageInfo" not in c.fields] == []


async def test_goods_intake_takes_the_shared_error_fragments(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    body = await till.execute(
        "mutation M($input: RecordGoodsIntakeInput!) { recordGoodsIntake(input: $input) {"
        " __typename ... on GoodsIntake { items }" + SHARED_ERROR_FRAGMENTS + "} }",
        {
            "input": {
                "idempotencyKey": "intake-1",
                "receivedOn": "2026-01-05",
                "category": "CLOTHES",
                "bags": 2,
                "items": 30,
            }
        },
    )
    assert "errors" not in body, body
    assert body["data"]["recordGoodsIntake"] == {"__typename": "GoodsIntake", "items": 30}


async def test_welfare_lists_page_like_every_other_list(app_client: GraphQLClient) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    body = await officer.execute(
        "{ disbursements(first: 10) { nodes { id } pageInfo { hasNextPage endCursor } }"
        " beneficiaries(first: 10) { nodes { beneficiaryRef }"
        " pageInfo { hasNextPage endCursor } } }"
    )
    assert "errors" not in body, body
    empty = {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    assert body["data"] == {"disbursements": empty, "beneficiaries": empty}


@pytest.mark.parametrize("rate", ["sNaN", "NaN", "1e1", "1_0", " 10 ", "100.01", "10.001"])
async def test_hotel_percent_rates_refuse_what_the_other_contexts_refuse(
    client: GraphQLClient, rate: str
) -> None:
    answer = await client.data(
        SET_POLICY, {"input": policy_input("policy-odd-rate", "2030-01-01", vatRoom=rate)}
    )
    assert answer["setHotelPolicy"]["__typename"] == "ValidationError", answer
    assert answer["setHotelPolicy"]["field"] == "vatRoom"
    versions = await client.data("{ hotelConfiguration { policies { effectiveFrom } } }")
    assert "2030-01-01" not in str(versions)


DONATE = (
    "mutation($k: String!) { recordDonation(input: {idempotencyKey: $k, amount: "
    '"5.00"}) { __typename } }'
)
PUBLISH = "mutation($k: String!) { publishAuditHead(input: {idempotencyKey: $k}) { __typename } }"


async def _pages(client: GraphQLClient, query: str, field: str) -> list[list[Any]]:
    """Every page of `query` (taking `$after`), two nodes a page, following the cursor."""
    pages: list[list[Any]] = []
    after = None
    while True:
        connection = (await client.data(query, {"after": after}))[field]
        pages.append(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        after = connection["pageInfo"]["endCursor"]


async def test_published_heads_page_newest_first_to_the_oldest(client: GraphQLClient) -> None:
    for index in range(3):
        await client.data(DONATE, {"k": f"donation-{index}"})
        await client.data(PUBLISH, {"k": f"head-{index}"})
    pages = await _pages(
        client,
        "query($after: String) { publishedAuditHeads(first: 2, after: $after) "
        "{ nodes { position } pageInfo { hasNextPage endCursor } } }",
        "publishedAuditHeads",
    )
    assert [len(page) for page in pages] == [2, 1]
    positions = [head["position"] for page in pages for head in page]
    assert positions == sorted(positions, reverse=True)
    assert len(set(positions)) == 3


async def test_entries_by_cause_page_to_the_last_match(client: GraphQLClient) -> None:
    for index in range(3):
        await client.data(DONATE, {"k": f"donation-{index}"})
    pages = await _pages(
        client,
        'query($after: String) { ledgerEntriesByCause(cause: "donation", first: 2, '
        "after: $after) { nodes { id cause } pageInfo { hasNextPage endCursor } } }",
        "ledgerEntriesByCause",
    )
    assert [len(page) for page in pages] == [2, 1]
    entries = [entry for page in pages for entry in page]
    assert len({entry["id"] for entry in entries}) == 3
    assert all(":donation" in entry["cause"] for entry in entries), entries
    refused = await client.execute(
        '{ ledgerEntriesByCause(cause: "donation", after: "x") { nodes { id } } }'
    )
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

"""Ledger review fixes, through GraphQL on SQLite and PostgreSQL: reverseJournalEntry
with the id of a record that is not a journal entry (the chart's id is public) is
NotFound, not an internal error; ledgerEntriesByCause matches a cause exactly, case
included, on both stores (SQLite's LIKE ignores case)."""

from __future__ import annotations

from services.common.auth import Role
from services.common.idempotency import claim_id_for
from services.hotel.domain import CONFIG_ID
from services.ledger.domain import CHART_ID
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_graphql_ledger import POST, REVERSE, sale_input
from tests.e2e.test_graphql_shop import REFUND as SHOP_REFUND
from tests.e2e.test_welfare_graphql import PAY as WELFARE_PAY

BY_CAUSE = "query($c: String!) { ledgerEntriesByCause(cause: $c) { nodes { cause } } }"


async def test_reversing_a_record_that_is_not_an_entry_is_not_found(
    client: GraphQLClient,
) -> None:
    await client.data(POST, {"input": sale_input(key="sale-1")})
    head = client.head()
    for index, not_an_entry in enumerate([CHART_ID, claim_id_for("sale-1")]):
        value = {"idempotencyKey": f"rev-{index}", "entryId": str(not_an_entry),
                 "effectiveDate": "2025-05-03", "description": "Void"}  # fmt: skip
        body = await client.execute(REVERSE, {"input": value})
        assert "errors" not in body, body["errors"]
        refused = body["data"]["reverseJournalEntry"]
        assert refused == {
            "__typename": "NotFound",
            "message": f"journal entry {not_an_entry} does not exist",
        }
    assert client.head() == head


async def test_a_cause_finds_its_own_entries_whatever_the_case_of_others(
    client: GraphQLClient,
) -> None:
    for key in ("INV-7", "inv-7", "inv-7:b", "INV-7:b"):
        posted = (await client.data(POST, {"input": sale_input(key=key)}))["postJournalEntry"]
        assert posted["__typename"] == "JournalEntry", posted
    found = (await client.data(BY_CAUSE, {"c": "inv-7"}))["ledgerEntriesByCause"]["nodes"]
    assert sorted(e["cause"] for e in found) == ["manual:inv-7", "manual:inv-7:b"]
    found = (await client.data(BY_CAUSE, {"c": "INV-7"}))["ledgerEntriesByCause"]["nodes"]
    assert sorted(e["cause"] for e in found) == ["manual:INV-7", "manual:INV-7:b"]


async def test_another_context_s_record_that_cannot_be_decoded_here_is_not_found(
    client: GraphQLClient,
) -> None:
    """One store holds every context's records. The hotel configuration's id is fixed;
    once it has a snapshot (every 50 changes) no other context can decode it: the
    ledger, the shop or the fund answered an internal error for that id."""
    client.runtime.hotel.take_snapshot(CONFIG_ID)
    config_id = str(CONFIG_ID)
    admin = client.as_person(Role.ADMIN)  # the fund's money is a person's decision
    head = client.head()
    documents = {
        "reverseJournalEntry": (REVERSE, {"idempotencyKey": "r", "entryId": config_id,
                                          "effectiveDate": "2025-05-03", "description": "x"}),
        "refundSale": (SHOP_REFUND, {"idempotencyKey": "s", "saleId": config_id}),
        "payDisbursement": (WELFARE_PAY, {"idempotencyKey": "p", "disbursementId": config_id,
                                          "amount": "1.00"}),
    }  # fmt: skip
    for field, (document, value) in documents.items():
        body = await admin.execute(document, {"input": value})
        assert "errors" not in body, body["errors"]
        assert body["data"][field]["__typename"] == "NotFound", body
    assert client.head() == head

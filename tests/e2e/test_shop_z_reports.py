"""Z reports after the close, on both stores: the count sheet by coin and note is kept
with the close, a closed session's Z report can be read again, and the treasurer can
list the closes to review (cash beyond the tolerance, a card terminal that disagrees
with the till)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_graphql_shop import ERRORS, MOVE, ONE_COAT, open_session, ring

Z_FIELDS = """
    sessionId tillId zNumber countedCash difference withinTolerance needsReview
    cardTerminalTotal cardDifference countedDenominations { value count amount }
"""
CLOSE = (
    "mutation Close($input: CloseCashSessionInput!) { closeCashSession(input: $input) {"
    " __typename ... on ZReport {" + Z_FIELDS + "}" + ERRORS + "} }"
)
Z_REPORT = "query Z($id: ID!) { zReport(sessionId: $id) {" + Z_FIELDS + "} }"
TOTALS_FIELDS = """
    sessionId tillId cashIn cashOut cardTotal expectedCash salesTotal refundsTotal netTotal
    salesCount refundsCount firstReceipt lastReceipt
    receiptsByDay { date salesCount refundsCount firstReceipt lastReceipt }
    byMethod { method sales refunds net }
    byCategory { category quantitySold quantityRefunded sales }
    byVatRate { rate total net vat }
"""
Z_REPORTS = (
    "query Zs($till: String, $review: Boolean, $first: Int!, $after: String) {"
    " zReports(tillId: $till, needsReview: $review, first: $first, after: $after) {"
    " nodes { tillId zNumber needsReview } pageInfo { hasNextPage endCursor } } }"
)


async def close(till: GraphQLClient, session_id: str, key: str, **fields: Any) -> dict[str, Any]:
    value = {"idempotencyKey": key, "sessionId": session_id, **fields}
    result: dict[str, Any] = (await till.data(CLOSE, {"input": value}))["closeCashSession"]
    return result


async def test_the_count_sheet_is_kept_with_the_close_and_read_again(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till, opening="50.00")
    counted = [
        {"value": "5.00", "count": 1},
        {"value": "20.00", "count": 2},
        {"value": "0.50", "count": 1},
        {"value": "100.00", "count": 0},  # a line left at zero is no line
        {"value": "0.50", "count": 1},  # the same coin counted in two goes
        {"value": "2.00", "count": 2},
    ]
    z = await close(till, session["id"], "z", countedCash="50.00", denominations=counted)
    assert z["__typename"] == "ZReport", z
    assert z["countedDenominations"] == [
        {"value": "20.00", "count": 2, "amount": "40.00"},
        {"value": "5.00", "count": 1, "amount": "5.00"},
        {"value": "2.00", "count": 2, "amount": "4.00"},
        {"value": "0.50", "count": 2, "amount": "1.00"},
    ]
    assert (z["withinTolerance"], z["needsReview"]) == (True, False)
    # The treasurer reads the same report the next day; the retry answers it too.
    again = (await till.data(Z_REPORT, {"id": session["id"]}))["zReport"]
    assert again == {k: v for k, v in z.items() if k != "__typename"}
    retried = await close(till, session["id"], "z", countedCash="50.00", denominations=counted)
    assert retried == z
    head = till.head()
    other_count = [{"value": "50.00", "count": 1}]
    reused = await close(till, session["id"], "z", countedCash="50.00", denominations=other_count)
    assert reused["__typename"] == "IdempotencyKeyReused"
    assert till.head() == head


async def test_a_close_counted_by_total_has_no_sheet_and_an_open_session_no_z_report(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till, opening="50.00")
    body = await till.execute(Z_REPORT, {"id": session["id"]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["CONFLICT"]
    assert "xReport" in body["errors"][0]["message"]
    z = await close(till, session["id"], "z", countedCash="50.00")
    assert z["countedDenominations"] is None
    assert (await till.data(Z_REPORT, {"id": session["id"]}))["zReport"]["countedCash"] == "50.00"
    # A volunteer reads her own till's reports only.
    other = client_as(Role.VOLUNTEER, "till-2")
    body = await other.execute(Z_REPORT, {"id": session["id"]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_closes_to_review_are_listed_cash_and_card_alike(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    closes = []
    # till-1: counted right; till-2: 3.00 over (tolerance 1.00); till-3: the cash
    # right but the card terminal shows 2.00 less than the till rang by card.
    for till_id, counted, terminal in (
        ("till-1", "50.00", None),
        ("till-2", "53.00", None),
        ("till-3", "50.00", "10.20"),
    ):
        till = client_as(Role.VOLUNTEER, till_id)
        session = await open_session(till, key=f"open-{till_id}", till_id=till_id, opening="50.00")
        card = [{"method": "CARD", "amount": "12.20"}]
        assert (await ring(till, session["id"], f"sale-{till_id}", ONE_COAT, card))[
            "__typename"
        ] == "Sale"
        fields: dict[str, Any] = {"countedCash": counted}
        if terminal is not None:
            fields["cardTerminalTotal"] = terminal
        closes.append(await close(till, session["id"], f"z-{till_id}", **fields))
    assert [(z["withinTolerance"], z["needsReview"], z["cardDifference"]) for z in closes] == [
        (True, False, None),
        (False, True, None),
        (True, True, "-2.00"),
    ]

    async def listed(client: GraphQLClient, **variables: Any) -> list[tuple[str, bool]]:
        page = (await client.data(Z_REPORTS, {"first": 50, **variables}))["zReports"]
        return [(z["tillId"], z["needsReview"]) for z in page["nodes"]]

    assert await listed(client, review=True) == [("till-2", True), ("till-3", True)]
    assert await listed(client, review=False) == [("till-1", False)]
    assert await listed(client) == [("till-1", False), ("till-2", True), ("till-3", True)]
    # Page by page, in the order closed.
    first = (await client.data(Z_REPORTS, {"first": 2}))["zReports"]
    assert [z["tillId"] for z in first["nodes"]] == ["till-1", "till-2"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await client.data(Z_REPORTS, {"first": 2, "after": first["pageInfo"]["endCursor"]})
    assert [z["tillId"] for z in rest["zReports"]["nodes"]] == ["till-3"]
    assert rest["zReports"]["pageInfo"]["hasNextPage"] is False
    # A volunteer lists her own till's closes, and asking for another's is refused.
    till_2 = client_as(Role.VOLUNTEER, "till-2")
    assert await listed(till_2) == [("till-2", True)]
    body = await till_2.execute(Z_REPORTS, {"first": 50, "till": "till-1"})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_a_page_of_z_reports_gives_each_close_its_own_totals(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    # Three tills, each its own mix: the page's totals are counted per session, as
    # each report read alone counts them.
    shoes = [{"category": "SHOES", "description": "boots", "quantity": 2, "unitPrice": "8.00"}]
    cash = [{"method": "CASH", "amount": "50.00"}]
    card = [{"method": "CARD", "amount": "12.20"}]
    sales: dict[str, list[tuple[list[Any], list[Any]]]] = {
        "till-1": [(ONE_COAT, card), (shoes, cash), (ONE_COAT + shoes, cash)],
        "till-2": [],
        "till-3": [(shoes, [{"method": "CARD", "amount": "16.00"}])],
    }
    for till_id, rung in sales.items():
        till = client_as(Role.VOLUNTEER, till_id)
        session = await open_session(till, key=f"open-{till_id}", till_id=till_id, opening="50.00")
        for number, (lines, payments) in enumerate(rung):
            sale = await ring(till, session["id"], f"sale-{till_id}-{number}", lines, payments)
            assert sale["__typename"] == "Sale", sale
        if till_id == "till-2":
            move = {
                "idempotencyKey": "float-top-up",
                "sessionId": session["id"],
                "amount": "20.00",
                "direction": "IN",
                "reason": "CHANGE_FROM_BANK",
            }
            moved = (await till.data(MOVE, {"input": move}))["recordCashMovement"]
            assert moved["__typename"] == "CashSession", moved
        expected = (await till.data(XREPORT_TOTALS, {"id": session["id"]}))["xReport"]
        z = await close(till, session["id"], f"z-{till_id}", countedCash=expected["expectedCash"])
        assert z["__typename"] == "ZReport", z

    page = (await client.data(Z_REPORTS_TOTALS, {"first": 10}))["zReports"]["nodes"]
    assert [(z["tillId"], z["salesCount"], z["cashIn"]) for z in page] == [
        ("till-1", 3, "0.00"),
        ("till-2", 0, "20.00"),
        ("till-3", 1, "0.00"),
    ]
    assert [z["salesTotal"] for z in page] == ["56.40", "0.00", "16.00"]
    for listed in page:
        alone = (await client.data(Z_REPORT_TOTALS, {"id": listed["sessionId"]}))["zReport"]
        assert listed == alone


XREPORT_TOTALS = "query X($id: ID!) { xReport(sessionId: $id) { expectedCash } }"
Z_REPORT_TOTALS = "query Z($id: ID!) { zReport(sessionId: $id) {" + TOTALS_FIELDS + "} }"
Z_REPORTS_TOTALS = (
    "query Zs($first: Int!) { zReports(first: $first) { nodes {" + TOTALS_FIELDS + "} } }"
)


async def test_the_daily_close_counts_each_till_on_its_own(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    card = [{"method": "CARD", "amount": "12.20"}]
    rung = {"till-1": 2, "till-2": 1, "till-3": 0}  # till-3 opened, sold nothing
    day = ""
    for till_id, sales in rung.items():
        till = client_as(Role.VOLUNTEER, till_id)
        session = await open_session(till, key=f"open-{till_id}", till_id=till_id)
        for number in range(sales):
            sale = await ring(till, session["id"], f"sale-{till_id}-{number}", ONE_COAT, card)
            day = sale["businessDate"]
    daily = (
        await client.data(
            "query($d: Date!) { dailyClose(date: $d) { tillId zNumbers receiptsCount "
            "salesTotal firstReceipt lastReceipt byMethod { method sales } } }",
            {"d": day},
        )
    )["dailyClose"]
    assert daily == [
        {"tillId": "till-1", "zNumbers": [1], "receiptsCount": 2, "salesTotal": "24.40",
         "firstReceipt": 1, "lastReceipt": 2, "byMethod": [{"method": "CARD", "sales": "24.40"}]},
        {"tillId": "till-2", "zNumbers": [1], "receiptsCount": 1, "salesTotal": "12.20",
         "firstReceipt": 1, "lastReceipt": 1, "byMethod": [{"method": "CARD", "sales": "12.20"}]},
        {"tillId": "till-3", "zNumbers": [1], "receiptsCount": 0, "salesTotal": "0.00",
         "firstReceipt": None, "lastReceipt": None, "byMethod": []},
    ]  # fmt: skip

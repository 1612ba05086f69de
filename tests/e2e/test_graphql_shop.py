"""The charity shop's till through GraphQL over HTTP, as a volunteer uses it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from eventsourcing.persistence import ConnectionUnavailableError

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient

ERRORS = """
    ... on ValidationError { field message }
    ... on NotFound { message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
    ... on WrongTill { message }
"""

OPEN = (
    """
mutation Open($input: OpenCashSessionInput!) {
  openCashSession(input: $input) {
    __typename
    ... on CashSession { id tillId zNumber status openingFloat expectedCash openedBy }
"""
    + ERRORS
    + "} }"
)

RING = (
    """
mutation Ring($input: RingSaleInput!) {
  ringSale(input: $input) {
    __typename
    ... on Sale {
      id receiptNumber total vat net change volunteer tillId businessDate
      lines { lineNo category quantity unitPrice total net vat vatRate refundedQuantity }
      payments { method tendered amount }
    }
"""
    + ERRORS
    + "} }"
)

REFUND = (
    """
mutation Refund($input: RefundSaleInput!) {
  refundSale(input: $input) {
    __typename
    ... on SaleRefund {
      id receiptNumber total vat
      lines { lineNo category quantity total net vat }
      payments { method amount }
      original { saleId receiptNumber tillId businessDate zNumber }
    }
"""
    + ERRORS
    + "} }"
)

MOVE = (
    """
mutation Move($input: RecordCashMovementInput!) {
  recordCashMovement(input: $input) {
    __typename
    ... on CashSession { id expectedCash }
"""
    + ERRORS
    + "} }"
)

REPORT_FIELDS = """
      expectedCash salesTotal refundsTotal netTotal salesCount refundsCount
      firstReceipt lastReceipt cashIn cashOut cardTotal
      byMethod { method sales refunds net }
      byCategory { category quantitySold quantityRefunded sales refunds total net vat }
      byVatRate { rate total net vat }
"""

CLOSE = (
    """
mutation Close($input: CloseCashSessionInput!) {
  closeCashSession(input: $input) {
    __typename
    ... on ZReport {
      zNumber countedCash difference withinTolerance tolerance cardTerminalTotal cardDifference
"""
    + REPORT_FIELDS
    + "}"
    + ERRORS
    + "} }"
)

XREPORT = "query($id: ID!) { xReport(sessionId: $id) { status " + REPORT_FIELDS + "} }"

CATEGORIES = ("CLOTHES", "SHOES", "ACCESSORIES", "HOUSEHOLD", "OTHER")
REVENUE_ACCOUNT = dict(zip(CATEGORIES, ("4110", "4120", "4130", "4140", "4150"), strict=True))


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def eur(amount_cents: int) -> str:
    return f"{Decimal(amount_cents) / 100:.2f}"


def net_by_hand(gross_cents: int) -> int:
    """VAT 22% included: net = gross / 1.22, rounded half up to the cent."""
    return int((Decimal(gross_cents) / Decimal("1.22")).quantize(Decimal(1), ROUND_HALF_UP))


def day_of_sales() -> list[dict[str, Any]]:
    """30 sales: one or two lines, every category; even ones by card, odd ones in cash
    (tendered rounded up to the next 5 euros), two of them split cash + card."""
    prices = ("3.00", "4.50", "7.00", "12.00", "15.50", "2.20", "9.90")
    sales = []
    for i in range(30):
        lines: list[dict[str, Any]] = [
            {
                "category": CATEGORIES[i % 5],
                "description": f"item {i}",
                "quantity": 1 + i % 3,
                "unitPrice": prices[i % 7],
            }
        ]
        if i % 4 == 0:
            lines.append(
                {
                    "category": CATEGORIES[(i + 2) % 5],
                    "description": f"extra {i}",
                    "quantity": 1,
                    "unitPrice": prices[(i + 3) % 7],
                }
            )
        total = sum(line["quantity"] * cents(line["unitPrice"]) for line in lines)
        if i in (7, 21):
            payments = [
                {"method": "CARD", "amount": eur(total // 2)},
                {"method": "CASH", "amount": eur(total - total // 2)},
            ]
        elif i % 2 == 0:
            payments = [{"method": "CARD", "amount": eur(total)}]
        else:
            tendered = -(-total // 500) * 500
            payments = [{"method": "CASH", "amount": eur(tendered)}]
        sales.append({"lines": lines, "payments": payments, "total": total})
    return sales


async def open_session(
    till: GraphQLClient, key: str = "open-1", till_id: str = "till-1", opening: str = "100.00"
) -> dict[str, Any]:
    result = (
        await till.data(
            OPEN, {"input": {"idempotencyKey": key, "tillId": till_id, "openingFloat": opening}}
        )
    )["openCashSession"]
    return dict(result)


async def ring(
    till: GraphQLClient, session_id: str, key: str, lines: list[Any], payments: list[Any]
) -> dict[str, Any]:
    result = (
        await till.data(
            RING,
            {
                "input": {
                    "idempotencyKey": key,
                    "sessionId": session_id,
                    "lines": lines,
                    "payments": payments,
                }
            },
        )
    )["ringSale"]
    return dict(result)


ONE_COAT = [
    {"category": "CLOTHES", "description": "winter coat", "quantity": 1, "unitPrice": "12.20"}
]


async def test_a_day_at_the_shop_reproduces_hand_totals_in_the_z_report_and_the_ledger(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    assert session["__typename"] == "CashSession", session
    assert session["status"] == "OPEN"
    assert session["zNumber"] == 1
    session_id = session["id"]

    sales = day_of_sales()
    rung = []
    for i, sale in enumerate(sales):
        result = await ring(till, session_id, f"sale-{i}", sale["lines"], sale["payments"])
        assert result["__typename"] == "Sale", result
        rung.append(result)
    assert [s["receiptNumber"] for s in rung] == list(range(1, 31))
    assert rung[0]["volunteer"].startswith("device:test-volunteer")

    # By hand: totals, cash kept (tendered minus change), card, VAT per line.
    total_sales = sum(s["total"] for s in sales)
    card_sales = sum(
        cents(p["amount"]) for s in sales for p in s["payments"] if p["method"] == "CARD"
    )
    cash_sales = total_sales - card_sales
    category_gross: dict[str, int] = defaultdict(int)
    category_net: dict[str, int] = defaultdict(int)
    for sale in sales:
        for line in sale["lines"]:
            gross = line["quantity"] * cents(line["unitPrice"])
            category_gross[line["category"]] += gross
            category_net[line["category"]] += net_by_hand(gross)
    for sale, result in zip(sales, rung, strict=True):
        assert cents(result["total"]) == sale["total"]
        tendered = sum(cents(p["amount"]) for p in sale["payments"])
        assert cents(result["change"]) == tendered - sale["total"]

    # A partial return: one of the two pairs of shoes of receipt 2 (cash), back in cash.
    returned = rung[1]
    assert returned["lines"][0]["quantity"] == 2
    unit = cents(returned["lines"][0]["unitPrice"])
    refund = (
        await till.data(
            REFUND,
            {
                "input": {
                    "idempotencyKey": "refund-1",
                    "saleId": returned["id"],
                    "lines": [{"lineNo": 1, "quantity": 1}],
                }
            },
        )
    )["refundSale"]
    assert refund["__typename"] == "SaleRefund", refund
    assert refund["receiptNumber"] == 31
    assert cents(refund["total"]) == unit
    assert refund["payments"] == [{"method": "CASH", "amount": eur(unit)}]
    assert refund["original"]["receiptNumber"] == 2
    assert refund["original"]["zNumber"] == 1
    refund_category = returned["lines"][0]["category"]
    # Half of the line refunded: net of the refunded half = split of the half (cumulative).
    refund_net = net_by_hand(unit)
    assert cents(refund["lines"][0]["net"]) == refund_net

    # Cash out for supplies.
    moved = (
        await till.data(
            MOVE,
            {
                "input": {
                    "idempotencyKey": "supplies-1",
                    "sessionId": session_id,
                    "amount": "7.30",
                    "direction": "OUT",
                    "reason": "SUPPLIES",
                    "note": "bin bags",
                }
            },
        )
    )["recordCashMovement"]
    assert moved["__typename"] == "CashSession", moved

    expected_cash = 10_000 + cash_sales - unit - 730
    assert cents(moved["expectedCash"]) == expected_cash
    x = (await till.data(XREPORT, {"id": session_id}))["xReport"]
    assert x["status"] == "OPEN"
    assert cents(x["expectedCash"]) == expected_cash
    assert x["salesCount"] == 30
    assert x["refundsCount"] == 1

    # Z close, EUR 0.50 short, with the card terminal agreeing.
    z = (
        await till.data(
            CLOSE,
            {
                "input": {
                    "idempotencyKey": "close-1",
                    "sessionId": session_id,
                    "countedCash": eur(expected_cash - 50),
                    "cardTerminalTotal": eur(card_sales),
                }
            },
        )
    )["closeCashSession"]
    assert z["__typename"] == "ZReport", z
    assert cents(z["expectedCash"]) == expected_cash
    assert cents(z["countedCash"]) == expected_cash - 50
    assert z["difference"] == "-0.50"
    assert z["withinTolerance"] is True  # default tolerance EUR 1.00
    assert cents(z["salesTotal"]) == total_sales
    assert cents(z["refundsTotal"]) == unit
    assert cents(z["netTotal"]) == total_sales - unit
    assert (z["firstReceipt"], z["lastReceipt"]) == (1, 31)
    assert cents(z["cashOut"]) == 730
    assert z["cardDifference"] == "0.00"
    assert {m["method"]: (cents(m["sales"]), cents(m["refunds"])) for m in z["byMethod"]} == {
        "CASH": (cash_sales, unit),
        "CARD": (card_sales, 0),
    }
    by_category = {c["category"]: c for c in z["byCategory"]}
    assert set(by_category) == set(CATEGORIES)
    for category in CATEGORIES:
        refunded = unit if category == refund_category else 0
        assert cents(by_category[category]["total"]) == category_gross[category] - refunded
        net = category_net[category] - (refund_net if category == refund_category else 0)
        assert cents(by_category[category]["net"]) == net
    total_vat = sum(category_gross.values()) - sum(category_net.values()) - (unit - refund_net)
    assert z["byVatRate"] == [
        {
            "rate": "22.00",
            "total": eur(total_sales - unit),
            "net": eur(total_sales - unit - total_vat),
            "vat": eur(total_vat),
        }
    ]

    # The ledger agrees, account by account.
    trial = (
        await client.data(
            "query { trialBalance { balanced totalDebit lines { account debit credit } } }"
        )
    )["trialBalance"]
    assert trial["balanced"] is True
    balances = {
        line["account"]: cents(line["debit"]) - cents(line["credit"]) for line in trial["lines"]
    }
    expected = {
        "1000": cash_sales - unit - 730 - 50,  # the float was already cash on hand
        "1020": card_sales,
        "2000": -total_vat,
        "5100": 50,
        "5200": 730,
    }
    for category in CATEGORIES:
        net = category_net[category] - (refund_net if category == refund_category else 0)
        expected[REVENUE_ACCOUNT[category]] = -net
    assert balances == expected

    # The closed session takes nothing more; the till can open its next one.
    late = await ring(till, session_id, "late", ONE_COAT, [{"method": "CASH", "amount": "20.00"}])
    assert late["__typename"] == "Conflict"
    again = await open_session(till, key="open-2")
    assert again["zNumber"] == 2
    # Numbers run per till and day across sessions.
    next_sale = await ring(
        till, again["id"], "s2", ONE_COAT, [{"method": "CARD", "amount": "12.20"}]
    )
    assert next_sale["receiptNumber"] == 32

    daily = (
        await client.data(
            "query($d: Date!) { dailyClose(date: $d) { tillId zNumbers closed receiptsCount "
            "refundsCount firstReceipt lastReceipt salesTotal refundsTotal "
            "byVatRate { rate vat } } }",
            {"d": rung[0]["businessDate"]},
        )
    )["dailyClose"]
    assert daily[0]["tillId"] == "till-1"
    assert daily[0]["zNumbers"] == [1, 2]
    assert daily[0]["closed"] is False
    assert (daily[0]["receiptsCount"], daily[0]["refundsCount"]) == (31, 1)
    assert (daily[0]["firstReceipt"], daily[0]["lastReceipt"]) == (1, 32)
    assert cents(daily[0]["salesTotal"]) == total_sales + 1220


@pytest.mark.parametrize(
    ("lines", "payments", "field"),
    [
        ([], [{"method": "CASH", "amount": "5.00"}], "lines"),
        (
            [{"category": "CLOTHES", "description": "coat", "quantity": 0, "unitPrice": "5.00"}],
            [{"method": "CASH", "amount": "5.00"}],
            "lines[0].quantity",
        ),
        (
            [{"category": "CLOTHES", "description": "coat", "quantity": -2, "unitPrice": "5.00"}],
            [{"method": "CASH", "amount": "5.00"}],
            "lines[0].quantity",
        ),
        (
            [{"category": "CLOTHES", "description": "coat", "quantity": 1, "unitPrice": "0.00"}],
            [{"method": "CASH", "amount": "5.00"}],
            "lines[0].unitPrice",
        ),
        (
            [{"category": "CARS", "description": "coat", "quantity": 1, "unitPrice": "5.00"}],
            [{"method": "CASH", "amount": "5.00"}],
            "lines[0].category",
        ),
        (
            [{"category": "CLOTHES", "description": " ", "quantity": 1, "unitPrice": "5.00"}],
            [{"method": "CASH", "amount": "5.00"}],
            "lines[0].description",
        ),
        (ONE_COAT, [{"method": "CASH", "amount": "12.00"}], "payments"),
        (ONE_COAT, [], "payments"),
        (ONE_COAT, [{"method": "CARD", "amount": "15.00"}], "payments"),
        (
            ONE_COAT,
            [{"method": "CARD", "amount": "10.00"}, {"method": "CARD", "amount": "3.00"}],
            "payments",
        ),
        (ONE_COAT, [{"method": "CASH", "amount": "-15.00"}], "payments[0].amount"),
    ],
)
async def test_bad_sales_get_a_typed_error_and_store_nothing(
    client_as: Callable[..., GraphQLClient],
    lines: list[Any],
    payments: list[Any],
    field: str,
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    head = till.head()
    result = await ring(till, session["id"], "bad", lines, payments)
    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert till.head() == head
    # The key was not used up: the corrected sale rings with it, as receipt 1.
    good = await ring(till, session["id"], "bad", ONE_COAT, [{"method": "CASH", "amount": "20.00"}])
    assert good["receiptNumber"] == 1
    assert good["change"] == "7.80"


@pytest.mark.parametrize("bad_amount", [12.2, 12, "12.345", "1e3", "NaN", None])
async def test_floats_for_money_are_refused_and_nothing_is_stored(
    client_as: Callable[..., GraphQLClient], bad_amount: object
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    head = till.head()
    body = await till.execute(
        RING,
        {
            "input": {
                "idempotencyKey": "float",
                "sessionId": session["id"],
                "lines": [{**ONE_COAT[0], "unitPrice": bad_amount}],
                "payments": [{"method": "CASH", "amount": "20.00"}],
            }
        },
    )
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "BAD_REQUEST")
    assert "unitPrice" in body["errors"][0]["message"]
    assert till.head() == head


async def test_double_tap_rings_once(client_as: Callable[..., GraphQLClient]) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    pay = [{"method": "CASH", "amount": "20.00"}]
    first, second = await asyncio.gather(
        ring(till, session["id"], "tap", ONE_COAT, pay),
        ring(till, session["id"], "tap", ONE_COAT, pay),
    )
    assert first["__typename"] == second["__typename"] == "Sale"
    assert first["id"] == second["id"]
    head = till.head()
    third = await ring(till, session["id"], "tap", ONE_COAT, pay)
    assert third == first
    assert till.head() == head
    x = (await till.data(XREPORT, {"id": session["id"]}))["xReport"]
    assert x["salesCount"] == 1
    assert x["salesTotal"] == "12.20"
    other = await ring(
        till, session["id"], "tap", ONE_COAT, [{"method": "CARD", "amount": "12.20"}]
    )
    assert other["__typename"] == "IdempotencyKeyReused"


async def test_a_sale_retried_after_its_till_s_key_was_rotated_rings_once(
    client_as: Callable[..., GraphQLClient],
) -> None:
    """The till sent a sale and lost the answer; meanwhile its key was replaced (a new
    key issued under the same name, the old one revoked). The retry with the new key
    is the same till asking again: it gets its sale back and nothing is rung twice.
    The sale still names the key that rang it; a sale with other lines under the same
    idempotency key is still refused."""
    old_key = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(old_key)
    pay = [{"method": "CASH", "amount": "20.00"}]
    first = await ring(old_key, session["id"], "lost-answer", ONE_COAT, pay)
    assert first["__typename"] == "Sale", first
    old_key_id = old_key.headers["X-Api-Key"].split("_")[1]
    old_key.runtime.credentials.revoke_key(old_key_id)

    new_key = client_as(Role.VOLUNTEER, "till-1")  # same key name: "test-volunteer-till-1"
    head = new_key.head()
    retried = await ring(new_key, session["id"], "lost-answer", ONE_COAT, pay)
    assert retried == first
    assert retried["volunteer"] == f"device:test-volunteer-till-1#{old_key_id}"
    assert new_key.head() == head
    x = (await new_key.data(XREPORT, {"id": session["id"]}))["xReport"]
    assert (x["salesCount"], x["salesTotal"]) == (1, "12.20")
    other = await ring(new_key, session["id"], "lost-answer", ONE_COAT * 2, pay)
    assert other["__typename"] == "IdempotencyKeyReused"
    assert new_key.head() == head
    # The new key's sales are the same till's: one volunteer in the totals, not two.
    assert (await ring(new_key, session["id"], "next", ONE_COAT, pay))["__typename"] == "Sale"
    totals = await new_key.data("{ shopTotals { byVolunteer { volunteer salesCount } } }")
    assert totals["shopTotals"]["byVolunteer"] == [
        {"volunteer": "device:test-volunteer-till-1", "salesCount": 2}
    ]


SALE_FIELDS = """
  id receiptNumber tillId sessionId zNumber businessDate recordedAt volunteer
  total vat net change
  lines { lineNo category description quantity unitPrice total net vat vatRate
          refundedQuantity }
  payments { method tendered amount }
  vatByRate { rate total net vat }
  refunds { id }
"""


async def test_a_sale_answers_as_the_read_model_will_show_it(
    client_as: Callable[..., GraphQLClient],
) -> None:
    """ringSale answers from the sale it just recorded, not from a read-back: every
    field must be what `sale(id)` then shows, across VAT rates, change and refunds."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    lines = [
        {"category": "CLOTHES", "description": "coat", "quantity": 2, "unitPrice": "12.20"},
        {"category": "HOUSEHOLD", "description": "lamp", "quantity": 1, "unitPrice": "7.35"},
    ]
    payments = [{"method": "CARD", "amount": "10.00"}, {"method": "CASH", "amount": "30.00"}]
    rung = (
        await till.data(
            "mutation($input: RingSaleInput!) { ringSale(input: $input) { __typename "
            "... on Sale {" + SALE_FIELDS + "} } }",
            {
                "input": {
                    "idempotencyKey": "answer",
                    "sessionId": session["id"],
                    "lines": lines,
                    "payments": payments,
                }
            },
        )
    )["ringSale"]
    assert rung["__typename"] == "Sale"
    assert rung["change"] == "8.25"
    shown = (
        await till.data(
            "query($id: ID!) { sale(id: $id) {" + SALE_FIELDS + "} }", {"id": rung["id"]}
        )
    )["sale"]
    assert {**shown, "__typename": "Sale"} == rung


async def test_codes_typed_wrong_are_not_quoted_back(
    client_as: Callable[..., GraphQLClient],
) -> None:
    """A name typed into a code's box (a reason, a category) is refused without being
    repeated: messages name the field and the codes allowed, never what was typed."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    head = till.head()
    moved = (
        await till.data(
            MOVE,
            {
                "input": {
                    "idempotencyKey": "paid-lucia",
                    "sessionId": session["id"],
                    "amount": "5.00",
                    "direction": "OUT",
                    "reason": "PAID LUCIA FERRI",
                }
            },
        )
    )["recordCashMovement"]
    assert moved["__typename"] == "ValidationError"
    assert "SUPPLIES" in moved["message"]
    line = {**ONE_COAT[0], "category": "Lucia Ferri"}
    sold = await ring(till, session["id"], "cat", [line], [{"method": "CASH", "amount": "20.00"}])
    assert sold["__typename"] == "ValidationError"
    assert "CLOTHES" in sold["message"]
    for refused in (moved, sold):
        assert "FERRI" not in refused["message"].upper(), refused
    assert till.head() == head


async def test_a_volunteer_cannot_act_on_another_tills_session(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till_1 = client_as(Role.VOLUNTEER, "till-1")
    till_2 = client_as(Role.VOLUNTEER, "till-2")
    session = await open_session(till_1)
    head = till_1.head()
    wrong_open = await open_session(till_2, key="steal", till_id="till-1")
    assert wrong_open["__typename"] == "WrongTill"
    sale = await ring(till_2, session["id"], "x", ONE_COAT, [{"method": "CASH", "amount": "20.00"}])
    assert sale["__typename"] == "WrongTill"
    assert "till-2" in sale["message"]
    moved = (
        await till_2.data(
            MOVE,
            {
                "input": {
                    "idempotencyKey": "m",
                    "sessionId": session["id"],
                    "amount": "1.00",
                    "direction": "OUT",
                    "reason": "SUPPLIES",
                }
            },
        )
    )["recordCashMovement"]
    assert moved["__typename"] == "WrongTill"
    closed = (
        await till_2.data(
            CLOSE,
            {"input": {"idempotencyKey": "c", "sessionId": session["id"], "countedCash": "0.00"}},
        )
    )["closeCashSession"]
    assert closed["__typename"] == "WrongTill"
    assert till_1.head() == head
    body = await till_2.execute(XREPORT, {"id": session["id"]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # Nor read another till's sales and totals: they carry its volunteers' names.
    rung = await ring(
        till_1, session["id"], "ok", ONE_COAT, [{"method": "CASH", "amount": "20.00"}]
    )
    assert rung["__typename"] == "Sale"
    for query in (
        '{ sale(id: "' + rung["id"] + '") { id volunteer } }',
        '{ sales(tillId: "till-1") { nodes { id volunteer } } }',
        '{ shopTotals(tillId: "till-1") { salesCount } }',
        '{ dailyClose(date: "' + rung["businessDate"] + '", tillId: "till-1") { tillId } }',
    ):
        body = await till_2.execute(query)
        assert body.get("data") is None, (query, body)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    # Nor refund another till's sale from its own session: the refund would answer
    # with the sale's lines (an admin refunds across tills).
    await open_session(till_2, key="own-2", till_id="till-2")
    head = till_1.head()
    across = (
        await till_2.data(REFUND, {"input": {"idempotencyKey": "r-x", "saleId": rung["id"]}})
    )["refundSale"]
    assert across["__typename"] == "WrongTill", across
    assert "lines" not in across
    assert till_1.head() == head
    admin_refund = (
        await client_as(Role.ADMIN).data(
            REFUND,
            {"input": {"idempotencyKey": "r-a", "saleId": rung["id"], "sessionId": session["id"]}},
        )
    )["refundSale"]
    assert admin_refund["__typename"] == "SaleRefund", admin_refund

    # Without a till named, a volunteer's listings are of its own till.
    own = await till_2.data("{ sales { nodes { id } } shopTotals { salesCount } }")
    assert own == {"sales": {"nodes": []}, "shopTotals": {"salesCount": 0}}
    mine = await till_1.data("{ sales { nodes { id } } shopTotals { salesCount } }")
    assert mine == {"sales": {"nodes": [{"id": rung["id"]}]}, "shopTotals": {"salesCount": 1}}


async def test_one_open_session_per_till_exactly_one_wins(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    results = await asyncio.gather(*(open_session(till, key=f"open-{i}") for i in range(4)))
    kinds = sorted(r["__typename"] for r in results)
    assert kinds.count("CashSession") == 1
    assert set(kinds) <= {"CashSession", "Conflict"}


async def test_concurrent_rings_on_one_session_number_receipts_without_gaps(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    pay = [{"method": "CARD", "amount": "12.20"}]

    async def ring_until_it_wins(n: int) -> dict[str, Any]:
        for _ in range(50):
            result = await ring(till, session["id"], f"c-{n}", ONE_COAT, pay)
            if result["__typename"] != "Conflict":
                return result
        raise AssertionError("never won")

    results = await asyncio.gather(*(ring_until_it_wins(n) for n in range(8)))
    assert sorted(r["receiptNumber"] for r in results) == list(range(1, 9))


async def test_refunds_never_exceed_what_was_sold(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    lines = [
        {"category": "SHOES", "description": "boots", "quantity": 3, "unitPrice": "10.00"},
        {"category": "OTHER", "description": "book", "quantity": 1, "unitPrice": "2.00"},
    ]
    sale = await ring(
        till,
        session["id"],
        "s",
        lines,
        [{"method": "CARD", "amount": "20.00"}, {"method": "CASH", "amount": "12.00"}],
    )

    async def refund(key: str, **extra: Any) -> dict[str, Any]:
        value = {"idempotencyKey": key, "saleId": sale["id"], **extra}
        return dict((await till.data(REFUND, {"input": value}))["refundSale"])

    head = till.head()
    too_many = await refund("r0", lines=[{"lineNo": 1, "quantity": 4}])
    assert too_many["__typename"] == "ValidationError"
    assert too_many["field"] == "lines[0].quantity"
    no_line = await refund("r0", lines=[{"lineNo": 3, "quantity": 1}])
    assert no_line["field"] == "lines[0].lineNo"
    assert till.head() == head

    first = await refund("r1", lines=[{"lineNo": 1, "quantity": 2}])
    assert first["__typename"] == "SaleRefund"
    assert first["payments"] == [{"method": "CARD", "amount": "20.00"}]  # card first
    more = await refund("r2", lines=[{"lineNo": 1, "quantity": 2}])
    assert more["__typename"] == "ValidationError"
    assert "only 1" in more["message"]
    rest = await refund("r3")  # the rest: one pair of boots and the book
    assert rest["__typename"] == "SaleRefund"
    assert rest["total"] == "12.00"
    assert rest["payments"] == [{"method": "CASH", "amount": "12.00"}]
    # Refunded in two parts, the line's VAT comes back exactly.
    boots_vat = sum(cents(r["lines"][0]["vat"]) for r in (first, rest))
    assert boots_vat == 3000 - net_by_hand(3000)
    done = await refund("r4")
    assert done["__typename"] == "Conflict"

    sold = (
        await client.data(
            "query($id: ID!) { sale(id: $id) "
            "{ lines { refundedQuantity } refunds { receiptNumber } } }",
            {"id": sale["id"]},
        )
    )["sale"]
    assert [line["refundedQuantity"] for line in sold["lines"]] == [3, 1]
    assert [r["receiptNumber"] for r in sold["refunds"]] == [2, 3]


async def test_totals_by_volunteer_category_and_method_and_sell_through(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    maria = client_as(Role.VOLUNTEER, "till-1")
    luca = client_as(Role.VOLUNTEER, "till-2")
    s1 = await open_session(maria)
    s2 = await open_session(luca, key="open-2", till_id="till-2")
    await ring(maria, s1["id"], "a", ONE_COAT, [{"method": "CASH", "amount": "12.20"}])
    await ring(luca, s2["id"], "b", ONE_COAT, [{"method": "CARD", "amount": "12.20"}])
    await ring(
        luca,
        s2["id"],
        "c",
        [{"category": "SHOES", "description": "boots", "quantity": 2, "unitPrice": "5.00"}],
        [{"method": "CASH", "amount": "10.00"}],
    )
    intake = await maria.data(
        'mutation { recordGoodsIntake(input: {idempotencyKey: "in-1", receivedOn: "2020-01-02", '
        'category: "CLOTHES", bags: 3, items: 40}) { __typename ... on GoodsIntake { items } } }'
    )
    assert intake["recordGoodsIntake"] == {"__typename": "GoodsIntake", "items": 40}
    totals = (
        await client.data(
            "query { shopTotals { salesTotal salesCount byVolunteer { salesCount sales } "
            "byMethod { method net } byCategory { category quantitySold total } } }"
        )
    )["shopTotals"]
    assert totals["salesTotal"] == "34.40"
    assert sorted((v["salesCount"], v["sales"]) for v in totals["byVolunteer"]) == [
        (1, "12.20"),
        (2, "22.20"),
    ]
    assert {m["method"]: m["net"] for m in totals["byMethod"]} == {"CASH": "22.20", "CARD": "12.20"}
    assert {c["category"]: (c["quantitySold"], c["total"]) for c in totals["byCategory"]} == {
        "CLOTHES": (2, "24.40"),
        "SHOES": (2, "10.00"),
    }
    through = (
        await client.data(
            "query { sellThrough { category itemsReceived itemsSold sellThroughPercent } }"
        )
    )["sellThrough"]
    assert through == [
        {"category": "CLOTHES", "itemsReceived": 40, "itemsSold": 2, "sellThroughPercent": "5.0"},
        {"category": "SHOES", "itemsReceived": 0, "itemsSold": 2, "sellThroughPercent": None},
    ]


async def test_a_count_by_denomination_names_euro_coins_and_notes_and_adds_up(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till, opening="50.00")
    head = till.head()

    async def close(key: str, counted: str, denominations: list[Any]) -> dict[str, Any]:
        value = {
            "idempotencyKey": key,
            "sessionId": session["id"],
            "countedCash": counted,
            "denominations": denominations,
        }
        result: dict[str, Any] = (await till.data(CLOSE, {"input": value}))["closeCashSession"]
        return result

    made_up = await close("c1", "6.00", [{"value": "3.00", "count": 2}])
    assert (made_up["__typename"], made_up["field"]) == (
        "ValidationError",
        "denominations[0].value",
    )
    short = await close("c2", "50.00", [{"value": "20.00", "count": 2}])
    assert (short["__typename"], short["field"]) == ("ValidationError", "denominations")
    assert till.head() == head
    counted = [
        {"value": "20.00", "count": 2},
        {"value": "5.00", "count": 1},
        {"value": "2.00", "count": 2},
        {"value": "0.50", "count": 2},
    ]
    z = await close("c3", "50.00", counted)
    assert (z["__typename"], z["countedCash"], z["difference"]) == ("ZReport", "50.00", "0.00")


async def test_z_close_beyond_tolerance_is_flagged_and_tolerance_is_configuration(
    client: GraphQLClient, client_as: Callable[..., GraphQLClient]
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till, opening="50.00")
    z = (
        await till.data(
            CLOSE,
            {"input": {"idempotencyKey": "c", "sessionId": session["id"], "countedCash": "53.00"}},
        )
    )["closeCashSession"]
    assert (z["difference"], z["withinTolerance"], z["tolerance"]) == ("3.00", False, "1.00")
    balance = await client.data('query { accountBalance(code: "5100") { balance } }')
    assert balance["accountBalance"]["balance"] == "-3.00"  # cash over: a credit

    policy = (await client.data("query { shopPolicy { zTolerance categories { code vatRate } } }"))[
        "shopPolicy"
    ]
    assert policy["zTolerance"] == "1.00"
    assert {c["vatRate"] for c in policy["categories"]} == {"22.00"}
    bad = await client.data(
        'mutation { setShopPolicy(input: {idempotencyKey: "p", effectiveFrom: "2001-01-01", '
        'zTolerance: "5.00", categories: [], cashReasons: []}) '
        "{ __typename ... on ValidationError { field } } }"
    )
    assert bad["setShopPolicy"] == {"__typename": "ValidationError", "field": "categories"}


DAILY_CLOSE = (
    "query($d: Date!) { dailyClose(date: $d) { tillId zNumbers closed receiptsCount "
    "refundsCount firstReceipt lastReceipt netTotal } }"
)
RANGES = "receiptsByDay { date salesCount refundsCount firstReceipt lastReceipt }"


ACROSS_MIDNIGHT_RANGES = [
    {"date": "2025-05-02", "salesCount": 2, "refundsCount": 0, "firstReceipt": 1, "lastReceipt": 2},
    {"date": "2025-05-03", "salesCount": 2, "refundsCount": 1, "firstReceipt": 1, "lastReceipt": 3},
]


async def session_across_midnight(
    client: GraphQLClient, till: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Callable[[int, int], None]]:
    """Till-1's Z1, opened on 2025-05-02 (Rome) and left open past midnight: receipts
    1-2 on the 2nd; receipts 1-2 and the refund 3 (of the 2nd's receipt 1) on the 3rd.
    Returns the session and a setter of the clock (hour and minute of the 3rd)."""
    zone = client.runtime.settings.zone
    clock = {"now": datetime(2025, 5, 2, 20, 0, tzinfo=zone)}
    monkeypatch.setattr("services.shop.graphql.mutations.now", lambda: clock["now"])

    def at(hour: int, minute: int) -> None:
        clock["now"] = datetime(2025, 5, 3, hour, minute, tzinfo=zone)

    session = await open_session(till)
    card = await ring(
        till, session["id"], "d1-1", ONE_COAT, [{"method": "CARD", "amount": "12.20"}]
    )
    cash = [{"method": "CASH", "amount": "20.00"}]
    assert (await ring(till, session["id"], "d1-2", ONE_COAT, cash))["receiptNumber"] == 2
    at(0, 30)  # the till is still open
    second_day = [
        await ring(till, session["id"], "d2-1", ONE_COAT, cash),
        await ring(till, session["id"], "d2-2", ONE_COAT, cash),
    ]
    assert [(s["businessDate"], s["receiptNumber"]) for s in second_day] == [
        ("2025-05-03", 1),
        ("2025-05-03", 2),
    ]
    refund = (await till.data(REFUND, {"input": {"idempotencyKey": "d2-r", "saleId": card["id"]}}))[
        "refundSale"
    ]
    assert refund["receiptNumber"] == 3, refund
    return session, at


async def close_across_midnight(till: GraphQLClient, session: dict[str, Any]) -> dict[str, Any]:
    z: dict[str, Any] = (
        await till.data(
            "mutation($input: CloseCashSessionInput!) { closeCashSession(input: $input) { "
            "__typename ... on ZReport { zNumber firstReceipt lastReceipt " + RANGES + " } } }",
            {
                "input": {
                    "idempotencyKey": "z1",
                    "sessionId": session["id"],
                    "countedCash": "160.00",
                }
            },
        )
    )["closeCashSession"]
    return z


async def test_a_day_rung_in_a_session_opened_the_day_before_is_closed_only_with_it(
    client: GraphQLClient,
    client_as: Callable[..., GraphQLClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents carry the day they are issued on, so a session left open past
    midnight holds two fiscal days: each day's close lists that Z, and is not closed
    until the Z is."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session, at = await session_across_midnight(client, till, monkeypatch)

    async def daily(day: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await client.data(DAILY_CLOSE, {"d": day}))["dailyClose"]
        return rows

    def row(z_numbers: list[int], closed: bool, refunds: int, last: int, net: str) -> Any:
        return {
            "tillId": "till-1",
            "zNumbers": z_numbers,
            "closed": closed,
            "receiptsCount": 2,
            "refundsCount": refunds,
            "firstReceipt": 1,
            "lastReceipt": last,
            "netTotal": net,
        }

    # Both days' receipts sit in Z1, still open: neither day is closed.
    assert await daily("2025-05-03") == [row([1], False, 1, 3, "12.20")]
    assert await daily("2025-05-02") == [row([1], False, 0, 2, "24.40")]
    assert (await close_across_midnight(till, session))["__typename"] == "ZReport"
    # Z1 closed: both days it covers list it and are closed.
    assert await daily("2025-05-03") == [row([1], True, 1, 3, "12.20")]
    assert await daily("2025-05-02") == [row([1], True, 0, 2, "24.40")]

    # A new session the same night continues the day's numbering; the day is open
    # again until that session is closed too; the day before is not touched.
    at(1, 0)
    later = await open_session(till, key="open-2")
    cash = [{"method": "CASH", "amount": "20.00"}]
    assert (await ring(till, later["id"], "d2-3", ONE_COAT, cash))["receiptNumber"] == 4
    day = await daily("2025-05-03")
    assert [(r["zNumbers"], r["closed"], r["lastReceipt"]) for r in day] == [([1, 2], False, 4)]
    assert await daily("2025-05-02") == [row([1], True, 0, 2, "24.40")]


async def test_x_and_z_of_a_session_across_midnight_give_a_receipt_range_per_day(
    client: GraphQLClient,
    client_as: Callable[..., GraphQLClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Receipt numbers restart each day: one min..max over two days' numbers means
    nothing, so the range is given per business day."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session, at = await session_across_midnight(client, till, monkeypatch)
    x = (
        await till.data(
            "query($id: ID!) { xReport(sessionId: $id) { salesCount refundsCount "
            "firstReceipt lastReceipt " + RANGES + " } }",
            {"id": session["id"]},
        )
    )["xReport"]
    assert x == {
        "salesCount": 4,
        "refundsCount": 1,
        "firstReceipt": None,  # no one range covers two days' numbering
        "lastReceipt": None,
        "receiptsByDay": ACROSS_MIDNIGHT_RANGES,
    }
    assert await close_across_midnight(till, session) == {
        "__typename": "ZReport",
        "zNumber": 1,
        "firstReceipt": None,
        "lastReceipt": None,
        "receiptsByDay": ACROSS_MIDNIGHT_RANGES,
    }
    # A session of one day keeps its plain range.
    at(1, 0)
    later = await open_session(till, key="open-2")
    cash = [{"method": "CASH", "amount": "20.00"}]
    assert (await ring(till, later["id"], "d2-3", ONE_COAT, cash))["receiptNumber"] == 4
    x2 = (
        await till.data(
            "query($id: ID!) { xReport(sessionId: $id) { firstReceipt lastReceipt "
            + RANGES
            + " } }",
            {"id": later["id"]},
        )
    )["xReport"]
    assert x2 == {
        "firstReceipt": 4,
        "lastReceipt": 4,
        "receiptsByDay": [
            {
                "date": "2025-05-03",
                "salesCount": 1,
                "refundsCount": 0,
                "firstReceipt": 4,
                "lastReceipt": 4,
            }
        ],
    }


async def test_a_drawer_above_the_amount_ceiling_closes_on_its_true_count(
    client_as: Callable[..., GraphQLClient],
) -> None:
    """The counted cash and the card terminal's total may differ from the till's
    figures by at most the amount ceiling; the figures themselves may exceed it."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    ceiling = till.runtime.settings.amount_ceiling_cents
    price = eur(ceiling - 1)
    lines = [{"category": "OTHER", "description": "a painting", "quantity": 1, "unitPrice": price}]
    big = await ring(till, session["id"], "big", lines, [{"method": "CASH", "amount": price}])
    assert big["__typename"] == "Sale", big
    card = await ring(
        till, session["id"], "card", ONE_COAT, [{"method": "CARD", "amount": "12.20"}]
    )
    assert card["__typename"] == "Sale", card
    expected = (await till.data(XREPORT, {"id": session["id"]}))["xReport"]["expectedCash"]
    assert cents(expected) == 10000 + ceiling - 1 > ceiling
    head = till.head()

    async def close(key: str, counted: str, terminal: str | None) -> dict[str, Any]:
        value = {"idempotencyKey": key, "sessionId": session["id"], "countedCash": counted}
        if terminal is not None:
            value["cardTerminalTotal"] = terminal
        result: dict[str, Any] = (await till.data(CLOSE, {"input": value}))["closeCashSession"]
        return result

    for counted, terminal, field in (
        (expected, "100000000.00", "cardTerminalTotal"),
        (expected, eur(1220 + ceiling + 1), "cardTerminalTotal"),
        (eur(cents(expected) + ceiling + 1), "12.20", "countedCash"),
        (expected, "-12.20", "cardTerminalTotal"),  # a sign typo: the card total is 12.20
        ("-0.01", "12.20", "countedCash"),
    ):
        refused = await close(f"bad-{counted}-{terminal}", counted, terminal)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), refused
    assert till.head() == head
    z = await close("z", expected, "12.20")
    assert z["__typename"] == "ZReport", z
    assert (z["countedCash"], z["difference"], z["withinTolerance"]) == (expected, "0.00", True)
    assert z["cardDifference"] == "0.00"


async def test_a_session_that_refunded_more_to_cards_than_it_took_closes_on_the_terminal(
    client_as: Callable[..., GraphQLClient],
) -> None:
    """Yesterday's card sale refunded to the card today: the session's card total and
    the terminal's batch are both -12.20. That true figure closes it with no card
    difference (it was refused as negative, and 0.00 recorded a false difference)."""
    till = client_as(Role.VOLUNTEER, "till-1")
    first = await open_session(till)
    card = [{"method": "CARD", "amount": "12.20"}]
    sale = await ring(till, first["id"], "yesterday", ONE_COAT, card)
    close = {"idempotencyKey": "z1", "sessionId": first["id"], "countedCash": "100.00",
             "cardTerminalTotal": "12.20"}  # fmt: skip
    assert (await till.data(CLOSE, {"input": close}))["closeCashSession"]["__typename"] == "ZReport"
    second = await open_session(till, key="open-2")
    refund = {"idempotencyKey": "r", "saleId": sale["id"]}
    refunded = (await till.data(REFUND, {"input": refund}))["refundSale"]
    assert refunded["payments"] == card, refunded
    assert (await till.data(XREPORT, {"id": second["id"]}))["xReport"]["cardTotal"] == "-12.20"
    close = {"idempotencyKey": "z2", "sessionId": second["id"], "countedCash": "100.00",
             "cardTerminalTotal": "-12.20"}  # fmt: skip
    z = (await till.data(CLOSE, {"input": close}))["closeCashSession"]
    assert (z["__typename"], z["cardDifference"], z["difference"]) == ("ZReport", "0.00", "0.00")


async def test_a_cash_session_that_does_not_exist_is_not_found_not_pending(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    missing = "00000000-0000-0000-0000-000000000001"
    for query in (
        "query($id: ID!) { cashSession(id: $id) { id } }",
        "query($id: ID!) { xReport(sessionId: $id) { salesCount } }",
    ):
        body = await till.execute(query, {"id": missing})
        assert body["data"] is None, body
        error = body["errors"][0]
        assert error["extensions"]["code"] == "NOT_FOUND", body
        assert error["message"] == f"cash session {missing} does not exist", body
    # One just written is read back (the command waited for the read models).
    session = await open_session(till)
    found = await till.data(
        "query($id: ID!) { cashSession(id: $id) { id } }", {"id": session["id"]}
    )
    assert found == {"cashSession": {"id": session["id"]}}


async def test_a_cash_refund_the_drawer_cannot_pay_names_the_refund_method(
    client_as: Callable[..., GraphQLClient],
) -> None:
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till, opening="0.00")
    sale = await ring(till, session["id"], "s", ONE_COAT, [{"method": "CASH", "amount": "20.00"}])
    emptied = (
        await till.data(
            MOVE,
            {
                "input": {
                    "idempotencyKey": "bank",
                    "sessionId": session["id"],
                    "amount": "12.20",
                    "direction": "OUT",
                    "reason": "BANK_DEPOSIT",
                }
            },
        )
    )["recordCashMovement"]
    assert emptied["expectedCash"] == "0.00", emptied
    refused = (await till.data(REFUND, {"input": {"idempotencyKey": "r", "saleId": sale["id"]}}))[
        "refundSale"
    ]
    assert refused["__typename"] == "ValidationError", refused
    assert refused["field"] == "refundMethod"
    assert refused["message"].startswith("the drawer should hold only 0.00 EUR")


async def test_a_sale_that_waits_too_long_for_the_store_is_a_conflict_not_an_internal_error(
    client_as: Callable[..., GraphQLClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI on a slow day: eight sales rung at once on SQLite (one writer) waited past the
    writer pool's timeout and answered INTERNAL. Nothing was saved: a Conflict saying
    so, which the till may send again."""
    till = client_as(Role.VOLUNTEER, "till-1")
    session = await open_session(till)
    shop = till.runtime.shop

    def busy(*_args: object, **_kwargs: object) -> None:
        raise ConnectionUnavailableError("Timed out waiting for connection pool semaphore")

    head = till.head()
    with monkeypatch.context() as patched:
        patched.setattr(shop.recorder, "insert_events", busy)
        pay = [{"method": "CARD", "amount": "12.20"}]
        refused = await ring(till, session["id"], "busy", ONE_COAT, pay)
    assert refused["__typename"] == "Conflict", refused
    assert till.head() == head
    sold = await ring(
        till, session["id"], "busy", ONE_COAT, [{"method": "CARD", "amount": "12.20"}]
    )
    assert sold["__typename"] == "Sale", sold

"""Payments of one disbursement recorded out of order, on both stores: the fund
officer reads the bank statement in whatever order it comes, so a payment may be dated
before one recorded earlier, but the disbursement's `lastPaidOn` is the latest
payment's day, never the day recorded last, and a reversed payment is no longer one."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_welfare_graphql import APPROVE, COMMIT, ENROLL, PAY, _income, _policy
from tests.e2e.test_welfare_review_fixes_2 import REVERSE

DISBURSEMENT = "query D($id: ID!) { disbursement(id: $id) { lastPaidOn paid status } }"


async def _paid_twice_out_of_order(app_client: GraphQLClient) -> tuple[GraphQLClient, str]:
    """A RENT of 700.00 paid 300.00 on 20 August, then 400.00 on 15 August (recorded
    second); the treasurer who paid, and the disbursement's id."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    approver = app_client.as_person(Role.FUND_OFFICER)
    treasurer = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p", "2025-01-01", [{"stream": "SHOP", "percent": "100"}])
    await _income(treasurer, "sale", "2025-08-01", "4100", "3000.00")
    enroll = {"idempotencyKey": "e", "program": "HOUSING", "enrolledOn": "2025-08-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    commit = {"idempotencyKey": "c", "beneficiaryRef": ref, "kind": "RENT",
              "month": "2025-08", "amount": "700.00", "effectiveDate": "2025-08-02"}  # fmt: skip
    disbursement_id = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]["id"]
    approve = {"idempotencyKey": "a", "disbursementId": disbursement_id,
               "effectiveDate": "2025-08-10"}  # fmt: skip
    await approver.data(APPROVE, {"input": approve})

    for key, amount, day in (("pay-1", "300.00", "2025-08-20"), ("pay-2", "400.00", "2025-08-15")):
        pay = {"idempotencyKey": key, "disbursementId": disbursement_id, "amount": amount,
               "paidOn": day}  # fmt: skip
        paid = (await treasurer.data(PAY, {"input": pay}))["payDisbursement"]
        assert paid["__typename"] == "Disbursement", paid
    return treasurer, disbursement_id


async def test_last_paid_on_is_the_latest_payment_whatever_the_order_recorded(
    app_client: GraphQLClient,
) -> None:
    treasurer, disbursement_id = await _paid_twice_out_of_order(app_client)
    row = (await treasurer.data(DISBURSEMENT, {"id": disbursement_id}))["disbursement"]
    assert row == {"lastPaidOn": "2025-08-20", "paid": "700.00", "status": "PAID"}
    loaded = app_client.runtime.welfare.get_disbursement(UUID(disbursement_id))
    assert loaded.last_paid_on == date(2025, 8, 20)


async def test_last_paid_on_leaves_out_reversed_payments(app_client: GraphQLClient) -> None:
    treasurer, disbursement_id = await _paid_twice_out_of_order(app_client)

    async def reverse(payment: int) -> dict[str, Any]:
        reversal = {"idempotencyKey": f"reverse-{payment}", "disbursementId": disbursement_id,
                    "payment": payment, "reason": "RETURNED_BY_BANK",
                    "effectiveDate": "2025-08-25"}  # fmt: skip
        answer = (await treasurer.data(REVERSE, {"input": reversal}))["reverseDisbursementPayment"]
        assert answer["__typename"] == "Disbursement", answer
        row: dict[str, Any] = (await treasurer.data(DISBURSEMENT, {"id": disbursement_id}))[
            "disbursement"
        ]
        loaded = app_client.runtime.welfare.get_disbursement(UUID(disbursement_id))
        assert row["lastPaidOn"] == (loaded.last_paid_on and loaded.last_paid_on.isoformat())
        return row

    # The bank returned the 20 August payment: the 15 August one is the latest left.
    assert await reverse(1) == {"lastPaidOn": "2025-08-15", "paid": "400.00", "status": "APPROVED"}
    # And with both returned, nothing stands as paid.
    assert await reverse(2) == {"lastPaidOn": None, "paid": "0.00", "status": "APPROVED"}

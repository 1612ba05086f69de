"""Payments of one disbursement recorded out of order, on both stores: the fund
officer reads the bank statement in whatever order it comes, so a payment may be dated
before one recorded earlier, but the disbursement's `lastPaidOn` is the latest
payment's day, never the day recorded last."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_welfare_graphql import APPROVE, COMMIT, ENROLL, PAY, _income, _policy

DISBURSEMENT = "query D($id: ID!) { disbursement(id: $id) { lastPaidOn paid status } }"


async def test_last_paid_on_is_the_latest_payment_whatever_the_order_recorded(
    app_client: GraphQLClient,
) -> None:
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

    row = (await treasurer.data(DISBURSEMENT, {"id": disbursement_id}))["disbursement"]
    assert row == {"lastPaidOn": "2025-08-20", "paid": "700.00", "status": "PAID"}
    loaded = app_client.runtime.welfare.get_disbursement(UUID(disbursement_id))
    assert loaded.last_paid_on == date(2025, 8, 20)

"""The welfare fund review's findings (/work/reviews/fund.md), through GraphQL on both
stores: what was accepted and should not have been is refused, and nothing is stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.common.auth import Role
from services.common.settings import Settings
from tests.e2e.conftest import GraphQLClient, serving
from tests.e2e.test_welfare_graphql import (
    APPROVE,
    BALANCE,
    CANCEL,
    COMMIT,
    ENROLL,
    PAY,
    REVERSE_PAYMENT,
    _income,
    _policy,
)

POLICY_WITH_ACCOUNTS = """
mutation P($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) {
    __typename
    ... on RedistributionPolicy { effectiveFrom }
    ... on ValidationError { field message }
    ... on Conflict { message }
  }
}
"""
STIPEND_RULES = """
mutation S($input: SetStipendRulesInput!) {
  setStipendRules(input: $input) {
    __typename
    ... on StipendRuleSet { effectiveFrom fullAmount floorAmount }
    ... on ValidationError { field message }
    ... on Conflict { message }
  }
}
"""
ATTEND = """
mutation A($i: RecordAttendanceInput!) { recordAttendance(input: $i) {
  __typename ... on ValidationError { field message } } }
"""
BENEFICIARY = """
query B($r: String!) { beneficiary(beneficiaryRef: $r) {
  forgotten enrolledOn
  attendance { month scheduledDays attendedDays mealsProvided partTime stipend } } }
"""
DISBURSEMENTS = "query { disbursements { nodes { id kind month amount paid status } } }"


def _rules(key: str, day: str, **amounts: str) -> dict[str, Any]:
    return {
        "idempotencyKey": key,
        "effectiveFrom": day,
        "fullAmount": "500.00",
        "withMealsAmount": "400.00",
        "partTimeAmount": "350.00",
        "floorAmount": "300.00",
        "fullAttendancePercent": "80",
        **amounts,
    }


def _by_program(balance: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {p["program"]: p for p in balance["byProgram"]}


async def test_a_policy_cannot_map_restricted_income_to_a_stream_with_a_share(
    app_client: GraphQLClient,
) -> None:
    """Finding 1: 4210 (restricted grants) and 4410 (restricted donations) mapped to
    DONATION accrued 10% of restricted income. Refused on the mapping's stream."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    accounts = [
        {"accountPrefix": "40", "stream": "HOTEL"},
        {"accountPrefix": "41", "stream": "SHOP"},
        {"accountPrefix": "4200", "stream": "GRANT_UNRESTRICTED"},
        {"accountPrefix": "4210", "stream": "DONATION"},
        {"accountPrefix": "43", "stream": "CONTRACT"},
        {"accountPrefix": "4400", "stream": "DONATION"},
        {"accountPrefix": "4410", "stream": "DONATION"},
    ]
    policy = {
        "idempotencyKey": "restricted-remap",
        "effectiveFrom": "2025-01-01",
        "shares": [{"stream": "HOTEL", "percent": "9"}, {"stream": "DONATION", "percent": "10"}],
        "accountStreams": accounts,
    }
    head = app_client.head()
    refused = (await officer.data(POLICY_WITH_ACCOUNTS, {"input": policy}))[
        "setRedistributionPolicy"
    ]
    assert (refused["__typename"], refused["field"]) == (
        "ValidationError",
        "accountStreams[3].stream",
    ), refused
    assert "restricted" in refused["message"]
    # A prefix that takes the restricted accounts in is refused the same way.
    wide = {**policy, "idempotencyKey": "restricted-wide",
            "accountStreams": [{"accountPrefix": "4", "stream": "DONATION"}]}  # fmt: skip
    refused = (await officer.data(POLICY_WITH_ACCOUNTS, {"input": wide}))["setRedistributionPolicy"]
    assert (refused["__typename"], refused["field"]) == (
        "ValidationError",
        "accountStreams[0].stream",
    ), refused
    assert app_client.head() == head

    # Restricted accounts on restricted streams: accepted, and they accrue nothing.
    accounts[3]["stream"] = "GRANT_RESTRICTED"
    accounts[6]["stream"] = "DONATION_RESTRICTED"
    kept = {**policy, "idempotencyKey": "restricted-kept", "accountStreams": accounts}
    accepted = (await officer.data(POLICY_WITH_ACCOUNTS, {"input": kept}))[
        "setRedistributionPolicy"
    ]
    assert accepted["__typename"] == "RedistributionPolicy", accepted
    await _income(admin, "restricted-grant", "2025-03-01", "4210", "1000.00")
    await _income(admin, "restricted-gift", "2025-03-01", "4410", "500.00")
    await _income(admin, "gift", "2025-03-01", "4400", "100.00")
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert balance["accrued"] == "10.00"  # 10% of the unrestricted gift only


async def _paid_then_reversed(app_client: GraphQLClient) -> str:
    """HOUSING rent of 700.00 committed 2025-08-02, approved 08-10, paid 08-20 and
    the payment reversed on 09-01 (the review's d3)."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p-reversal", "2025-01-01", [{"stream": "SHOP", "percent": "100"}])
    await _income(admin, "sale-reversal", "2025-08-01", "4100", "3000.00")  # 1,500 each
    enroll = {"idempotencyKey": "e-reversal", "program": "HOUSING", "enrolledOn": "2025-08-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    commit = {"idempotencyKey": "c-reversal", "beneficiaryRef": ref, "kind": "RENT",
              "month": "2025-08", "amount": "700.00", "effectiveDate": "2025-08-02"}  # fmt: skip
    did: str = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]["id"]
    approve = {"idempotencyKey": "a-reversal", "disbursementId": did,
               "effectiveDate": "2025-08-10"}  # fmt: skip
    approver = app_client.as_person(Role.FUND_OFFICER)  # not whoever committed
    assert (await approver.data(APPROVE, {"input": approve}))["approveDisbursement"][
        "status"
    ] == "APPROVED"
    pay = {"idempotencyKey": "pay-reversal", "disbursementId": did, "amount": "700.00",
           "paidOn": "2025-08-20"}  # fmt: skip
    assert (await admin.data(PAY, {"input": pay}))["payDisbursement"]["status"] == "PAID"
    reverse = {"idempotencyKey": "rev-reversal", "disbursementId": did, "payment": 1,
               "reason": "WRONG_AMOUNT", "effectiveDate": "2025-09-01"}  # fmt: skip
    reversed_ = (await officer.data(REVERSE_PAYMENT, {"input": reverse}))[
        "reverseDisbursementPayment"
    ]
    assert reversed_["status"] == "APPROVED", reversed_
    return did


async def test_a_cancellation_is_not_dated_before_a_payment_reversal(
    app_client: GraphQLClient,
) -> None:
    """Finding 2: cancelled on 08-30, before the reversal on 09-01, HOUSING showed
    committed -700.00 as of 08-31 and a back-dated commitment took money that had
    been paid out on those days."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    did = await _paid_then_reversed(app_client)
    head = app_client.head()
    early = {"idempotencyKey": "x-early", "disbursementId": did, "effectiveDate": "2025-08-30"}
    refused = (await officer.data(CANCEL, {"input": early}))["cancelDisbursement"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveDate")
    assert "2025-09-01" in refused["message"]
    assert app_client.head() == head
    as_of = (await officer.data(BALANCE, {"asOf": "2025-08-31T23:00:00+02:00"}))["fundBalance"]
    housing = _by_program(as_of)["HOUSING"]
    assert (housing["committed"], housing["disbursed"]) == ("0.00", "700.00")

    on_time = {**early, "idempotencyKey": "x-on-time", "effectiveDate": "2025-09-01"}
    cancelled = (await officer.data(CANCEL, {"input": on_time}))["cancelDisbursement"]
    assert (cancelled["status"], cancelled["released"]) == ("CANCELLED", "700.00")
    as_of = (await officer.data(BALANCE, {"asOf": "2025-08-31T23:00:00+02:00"}))["fundBalance"]
    assert _by_program(as_of)["HOUSING"]["committed"] == "0.00"


async def test_a_payment_is_not_dated_before_the_reversal_of_an_earlier_one(
    app_client: GraphQLClient,
) -> None:
    """Finding 3: paid 08-20, reversed 09-01, paid again dated 08-25: the disbursement
    counted as paid twice (committed -700.00) between 08-25 and 09-01."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    did = await _paid_then_reversed(app_client)
    head = app_client.head()
    again = {"idempotencyKey": "pay-early", "disbursementId": did, "amount": "700.00",
             "paidOn": "2025-08-25"}  # fmt: skip
    refused = (await officer.data(PAY, {"input": again}))["payDisbursement"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "paidOn")
    assert "2025-09-01" in refused["message"]
    assert app_client.head() == head
    as_of = (await officer.data(BALANCE, {"asOf": "2025-08-31T12:00:00+02:00"}))["fundBalance"]
    housing = _by_program(as_of)["HOUSING"]
    assert (housing["committed"], housing["disbursed"]) == ("0.00", "700.00")

    right = {**again, "idempotencyKey": "pay-right", "paidOn": "2025-09-02"}
    paid = (await officer.data(PAY, {"input": right}))["payDisbursement"]
    assert (paid["status"], paid["paid"]) == ("PAID", "700.00"), paid
    as_of = (await officer.data(BALANCE, {"asOf": "2025-09-30T12:00:00+02:00"}))["fundBalance"]
    housing = _by_program(as_of)["HOUSING"]
    assert (housing["committed"], housing["disbursed"]) == ("0.00", "700.00")


async def test_stipend_rules_that_contradict_each_other_are_refused(
    app_client: GraphQLClient,
) -> None:
    """Finding 4: a floor of 600.00 over a full amount of 500.00 paid the full stipend
    at any attendance; meals or part time above the full amount raised it."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    head = app_client.head()
    for index, (amounts, field) in enumerate(
        (
            ({"floorAmount": "600.00"}, "floorAmount"),
            ({"floorAmount": "360.00"}, "floorAmount"),  # above part time
            ({"withMealsAmount": "500.01"}, "withMealsAmount"),
            ({"partTimeAmount": "600.00"}, "partTimeAmount"),
        )
    ):
        rules = _rules(f"rules-bad-{index}", "2026-06-01", **amounts)
        refused = (await officer.data(STIPEND_RULES, {"input": rules}))["setStipendRules"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), refused
    assert app_client.head() == head
    ok = _rules("rules-ok", "2026-06-01", floorAmount="350.00")  # equal to part time
    accepted = (await officer.data(STIPEND_RULES, {"input": ok}))["setStipendRules"]
    assert accepted["__typename"] == "StipendRuleSet", accepted


async def test_a_stipend_rules_version_for_a_day_that_has_one_is_a_conflict(
    app_client: GraphQLClient,
) -> None:
    """Finding 5 (stipend rules; policies: test_welfare_graphql.py): one fund
    officer's rules for 2026-06-01 silently replaced another's. Now refused, and a
    retry of the first request still gets the first answer."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    colleague = app_client.as_person(Role.FUND_OFFICER)
    first_rules = _rules("rules-first", "2026-06-01", fullAmount="450.00")
    first = (await colleague.data(STIPEND_RULES, {"input": first_rules}))["setStipendRules"]
    assert first["__typename"] == "StipendRuleSet", first
    head = app_client.head()
    second = _rules("rules-officer", "2026-06-01")
    refused = (await officer.data(STIPEND_RULES, {"input": second}))["setStipendRules"]
    assert refused["__typename"] == "Conflict", refused
    assert "2026-06-01" in refused["message"]
    retried = (await colleague.data(STIPEND_RULES, {"input": first_rules}))["setStipendRules"]
    assert retried == first
    assert app_client.head() == head
    # The rules in force are the first version's.
    assert app_client.runtime.welfare.fund().stipend_rules_on(date(2026, 6, 1)).full_cents == (
        45_000
    )


async def test_forgetting_a_beneficiary_drops_her_attendance_and_keeps_the_money(
    app_client: GraphQLClient,
) -> None:
    """Finding 7: after forgetBeneficiary the month-by-month attendance (days, meals,
    part time) was still there. It goes from the read model, also after a rebuild;
    what was committed and paid stays in the disbursements."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p-forget", "2025-01-01", [{"stream": "SHOP", "percent": "100"}])
    await _income(admin, "sale-forget", "2025-05-01", "4100", "2000.00")
    enroll = {"idempotencyKey": "e-forget", "program": "INTERNSHIP", "enrolledOn": "2025-05-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    attend = {"idempotencyKey": "att-forget", "beneficiaryRef": ref, "month": "2025-05",
              "scheduledDays": 20, "attendedDays": 15, "mealsProvided": True}  # fmt: skip
    assert (await officer.data(ATTEND, {"i": attend}))["recordAttendance"][
        "__typename"
    ] == "Beneficiary"
    commit = {"idempotencyKey": "c-forget", "beneficiaryRef": ref, "kind": "STIPEND",
              "month": "2025-05", "effectiveDate": "2025-06-02"}  # fmt: skip
    committed = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    assert committed["amount"] == "300.00", committed  # 75% of 400.00, the floor
    before = (await officer.data(BENEFICIARY, {"r": ref}))["beneficiary"]
    assert [a["attendedDays"] for a in before["attendance"]] == [15]
    disbursements = await admin.data(DISBURSEMENTS)
    balance = (await officer.data(BALANCE))["fundBalance"]

    forget = (
        "mutation F($i: ForgetBeneficiaryInput!) { forgetBeneficiary(input: $i) { __typename } }"
    )
    await officer.data(forget, {"i": {"idempotencyKey": "f-forget", "beneficiaryRef": ref}})
    after = (await officer.data(BENEFICIARY, {"r": ref}))["beneficiary"]
    assert (after["forgotten"], after["attendance"]) == (True, [])
    assert await admin.data(DISBURSEMENTS) == disbursements  # the money facts stay
    assert (await officer.data(BALANCE))["fundBalance"] == balance

    app_client.runtime.projector.rebuild()
    assert (await officer.data(BENEFICIARY, {"r": ref}))["beneficiary"] == after
    assert await admin.data(DISBURSEMENTS) == disbursements


async def test_nothing_is_dated_before_the_books_opened(settings: Settings) -> None:
    """Finding 8: an enrolment on 1900-01-01 was accepted (the books open 2000-01-01),
    and then money for months no report covers. A beneficiary enrolled before the
    books' first day (recorded before this was checked, or before the day was moved
    on) gets no attendance or commitment for those months either."""
    async with serving(settings) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        head = app_client.head()
        old = {"idempotencyKey": "e-1900", "program": "HOUSING", "enrolledOn": "1900-01-01"}
        refused = await officer.execute(
            "mutation E($input: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $input) "
            "{ __typename ... on ValidationError { field message } } }",
            {"input": old},
        )
        member = refused["data"]["enrollBeneficiary"]
        assert (member["__typename"], member["field"]) == ("ValidationError", "enrolledOn")
        assert "2000-01-01" in member["message"]
        assert app_client.head() == head
        legacy = {"idempotencyKey": "e-legacy", "program": "INTERNSHIP", "enrolledOn": "2024-02-01"}
        ref = (await officer.data(ENROLL, {"input": legacy}))["enrollBeneficiary"]["beneficiaryRef"]

    moved = settings.model_copy(update={"books_opened_on": date(2025, 1, 15)})
    async with serving(moved) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        head = app_client.head()
        attend = {"idempotencyKey": "att-2024", "beneficiaryRef": ref, "month": "2024-12",
                  "scheduledDays": 20, "attendedDays": 20}  # fmt: skip
        member = (await officer.data(ATTEND, {"i": attend}))["recordAttendance"]
        assert (member["__typename"], member["field"]) == ("ValidationError", "month"), member
        commit = {"idempotencyKey": "c-2024", "beneficiaryRef": ref, "kind": "STIPEND",
                  "month": "2024-12", "effectiveDate": "2025-02-01"}  # fmt: skip
        member = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
        assert (member["__typename"], member["field"]) == ("ValidationError", "month"), member
        assert "2025-01-15" in member["message"]
        assert app_client.head() == head
        # The month the books opened in is in the books.
        january = {**attend, "idempotencyKey": "att-2025", "month": "2025-01"}
        member = (await officer.data(ATTEND, {"i": january}))["recordAttendance"]
        assert member["__typename"] == "Beneficiary", member


PAY_FOUR_EYES = """
mutation Pay($input: PayDisbursementInput!) { payDisbursement(input: $input) {
  __typename
  ... on Disbursement { id status paid }
  ... on PaymentByApprover { message }
  ... on PersonRequired { message }
} }
"""


async def test_a_disbursement_is_not_paid_by_whoever_approved_it(
    app_client: GraphQLClient,
) -> None:
    """Governance review, four eyes: one fund officer committed, approved and paid
    alone (Dr 2400 / Cr 1010, money out of the bank). The approver's payment is now
    PaymentByApprover, nothing is stored and its idempotency key stays free; another
    fund officer (here the one who committed: maker and checker are two people, the
    payer is not the checker) or an admin pays. A device key is not a person: the
    officers' own devices pay nothing (PersonRequired)."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    colleague = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p-4eyes", "2025-01-01", [{"stream": "SHOP", "percent": "100"}])
    await _income(admin, "sale-4eyes", "2025-08-01", "4100", "3000.00")  # 1,500 each
    enroll = {"idempotencyKey": "e-4eyes", "program": "HOUSING", "enrolledOn": "2025-08-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    dids = []
    for month in ("2025-08", "2025-09"):
        commit = {"idempotencyKey": f"c-4eyes-{month}", "beneficiaryRef": ref, "kind": "RENT",
                  "month": month, "amount": "700.00", "effectiveDate": "2025-09-02"}  # fmt: skip
        did = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]["id"]
        approve = {"idempotencyKey": f"a-4eyes-{month}", "disbursementId": did,
                   "effectiveDate": "2025-09-03"}  # fmt: skip
        approved = (await colleague.data(APPROVE, {"input": approve}))["approveDisbursement"]
        assert approved["status"] == "APPROVED", approved
        dids.append(did)

    head = app_client.head()
    balance = (await officer.data(BALANCE))["fundBalance"]
    pay = {"idempotencyKey": "pay-4eyes", "disbursementId": dids[0], "amount": "700.00",
           "paidOn": "2025-09-04"}  # fmt: skip
    for attempt in range(2):  # a retry is refused the same way: nothing was recorded
        refused = (await colleague.data(PAY_FOUR_EYES, {"input": pay}))["payDisbursement"]
        assert refused["__typename"] == "PaymentByApprover", (attempt, refused)
        assert "approved by the same person" in refused["message"]
    device = app_client.as_role(Role.FUND_OFFICER)
    refused = (await device.data(PAY_FOUR_EYES, {"input": pay}))["payDisbursement"]
    assert refused["__typename"] == "PersonRequired", refused
    assert app_client.head() == head  # no payment, no ledger entry, no claimed key
    assert (await officer.data(BALANCE))["fundBalance"] == balance
    assert balance["disbursed"] == "0.00"

    # The same key, now from another fund officer: it was not consumed by the refusal.
    paid = (await officer.data(PAY_FOUR_EYES, {"input": pay}))["payDisbursement"]
    assert (paid["__typename"], paid["status"], paid["paid"]) == ("Disbursement", "PAID", "700.00")
    by_admin = {**pay, "idempotencyKey": "pay-4eyes-admin", "disbursementId": dids[1]}
    paid = (await admin.data(PAY_FOUR_EYES, {"input": by_admin}))["payDisbursement"]
    assert (paid["__typename"], paid["status"]) == ("Disbursement", "PAID"), paid
    assert (await officer.data(BALANCE))["fundBalance"]["disbursed"] == "1400.00"


async def test_only_the_fund_officer_sets_the_funds_rules(app_client: GraphQLClient) -> None:
    """Governance review: the cooperative's admin, who pays into the fund, could set
    the redistribution policy and the stipend rules, and so lower its own
    contribution. Both are the territorial enterprise's (fund officer): the admin
    gets FORBIDDEN and nothing is stored."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p-rules", "2025-01-01", [{"stream": "HOTEL", "percent": "10"}])
    policies_query = "query { redistributionPolicies { effectiveFrom shares { stream percent } } }"
    policies = await admin.data(policies_query)
    head = app_client.head()

    lower = {"idempotencyKey": "p-admin", "effectiveFrom": "2027-01-01",
             "shares": [{"stream": "HOTEL", "percent": "0"}]}  # fmt: skip
    rules = _rules("rules-admin", "2027-01-01", fullAmount="450.00")
    for document, value, name in (
        (POLICY_WITH_ACCOUNTS, lower, "setRedistributionPolicy"),
        (STIPEND_RULES, rules, "setStipendRules"),
    ):
        body = await admin.execute(document, {"input": value})
        assert body["data"] is None or body["data"][name] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert app_client.head() == head
    assert await admin.data(policies_query) == policies
    fund = app_client.runtime.welfare.fund()
    assert fund.stipend_rules_on(date(2027, 1, 1)).full_cents == 50_000  # the defaults

    # The same requests from the fund officer are accepted (their keys are free).
    accepted = (await officer.data(POLICY_WITH_ACCOUNTS, {"input": lower}))[
        "setRedistributionPolicy"
    ]
    assert accepted["__typename"] == "RedistributionPolicy", accepted
    accepted = (await officer.data(STIPEND_RULES, {"input": rules}))["setStipendRules"]
    assert accepted["__typename"] == "StipendRuleSet", accepted

"""How long an internship lasts, on both stores: DOMAIN.md, "up to 12 months for
disadvantaged people (configurable)". A 13th month's attendance (and so its stipend)
went through without a word; the stipend rules now say how many months, 12 unless a
version says otherwise."""

from __future__ import annotations

from typing import Any

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_stipend_rules_graphql import ATTEND, ENROLL

SET = """
mutation S($input: SetStipendRulesInput!) { setStipendRules(input: $input) {
  __typename ... on StipendRuleSet { effectiveFrom maxMonths }
  ... on ValidationError { field message } } }
"""
LIST = "query { stipendRules { effectiveFrom maxMonths } }"


def _rules(key: str, day: str, max_months: int) -> dict[str, Any]:
    return {"idempotencyKey": key, "effectiveFrom": day, "fullAmount": "500.00",
            "withMealsAmount": "400.00", "partTimeAmount": "350.00",
            "floorAmount": "300.00", "fullAttendancePercent": "80",
            "maxMonths": max_months}  # fmt: skip


async def test_an_internship_lasts_twelve_months_unless_the_rules_say_otherwise(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    enroll = {"idempotencyKey": "e", "program": "INTERNSHIP", "enrolledOn": "2025-01-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]

    async def attend(month: str) -> dict[str, Any]:
        attendance = {"idempotencyKey": f"a-{month}", "beneficiaryRef": ref, "month": month,
                      "scheduledDays": 20, "attendedDays": 20}  # fmt: skip
        answer: dict[str, Any] = (await officer.data(ATTEND, {"input": attendance}))[
            "recordAttendance"
        ]
        return answer

    assert (await attend("2025-12"))["__typename"] == "Beneficiary"  # the 12th month
    head = app_client.head()
    refused = await attend("2026-01")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "month")
    assert "at most 12 months" in refused["message"]
    assert "month 13" in refused["message"]
    assert app_client.head() == head
    assert (await officer.data(LIST))["stipendRules"] == [
        {"effectiveFrom": "2000-01-01", "maxMonths": 12}
    ]

    typo = await officer.data(SET, {"input": _rules("r0", "2026-01-01", 140)})
    assert typo["setStipendRules"]["field"] == "maxMonths"
    longer = await officer.data(SET, {"input": _rules("r1", "2026-01-01", 14)})
    assert longer["setStipendRules"] == {
        "__typename": "StipendRuleSet", "effectiveFrom": "2026-01-01", "maxMonths": 14
    }  # fmt: skip
    assert (await attend("2026-01"))["__typename"] == "Beneficiary"
    assert (await attend("2026-02"))["__typename"] == "Beneficiary"  # month 14
    assert (await attend("2026-03"))["field"] == "month"


async def test_a_version_that_leaves_the_duration_out_keeps_the_one_in_force(
    app_client: GraphQLClient,
) -> None:
    """A version set only to raise the amounts reset the duration to 12, cutting off
    every internship already past its 12th month under an 18-month version."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    eighteen = await officer.data(SET, {"input": _rules("r18", "2025-01-01", 18)})
    assert eighteen["setStipendRules"]["maxMonths"] == 18
    raise_only = _rules("raise", "2026-01-01", 0)
    del raise_only["maxMonths"]
    raise_only["fullAmount"] = "550.00"
    raised = (await officer.data(SET, {"input": raise_only}))["setStipendRules"]
    assert raised == {
        "__typename": "StipendRuleSet",
        "effectiveFrom": "2026-01-01",
        "maxMonths": 18,
    }
    enroll = {"idempotencyKey": "e", "program": "INTERNSHIP", "enrolledOn": "2025-01-02"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    attendance = {"idempotencyKey": "a", "beneficiaryRef": ref, "month": "2026-03",
                  "scheduledDays": 20, "attendedDays": 20}  # fmt: skip
    answer = (await officer.data(ATTEND, {"input": attendance}))["recordAttendance"]
    assert answer["__typename"] == "Beneficiary", answer  # month 15 of 18


async def test_an_internship_begun_mid_month_keeps_its_last_weeks(
    app_client: GraphQLClient,
) -> None:
    """Twelve months from 20 January 2025 end on 19 January 2026: those last weeks
    fall in a thirteenth calendar month, and their attendance (and stipend) is the
    internship's own. Counted in calendar months they were refused."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    enroll = {"idempotencyKey": "e", "program": "INTERNSHIP", "enrolledOn": "2025-01-20"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]

    async def attend(month: str, days: int) -> dict[str, Any]:
        attendance = {"idempotencyKey": f"a-{month}-{days}", "beneficiaryRef": ref, "month": month,
                      "scheduledDays": days, "attendedDays": days}  # fmt: skip
        answer: dict[str, Any] = (await officer.data(ATTEND, {"input": attendance}))[
            "recordAttendance"
        ]
        return answer

    first_month = await attend("2025-01", 13)  # 20 to 31 January: 12 days
    assert (first_month["__typename"], first_month["field"]) == ("ValidationError", "scheduledDays")
    assert "2025-01-20 to 2025-01-31" in first_month["message"], first_month
    assert (await attend("2026-01", 20))["field"] == "scheduledDays"  # to 19 January
    assert (await attend("2026-01", 19))["__typename"] == "Beneficiary"
    refused = await attend("2026-02", 20)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "month")
    assert "from 2025-01-20 to 2026-01-19" in refused["message"], refused

"""stipendRules and withdrawStipendRules on both stores: a fund officer sees which
versions of the stipend rules exist, withdraws one set by mistake (EUR 5000.00 typed
for 500.00) before its first month begins, and sets the right one for the same day;
once the month has begun the withdrawal is refused and nothing is stored.

No fixed dates: "ahead" and "begun" are computed from the cooperative's today."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from gateway.runtime import Runtime
from services.common.auth import Role
from services.welfare_fund import application as welfare_application
from services.welfare_fund.domain import StipendRules
from tests.e2e.conftest import GraphQLClient

SET = """
mutation S($input: SetStipendRulesInput!) {
  setStipendRules(input: $input) {
    __typename
    ... on StipendRuleSet { effectiveFrom fullAmount withdrawn withdrawnOn }
    ... on ValidationError { field message }
    ... on Conflict { message }
  }
}
"""
WITHDRAW = """
mutation W($input: WithdrawStipendRulesInput!) {
  withdrawStipendRules(input: $input) {
    __typename
    ... on StipendRuleSet { effectiveFrom fullAmount floorAmount withdrawn withdrawnOn }
    ... on ValidationError { field message }
    ... on NotFound { message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
  }
}
"""
LIST = "query { stipendRules { effectiveFrom fullAmount withdrawn withdrawnOn } }"
ENROLL = """
mutation E($input: EnrollBeneficiaryInput!) {
  enrollBeneficiary(input: $input) { __typename ... on Beneficiary { beneficiaryRef } } }
"""
ATTEND = """
mutation A($input: RecordAttendanceInput!) { recordAttendance(input: $input) {
  __typename ... on ValidationError { field message } } }
"""
BENEFICIARY = """
query B($r: String!) { beneficiary(beneficiaryRef: $r) { attendance { month stipend } } }
"""
DEFAULTS = ("2000-01-01", "500.00", False, None)  # the version the fund starts with


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _today(client: GraphQLClient) -> date:
    return client.runtime.welfare.today()


def _ahead(client: GraphQLClient) -> date:
    """The first day of the month after next: a month that has not begun."""
    return _first_of_next_month(_first_of_next_month(_today(client)))


def _rules(key: str, day: date, full: str) -> dict[str, Any]:
    return {
        "idempotencyKey": key,
        "effectiveFrom": day.isoformat(),
        "fullAmount": full,
        "withMealsAmount": "400.00",
        "partTimeAmount": "350.00",
        "floorAmount": "300.00",
        "fullAttendancePercent": "80",
    }


async def _set(client: GraphQLClient, key: str, day: date, full: str) -> Any:
    answer = (await client.data(SET, {"input": _rules(key, day, full)}))["setStipendRules"]
    assert answer["__typename"] == "StipendRuleSet", answer
    return answer


async def _withdraw(client: GraphQLClient, key: str, day: date) -> Any:
    variables = {"input": {"idempotencyKey": key, "effectiveFrom": day.isoformat()}}
    return (await client.data(WITHDRAW, variables))["withdrawStipendRules"]


async def _listing(client: GraphQLClient) -> list[tuple[str, str, bool, str | None]]:
    listed = (await client.data(LIST))["stipendRules"]
    return [(v["effectiveFrom"], v["fullAmount"], v["withdrawn"], v["withdrawnOn"]) for v in listed]


async def test_a_mistaken_version_is_listed_withdrawn_and_set_again(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    ahead = _ahead(app_client)
    day = ahead.isoformat()
    assert await _listing(officer) == [DEFAULTS]  # the starting version, listed
    await _set(officer, "rules-typo", ahead, "5000.00")
    assert await _listing(officer) == [DEFAULTS, (day, "5000.00", False, None)]

    before = _today(app_client)
    withdrawn = await _withdraw(officer, "w-typo", ahead)
    assert withdrawn["__typename"] == "StipendRuleSet", withdrawn
    assert (withdrawn["effectiveFrom"], withdrawn["fullAmount"]) == (day, "5000.00")
    assert (withdrawn["floorAmount"], withdrawn["withdrawn"]) == ("300.00", True)
    assert withdrawn["withdrawnOn"] in {before.isoformat(), _today(app_client).isoformat()}
    on = withdrawn["withdrawnOn"]
    assert await _listing(officer) == [DEFAULTS, (day, "5000.00", True, on)]
    # The month falls back to the defaults: EUR 500.00, not 5000.00.
    fund = app_client.runtime.welfare.fund()
    assert fund.stipend_rules_on(ahead).full_cents == 50_000

    # A retry answers the same and stores nothing; another key finds it withdrawn;
    # the key with another day is refused.
    head = app_client.head()
    assert await _withdraw(officer, "w-typo", ahead) == withdrawn
    again = await _withdraw(officer, "w-typo-again", ahead)
    assert again["__typename"] == "Conflict", again
    assert day in again["message"]
    assert "withdrawn" in again["message"]
    reused = await _withdraw(officer, "w-typo", _first_of_next_month(ahead))
    assert reused["__typename"] == "IdempotencyKeyReused", reused
    missing = await _withdraw(officer, "w-missing", _first_of_next_month(ahead))
    assert missing["__typename"] == "NotFound", missing
    assert app_client.head() == head

    # The day takes the right version, listed after the withdrawn one.
    corrected = await _set(officer, "rules-right", ahead, "550.00")
    assert (corrected["withdrawn"], corrected["withdrawnOn"]) == (False, None)
    assert await _listing(officer) == [
        DEFAULTS,
        (day, "5000.00", True, on),
        (day, "550.00", False, None),
    ]
    assert app_client.runtime.welfare.fund().stipend_rules_on(ahead).full_cents == 55_000
    # The first withdrawal's retry still gets its own answer; the new version stays.
    assert await _withdraw(officer, "w-typo", ahead) == withdrawn
    assert (await _listing(officer))[-1] == (day, "550.00", False, None)


async def test_a_version_whose_month_has_begun_is_refused_and_nothing_stored(
    app_client: GraphQLClient,
) -> None:
    """This month's attendance is recorded with this month's version: withdrawing it
    would leave that stipend computed with rules the fund no longer lists."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    today = _today(app_client)
    this_month = today.replace(day=1)
    await _set(officer, "rules-now", this_month, "450.00")
    # Enrolled on the month's first day: the whole month is the internship's.
    enrolment = {"idempotencyKey": "enrol", "program": "INTERNSHIP",
                 "enrolledOn": this_month.isoformat()}  # fmt: skip
    enrolled = await officer.data(ENROLL, {"input": enrolment})
    ref = enrolled["enrollBeneficiary"]["beneficiaryRef"]
    month = f"{this_month:%Y-%m}"
    attendance = {"idempotencyKey": "att", "beneficiaryRef": ref, "month": month,
                  "scheduledDays": 20, "attendedDays": 20}  # fmt: skip
    recorded = (await officer.data(ATTEND, {"input": attendance}))["recordAttendance"]
    assert recorded["__typename"] == "Beneficiary", recorded
    listing = await _listing(officer)
    head = app_client.head()

    refused = await _withdraw(officer, "w-now", this_month)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert month in refused["message"]
    assert "has not begun" in refused["message"]
    assert _first_of_next_month(today).isoformat() in refused["message"]  # where to start
    assert app_client.head() == head
    assert await _listing(officer) == listing
    stipends = (await officer.data(BENEFICIARY, {"r": ref}))["beneficiary"]["attendance"]
    assert stipends == [{"month": month, "stipend": "450.00"}]

    starting = await _withdraw(officer, "w-start", date(2000, 1, 1))
    assert (starting["__typename"], starting["field"]) == ("ValidationError", "effectiveFrom")
    assert "falls back" in starting["message"]
    assert app_client.head() == head

    # A day after the 1st governs from next month, which has not begun: withdrawn.
    mid_month = this_month + timedelta(days=1)
    await _set(officer, "rules-mid", mid_month, "480.00")
    assert (await _withdraw(officer, "w-now", mid_month))["withdrawn"] is True  # key free


async def test_readers_list_but_only_the_fund_officer_withdraws(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    ahead = _ahead(app_client)
    await _set(officer, "rules-typo", ahead, "5000.00")
    listing = await _listing(officer)
    auditor, admin = app_client.as_person(Role.AUDITOR), app_client.as_person(Role.ADMIN)
    for reader in (auditor, admin, app_client.as_role(Role.AUDITOR)):
        assert await _listing(reader) == listing
    head = app_client.head()
    variables = {"input": {"idempotencyKey": "w-other", "effectiveFrom": ahead.isoformat()}}
    for caller in (auditor, admin, app_client.as_role(Role.ADMIN)):
        body = await caller.execute(WITHDRAW, variables)
        assert body["data"] is None or body["data"]["withdrawStipendRules"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert app_client.head() == head
    assert await _listing(auditor) == listing
    # The key stayed free for the fund officer.
    assert (await _withdraw(officer, "w-other", ahead))["withdrawn"] is True


def test_a_retry_on_another_day_is_the_same_request(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    welfare = runtime.welfare
    today = welfare.today()
    ahead = _first_of_next_month(_first_of_next_month(today))
    welfare.set_stipend_rules(key="typo", actor="t", rules=StipendRules(ahead, full_cents=500_000))
    first = welfare.withdraw_stipend_rules(key="w", actor="t", effective_from=ahead)
    monkeypatch.setattr(welfare, "today", lambda: today + timedelta(days=1))
    retried = welfare.withdraw_stipend_rules(key="w", actor="t", effective_from=ahead)
    assert retried.replayed
    assert retried.result == first.result


def test_a_rules_request_stored_without_its_state_replays_after_a_withdrawal(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests stored before the answer kept its state are answered from the book:
    the version they set is found among the withdrawn ones (not a KeyError)."""
    welfare = runtime.welfare
    ahead = _first_of_next_month(_first_of_next_month(welfare.today()))
    rules = StipendRules(ahead, full_cents=500_000)
    with monkeypatch.context() as old_style:
        old_style.setattr(welfare_application, "ref_with_state", lambda ref, _state: ref)
        welfare.set_stipend_rules(key="typo", actor="t", rules=rules)
    welfare.withdraw_stipend_rules(key="w", actor="t", effective_from=ahead)
    replayed = welfare.set_stipend_rules(key="typo", actor="t", rules=rules)
    assert replayed.replayed
    assert replayed.result == rules

"""A month's stipend rules are fixed by its first recorded attendance, on both
stores: setStipendRules refuses a version that would govern such a month (its
interns would be paid by two sets of rules), and an attendance racing a change of
the rules ends with one consistent outcome, whichever saves first.

The races are made deterministic: the other command runs inside the first one's
decision, after it read the fund's book and before it saved."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.errors import Conflict, ValidationError
from services.welfare_fund.domain import Beneficiary, Program, StipendRules, WelfareFund
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_stipend_rules_graphql import ATTEND, BENEFICIARY, ENROLL, _rules

MARCH, APRIL = date(2025, 3, 1), date(2025, 4, 1)
OFFICER = "person:officer"

SET = """
mutation S($input: SetStipendRulesInput!) {
  setStipendRules(input: $input) {
    __typename
    ... on StipendRuleSet { effectiveFrom fullAmount }
    ... on ValidationError { field message }
  }
}
"""
LIST = "query { stipendRules { effectiveFrom fullAmount withdrawn } }"


async def _enrol(officer: GraphQLClient, key: str) -> str:
    enrolled = await officer.data(
        ENROLL,
        {"input": {"idempotencyKey": key, "program": "INTERNSHIP", "enrolledOn": "2025-01-01"}},
    )
    ref: str = enrolled["enrollBeneficiary"]["beneficiaryRef"]
    return ref


async def _attend(officer: GraphQLClient, key: str, ref: str, month: date) -> None:
    attendance = {"idempotencyKey": key, "beneficiaryRef": ref, "month": f"{month:%Y-%m}",
                  "scheduledDays": 20, "attendedDays": 20}  # fmt: skip
    recorded = (await officer.data(ATTEND, {"input": attendance}))["recordAttendance"]
    assert recorded["__typename"] == "Beneficiary", recorded


async def test_a_version_for_a_month_with_recorded_attendance_is_refused(
    app_client: GraphQLClient,
) -> None:
    """March's first intern was paid EUR 500.00: a version raising March to 550.00
    would leave her at 500.00 and the next one at 550.00."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    first, second = await _enrol(officer, "enrol-1"), await _enrol(officer, "enrol-2")
    await _attend(officer, "att-1", first, MARCH)
    listing = (await officer.data(LIST))["stipendRules"]
    head = app_client.head()

    answer = await officer.data(SET, {"input": _rules("rules", MARCH, "550.00")})
    refused = answer["setStipendRules"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert "2025-03" in refused["message"]
    assert "2025-04-01" in refused["message"]  # where the version can start
    assert app_client.head() == head
    assert (await officer.data(LIST))["stipendRules"] == listing

    # The second intern's March is paid like the first's; April takes the new version,
    # asked for with the same key (a refusal leaves it free).
    await _attend(officer, "att-2", second, MARCH)
    answer = await officer.data(SET, {"input": _rules("rules", APRIL, "550.00")})
    assert answer["setStipendRules"]["__typename"] == "StipendRuleSet", answer
    await _attend(officer, "att-2-april", second, APRIL)
    stipends = (await officer.data(BENEFICIARY, {"r": second}))["beneficiary"]["attendance"]
    assert sorted((a["month"], a["stipend"]) for a in stipends) == [
        ("2025-03", "500.00"),
        ("2025-04", "550.00"),
    ]


def _enrol_intern(runtime: Runtime, key: str) -> Beneficiary:
    return runtime.welfare.enroll(
        key=key, actor=OFFICER, program=Program.INTERNSHIP, enrolled_on=MARCH, case_note=None
    ).result


def _record_march(runtime: Runtime, key: str, intern: Beneficiary, attended_days: int = 20) -> None:
    runtime.welfare.record_attendance(
        key=key,
        actor=OFFICER,
        beneficiary_id=intern.id,
        month="2025-03",
        scheduled_days=20,
        attended_days=attended_days,
        meals_provided=False,
        part_time=False,
    )


def _once_before(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, interloper: Callable[[], object]
) -> list[int]:
    """Run `interloper` the first time `owner.name` is called, before it; the list
    counts the calls (each is one decision of the command)."""
    original = getattr(owner, name)
    calls: list[int] = []

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            interloper()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_a_version_saved_while_attendance_is_decided_pays_that_attendance(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attendance read the book (EUR 500.00 for March), then a version raising
    March to 550.00 was saved: the attendance's save loses, and deciding again it
    computes 550.00, the rules the fund now has for March."""
    intern = _enrol_intern(runtime, "enrol")
    raised = StipendRules(effective_from=MARCH, full_cents=55_000)
    decisions = _once_before(
        monkeypatch,
        Beneficiary,
        "record_attendance",
        lambda: runtime.welfare.set_stipend_rules(key="raise", actor=OFFICER, rules=raised),
    )
    _record_march(runtime, "march", intern)
    assert len(decisions) == 2
    assert runtime.welfare.get_beneficiary(intern.id).stipends == {"2025-03": 55_000}
    assert runtime.welfare.fund().stipend_rules_on(MARCH) == raised


def test_attendance_saved_while_a_version_is_decided_refuses_the_version(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version read the book (no attendance for March), then March's first
    attendance was saved at EUR 500.00: the version's save loses, and deciding again
    it is refused; nothing of it is stored."""
    intern = _enrol_intern(runtime, "enrol")
    decisions = _once_before(
        monkeypatch,
        WelfareFund,
        "set_stipend_rules",
        lambda: _record_march(runtime, "march", intern),
    )
    with pytest.raises(ValidationError) as refused:
        runtime.welfare.set_stipend_rules(
            key="raise", actor=OFFICER, rules=StipendRules(effective_from=MARCH, full_cents=55_000)
        )
    assert len(decisions) == 2
    assert refused.value.field == "effectiveFrom"
    assert runtime.welfare.get_beneficiary(intern.id).stipends == {"2025-03": 50_000}
    assert runtime.welfare.fund().stipend_rules_on(MARCH).full_cents == 50_000
    assert [v.effective_from for v, _ in runtime.welfare.stipend_rules_listing()] == [
        date(2000, 1, 1)
    ]


def test_attendance_saved_at_midnight_refuses_a_withdrawal_decided_the_day_before(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The withdrawal of April's version took its day on 31 March, just before
    midnight; April's first attendance was saved just after, paid by that version:
    the withdrawal loses, and deciding again (still on the 31st) it is refused."""
    welfare = runtime.welfare
    intern = _enrol_intern(runtime, "enrol")
    welfare.set_stipend_rules(
        key="april", actor=OFFICER, rules=StipendRules(effective_from=APRIL, full_cents=52_000)
    )
    real_today = welfare.today()
    today = [date(2025, 3, 31)]
    monkeypatch.setattr(welfare, "today", lambda: today[0])

    def attendance_after_midnight() -> None:
        today[0] = real_today
        welfare.record_attendance(
            key="april-attendance",
            actor=OFFICER,
            beneficiary_id=intern.id,
            month="2025-04",
            scheduled_days=20,
            attended_days=20,
            meals_provided=False,
            part_time=False,
        )

    decisions = _once_before(
        monkeypatch, WelfareFund, "withdraw_stipend_rules", attendance_after_midnight
    )
    with pytest.raises(ValidationError) as refused:
        welfare.withdraw_stipend_rules(key="withdraw", actor=OFFICER, effective_from=APRIL)
    assert len(decisions) == 2
    assert "2025-04" in str(refused.value)
    assert welfare.get_beneficiary(intern.id).stipends == {"2025-04": 52_000}
    assert welfare.fund().stipend_rules_on(APRIL).full_cents == 52_000
    assert welfare.fund().withdrawn_stipend_rules() == []


def test_two_officers_recording_one_month_do_not_overwrite_each_other(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another officer recorded her March (20 of 20 days) while this command decided
    (5 of 20): it loses, as any lost race does, instead of deciding again on her
    new record and silently replacing it."""
    intern = _enrol_intern(runtime, "enrol")
    _once_before(
        monkeypatch,
        Beneficiary,
        "record_attendance",
        lambda: _record_march(runtime, "other-officer", intern),
    )
    with pytest.raises(Conflict, match="Reload and try again"):
        _record_march(runtime, "this-officer", intern, attended_days=5)
    assert runtime.welfare.get_beneficiary(intern.id).stipends == {"2025-03": 50_000}


def test_a_refusal_by_the_current_state_is_decided_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attendance for a forgotten beneficiary is refused on its first decision; only
    a lost race is worth deciding again (a refusal would only repeat, five times)."""
    intern = _enrol_intern(runtime, "enrol")
    runtime.welfare.forget(key="forget", actor=OFFICER, beneficiary_id=intern.id)
    decisions = _once_before(monkeypatch, Beneficiary, "record_attendance", lambda: None)
    with pytest.raises(Conflict, match="forgotten"):
        _record_march(runtime, "march", intern)
    assert len(decisions) == 1


async def _stipends_of_a_year(
    app_client: GraphQLClient, enrolled_on: str, own_days: dict[str, int]
) -> dict[str, Decimal]:
    """Every calendar month an internship enrolled on `enrolled_on` touches (2025 and
    January 2026), each day attended; `own_days`: the internship's days of a month it
    covers only in part."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    enroll = {"idempotencyKey": "e", "program": "INTERNSHIP", "enrolledOn": enrolled_on}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    for year, number in [(2025, m) for m in range(1, 13)] + [(2026, 1)]:
        month = f"{year}-{number:02d}"
        days = own_days.get(month, calendar.monthrange(year, number)[1])
        attendance = {"idempotencyKey": f"a-{month}", "beneficiaryRef": ref, "month": month,
                      "scheduledDays": days, "attendedDays": days}  # fmt: skip
        answer = (await officer.data(ATTEND, {"input": attendance}))["recordAttendance"]
        assert answer["__typename"] == "Beneficiary", (month, answer)
    rows = (await officer.data(BENEFICIARY, {"r": ref}))["beneficiary"]["attendance"]
    return {row["month"]: Decimal(row["stipend"]) for row in rows}


@pytest.mark.parametrize(
    ("enrolled_on", "own_days", "partial"),
    [
        ("2025-01-02", {"2025-01": 30, "2026-01": 1}, {"2025-01": "483.87", "2026-01": "16.13"}),
        ("2025-01-31", {"2025-01": 1, "2026-01": 30}, {"2025-01": "16.13", "2026-01": "483.87"}),
    ],
    ids=["a last month of one day", "a first month of one day"],
)
async def test_a_twelve_month_internship_begun_mid_month_pays_twelve_stipends_not_thirteen(
    app_client: GraphQLClient, enrolled_on: str, own_days: dict[str, int], partial: dict[str, str]
) -> None:
    """Review dates #1: a month the internship covers only in part paid the whole
    stipend when its days were attended: 13 x EUR 500 for a twelve-month internship.
    A first or last month pays its share of the month's days (rounded half up)."""
    stipends = await _stipends_of_a_year(app_client, enrolled_on, own_days)
    assert {month: str(stipends[month]) for month in partial} == partial
    assert sum(stipends.values()) == 12 * Decimal("500.00")

"""A month's stipend rules are fixed once its first attendance is recorded, in
memory: a version set or withdrawn afterwards may not change which rules govern a
month whose stipends were already computed (some interns would be paid by the old
rules, the rest by the new, with nothing to show it). Months with no attendance yet
take new versions, begun or not. Dates are fixed: nothing here reads the clock."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import ValidationError
from services.welfare_fund.domain import StipendRules, WelfareFund

DEFAULTS = StipendRules(effective_from=date(2000, 1, 1))  # what the fund starts with
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def _rules(day: date, full_cents: int) -> StipendRules:
    return StipendRules(effective_from=day, full_cents=full_cents)


def _fund_with_march_recorded() -> WelfareFund:
    fund = WelfareFund.start(DEFAULTS)
    assert fund.fix_stipend_rules(MARCH) is True
    fund.collect_events()
    return fund


def test_the_first_attendance_of_a_month_is_recorded_in_the_book_once() -> None:
    fund = _fund_with_march_recorded()
    assert fund.fix_stipend_rules(MARCH) is False  # a second intern, the same month
    assert fund.collect_events() == []
    assert fund.fix_stipend_rules(APRIL) is True
    events = fund.collect_events()
    assert [type(e) for e in events] == [WelfareFund.StipendRulesApplied]
    assert [e.month for e in events if isinstance(e, WelfareFund.StipendRulesApplied)] == [
        "2026-04"
    ]


@pytest.mark.parametrize("day", [MARCH, date(2026, 2, 10), date(2025, 7, 1)])
def test_a_version_governing_a_recorded_month_is_refused_and_nothing_recorded(
    day: date,
) -> None:
    fund = _fund_with_march_recorded()
    with pytest.raises(ValidationError) as refused:
        fund.set_stipend_rules(_rules(day, 55_000))
    assert refused.value.field == "effectiveFrom"
    message = str(refused.value)
    assert "2026-03" in message
    assert "2000-01-01" in message  # the rules March was paid by
    assert "2026-04-01" in message  # the first day the version can start
    assert fund.collect_events() == []
    assert fund.stipend_rules_on(MARCH) == DEFAULTS


def test_months_without_attendance_take_new_versions_begun_or_not() -> None:
    fund = _fund_with_march_recorded()
    # From the 2nd of March: governs from April, which has no attendance yet.
    fund.set_stipend_rules(_rules(date(2026, 3, 2), 45_000))
    assert fund.stipend_rules_on(APRIL).full_cents == 45_000
    # June recorded too: a version from 15 June governs from July, nothing recorded.
    fund.fix_stipend_rules(date(2026, 6, 1))
    fund.set_stipend_rules(_rules(date(2026, 6, 15), 48_000))
    assert fund.stipend_rules_on(date(2026, 7, 1)).full_cents == 48_000
    assert fund.stipend_rules_on(date(2026, 6, 1)).full_cents == 45_000
    # One from 1 May would govern May (free) and June (recorded): refused for June.
    with pytest.raises(ValidationError) as refused:
        fund.set_stipend_rules(_rules(date(2026, 5, 1), 47_000))
    message = str(refused.value)
    assert "attendance for 2026-06 is" in message
    assert "rules from 2026-03-02" in message


def test_a_version_between_recorded_months_is_refused_only_for_those_it_governs() -> None:
    fund = WelfareFund.start(DEFAULTS)
    fund.set_stipend_rules(_rules(date(2026, 6, 1), 45_000))
    for month in (MARCH, date(2026, 7, 1)):
        fund.fix_stipend_rules(month)
    # From January: governs January to May, March among them.
    with pytest.raises(ValidationError) as refused:
        fund.set_stipend_rules(_rules(date(2026, 1, 1), 50_000))
    assert "2026-03" in str(refused.value)
    assert "2026-07" not in str(refused.value)  # June's version keeps July
    # From April: April and May, neither recorded.
    fund.set_stipend_rules(_rules(APRIL, 50_000))
    assert fund.stipend_rules_on(date(2026, 5, 1)).full_cents == 50_000


def test_a_message_names_many_months_briefly() -> None:
    fund = WelfareFund.start(DEFAULTS)
    for month in range(1, 13):
        fund.fix_stipend_rules(date(2025, month, 1))
    with pytest.raises(ValidationError) as refused:
        fund.set_stipend_rules(_rules(date(2025, 1, 1), 50_000))
    message = str(refused.value)
    assert "2025-01 and 11 later months through 2025-12" in message
    assert "2026-01-01" in message


def test_a_withdrawal_decided_before_the_month_began_is_refused_once_it_has_attendance() -> None:
    """The withdrawal took its day (the 31st) before midnight; an intern's attendance
    for the month was recorded after it. Saved first, the attendance wins: deciding
    again on the book, the withdrawal is refused even with its day still the 31st."""
    fund = WelfareFund.start(DEFAULTS)
    fund.set_stipend_rules(_rules(APRIL, 500_000))
    fund.fix_stipend_rules(APRIL)
    fund.collect_events()
    with pytest.raises(ValidationError) as refused:
        fund.withdraw_stipend_rules(APRIL, withdrawn_on=date(2026, 3, 31))
    assert refused.value.field == "effectiveFrom"
    assert "2026-04" in str(refused.value)
    assert "2026-05-01" in str(refused.value)
    assert fund.collect_events() == []
    assert fund.stipend_rules_on(APRIL).full_cents == 500_000


def test_the_recorded_months_replay_from_the_events() -> None:
    fund = WelfareFund.start(DEFAULTS)
    fund.fix_stipend_rules(MARCH)
    replayed: WelfareFund | None = None
    for event in fund.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None
    with pytest.raises(ValidationError):
        replayed.set_stipend_rules(_rules(MARCH, 50_000))


def test_a_book_from_a_snapshot_taken_before_months_were_recorded_still_works() -> None:
    fund = WelfareFund.start(DEFAULTS)
    del fund.__dict__["stipend_months"]  # as such a snapshot restores it
    fund.set_stipend_rules(_rules(date(2026, 2, 1), 50_000))  # nothing known recorded
    assert fund.fix_stipend_rules(MARCH) is True
    with pytest.raises(ValidationError):
        fund.set_stipend_rules(_rules(date(2026, 3, 1), 45_000))

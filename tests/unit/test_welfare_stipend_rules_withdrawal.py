"""Withdrawing a stipend rules version set by mistake (EUR 5000 typed for 500), in
memory: allowed while its first month has not begun (no attendance can carry it yet),
after which the version governs no month, stays in the book, and its day takes a new
version. Today is a parameter here (`withdrawn_on`), so the dates are fixed."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import Conflict, NotFound, ValidationError
from services.welfare_fund.domain import (
    StipendRules,
    StipendRulesWithdrawal,
    VersionWithdrawn,
    WelfareFund,
)

DEFAULTS = StipendRules(effective_from=date(2000, 1, 1))  # what the fund starts with
TODAY = date(2026, 11, 25)
JUNE, DECEMBER, JANUARY = date(2026, 6, 1), date(2026, 12, 1), date(2027, 1, 1)


def _rules(day: date, full_cents: int) -> StipendRules:
    return StipendRules(effective_from=day, full_cents=full_cents)


def _fund_with_a_mistake() -> WelfareFund:
    """EUR 450 from June 2026; EUR 5000 from January 2027, typed for 500."""
    fund = WelfareFund.start(DEFAULTS)
    fund.set_stipend_rules(_rules(JUNE, 45_000))
    fund.set_stipend_rules(_rules(JANUARY, 500_000))
    return fund


def _stipend_cents(fund: WelfareFund, month: date) -> int:
    """A full month's stipend as recording attendance computes it (rules of the 1st)."""
    rules = fund.stipend_rules_on(month)
    return rules.stipend_cents(
        scheduled_days=20, attended_days=20, meals_provided=False, part_time=False
    )


def test_a_withdrawn_version_governs_no_month_and_stays_in_the_book() -> None:
    fund = _fund_with_a_mistake()
    assert _stipend_cents(fund, JANUARY) == 500_000  # the mistake, before withdrawal
    withdrawal = fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY, actor="person:fo")
    assert withdrawal == StipendRulesWithdrawal(_rules(JANUARY, 500_000), TODAY)
    # January and every month after it fall back to June's EUR 450, not the defaults.
    for month in (JANUARY, date(2027, 2, 1), date(2028, 5, 1)):
        assert _stipend_cents(fund, month) == 45_000
    assert sorted(fund.stipend_rules) == ["2000-01-01", "2026-06-01"]
    assert fund.withdrawn_stipend_rules() == [withdrawal]
    assert fund.stipend_rules_listing() == [
        (DEFAULTS, None),
        (_rules(JUNE, 45_000), None),
        (_rules(JANUARY, 500_000), TODAY),
    ]


def test_its_day_takes_a_new_version_listed_after_the_withdrawn_one() -> None:
    fund = _fund_with_a_mistake()
    fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY)
    fund.set_stipend_rules(_rules(JANUARY, 50_000))
    assert _stipend_cents(fund, JANUARY) == 50_000
    # The corrected version is withdrawn on its own; both withdrawals stay, in order,
    # and a version set for the day again lists after them.
    fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY)
    fund.set_stipend_rules(_rules(JANUARY, 52_000))
    assert [(r.effective_from, r.full_cents, on) for r, on in fund.stipend_rules_listing()] == [
        (date(2000, 1, 1), 50_000, None),
        (JUNE, 45_000, None),
        (JANUARY, 500_000, TODAY),
        (JANUARY, 50_000, TODAY),
        (JANUARY, 52_000, None),
    ]
    assert fund.stipend_rules_state_set_on("2027-01-01")["full"] == 52_000


def test_once_its_first_month_has_begun_it_is_refused_and_nothing_recorded() -> None:
    fund = WelfareFund.start(DEFAULTS)
    fund.set_stipend_rules(_rules(date(2026, 11, 1), 500_000))
    fund.set_stipend_rules(_rules(date(2026, 10, 10), 480_000))  # governs from November
    fund.collect_events()
    for day in (date(2026, 11, 1), date(2026, 10, 10)):
        with pytest.raises(ValidationError) as refused:
            fund.withdraw_stipend_rules(day, withdrawn_on=TODAY)
        assert refused.value.field == "effectiveFrom"
        message = refused.value.message
        assert "2026-11" in message  # the month that has begun
        assert "first month has not begun" in message
        assert "2026-12-01" in message  # where a version changing stipends may start
    assert fund.collect_events() == []
    assert sorted(fund.stipend_rules) == ["2000-01-01", "2026-10-10", "2026-11-01"]
    assert fund.withdrawn_stipend_rules() == []
    assert _stipend_cents(fund, date(2026, 11, 1)) == 500_000


def test_a_first_of_the_month_is_refused_on_that_very_day() -> None:
    fund = WelfareFund.start(DEFAULTS)
    fund.set_stipend_rules(_rules(DECEMBER, 500_000))
    fund.collect_events()
    with pytest.raises(ValidationError, match="2026-12"):
        fund.withdraw_stipend_rules(DECEMBER, withdrawn_on=DECEMBER)
    assert fund.collect_events() == []
    # The day before, December had not begun.
    fund.withdraw_stipend_rules(DECEMBER, withdrawn_on=date(2026, 11, 30))
    assert sorted(fund.stipend_rules) == ["2000-01-01"]


def test_a_mid_month_day_counts_from_the_next_month() -> None:
    """Rules from 10 November govern December on: in late November none of their
    months has begun, so they are withdrawn; the same in December is refused."""
    fund = WelfareFund.start(DEFAULTS)
    mid_november, mid_december = date(2026, 11, 10), date(2026, 12, 15)
    fund.set_stipend_rules(_rules(mid_november, 500_000))
    fund.set_stipend_rules(_rules(mid_december, 510_000))
    assert _stipend_cents(fund, date(2026, 11, 1)) == 50_000  # the defaults pay November
    fund.withdraw_stipend_rules(mid_november, withdrawn_on=TODAY)
    # Over the year's end: 15 December governs from January 2027.
    with pytest.raises(ValidationError) as refused:
        fund.withdraw_stipend_rules(mid_december, withdrawn_on=JANUARY)
    assert "2027-01" in refused.value.message
    assert "2027-02-01" in refused.value.message
    fund.withdraw_stipend_rules(mid_december, withdrawn_on=date(2026, 12, 31))
    assert [w.rules.effective_from for w in fund.withdrawn_stipend_rules()] == [
        mid_november,
        mid_december,
    ]


def test_the_version_the_fund_started_with_is_never_withdrawn() -> None:
    """Even when none of its months has begun: every month falls back to it."""
    starting = _rules(JANUARY, 50_000)
    fund = WelfareFund.start(starting)
    fund.set_stipend_rules(_rules(date(2027, 3, 1), 55_000))
    fund.collect_events()
    with pytest.raises(ValidationError) as refused:
        fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY)
    assert refused.value.field == "effectiveFrom"
    assert "falls back" in refused.value.message
    assert "set a new version" in refused.value.message
    assert fund.collect_events() == []
    assert fund.stipend_rules_on(date(2026, 12, 1)) == starting

    defaults = WelfareFund.start(DEFAULTS)
    with pytest.raises(ValidationError, match="falls back"):
        defaults.withdraw_stipend_rules(date(2000, 1, 1), withdrawn_on=TODAY)


def test_no_version_on_the_day_is_not_found_and_a_second_withdrawal_is_a_conflict() -> None:
    fund = _fund_with_a_mistake()
    fund.collect_events()
    with pytest.raises(NotFound, match="2027-02-01"):
        fund.withdraw_stipend_rules(date(2027, 2, 1), withdrawn_on=TODAY)
    fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY)
    assert len(fund.collect_events()) == 1
    with pytest.raises(VersionWithdrawn, match="2027-01-01") as again:
        fund.withdraw_stipend_rules(JANUARY, withdrawn_on=date(2026, 11, 26))
    # A Conflict, but not the plain one a lost race raises (that one is retried).
    assert isinstance(again.value, Conflict)
    assert type(again.value) is not Conflict
    assert again.value.withdrawn_on == TODAY.isoformat()
    assert fund.collect_events() == []


def test_the_withdrawal_replays_from_its_events() -> None:
    fund = _fund_with_a_mistake()
    fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY, actor="person:fo")
    fund.set_stipend_rules(_rules(JANUARY, 50_000))
    events = fund.collect_events()
    withdrawn = [e for e in events if isinstance(e, WelfareFund.StipendRulesWithdrawn)]
    assert [(e.effective_from, e.rules["full"], e.withdrawn_on, e.actor) for e in withdrawn] == [
        (JANUARY, 500_000, TODAY, "person:fo")
    ]
    replayed: WelfareFund | None = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.stipend_rules_listing() == fund.stipend_rules_listing()


def test_a_book_from_a_snapshot_taken_before_withdrawals_existed_still_withdraws() -> None:
    fund = _fund_with_a_mistake()
    del fund.__dict__["stipend_rules_withdrawals"]  # as such a snapshot restores it
    assert fund.withdrawn_stipend_rules() == []
    with pytest.raises(NotFound):
        fund.withdraw_stipend_rules(date(2027, 2, 1), withdrawn_on=TODAY)
    fund.withdraw_stipend_rules(JANUARY, withdrawn_on=TODAY)
    assert [w.rules.effective_from for w in fund.withdrawn_stipend_rules()] == [JANUARY]
    assert fund.stipend_rules_state_set_on("2027-01-01")["full"] == 500_000


def test_a_version_that_governs_no_month_is_refused_and_one_stored_before_is_withdrawn() -> None:
    """From 2 December 9999 a version would govern from January 10000: no month. Set
    now, it is refused; stored by an earlier release, it can still be withdrawn (its
    withdrawal failed as an internal error)."""
    fund = WelfareFund.start(_rules(date(2000, 1, 1), 50_000))
    with pytest.raises(ValidationError) as refused:
        fund.set_stipend_rules(_rules(date(9999, 12, 2), 55_000))
    assert refused.value.field == "effectiveFrom"
    assert "would govern no month" in refused.value.message
    # As the earlier release recorded it, without the check.
    fund.trigger_event(
        WelfareFund.StipendRulesSet, rules=_rules(date(9999, 12, 2), 55_000).as_state(), actor=None
    )
    withdrawal = fund.withdraw_stipend_rules(date(9999, 12, 2), withdrawn_on=date(2026, 1, 5))
    assert withdrawal.rules.effective_from == date(9999, 12, 2)
    assert [r.effective_from for r, withdrawn in fund.stipend_rules_listing() if withdrawn] == [
        date(9999, 12, 2)
    ]

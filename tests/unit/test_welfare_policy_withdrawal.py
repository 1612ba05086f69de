"""Withdrawing a redistribution policy version set by mistake (90% typed for 9%),
in memory: allowed exactly as long as setting that version would be, after which the
version governs nothing, stays in the book, and its day takes a new version."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.errors import Conflict, NotFound, ValidationError
from services.ledger.domain import Posting, Side
from services.welfare_fund.domain import (
    DEFAULT_ACCOUNT_STREAMS,
    IncomeSource,
    PolicyVersion,
    PolicyWithdrawal,
    Program,
    StipendRules,
    Stream,
    VersionWithdrawn,
    WelfareFund,
)

RULES = StipendRules(effective_from=date(2000, 1, 1))
TODAY = date(2026, 11, 25)
JANUARY, MARCH = date(2025, 1, 1), date(2025, 3, 1)


def _policy(day: date, hotel_ppm: int) -> PolicyVersion:
    return PolicyVersion(
        effective_from=day,
        shares_ppm={Stream.HOTEL: hotel_ppm},
        program_shares_ppm=((Program.INTERNSHIP, 500_000), (Program.HOUSING, 500_000)),
        account_streams=DEFAULT_ACCOUNT_STREAMS,
    )


def _room(position: int, day: date, cents: int) -> IncomeSource:
    return IncomeSource(
        position,
        f"entry-{position}",
        day,
        [Posting("1010", Side.DEBIT, cents), Posting("4000", Side.CREDIT, cents)],
    )


def _fund_with_a_mistake() -> WelfareFund:
    """9% from January; 90% from March, typed for 9%."""
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(JANUARY, 90_000))
    fund.set_policy(_policy(MARCH, 900_000))
    return fund


def test_a_withdrawn_version_governs_nothing_and_stays_in_the_book() -> None:
    fund = _fund_with_a_mistake()
    withdrawal = fund.withdraw_policy(MARCH, withdrawn_on=TODAY, actor="person:officer")
    assert withdrawal == PolicyWithdrawal(_policy(MARCH, 900_000), TODAY)
    assert [v.effective_from for v in fund.policy_versions()] == [JANUARY]
    assert fund.withdrawn_policy_versions() == [withdrawal]
    # Income on the withdrawn version's day accrues at January's 9%, in its period.
    items = fund.plan_accruals([_room(1, MARCH, 123_456)])
    assert [(i["period"], i["accrued"]) for i in items] == [("2025-01-01", 11_111)]


def test_with_no_version_before_it_its_days_accrue_nothing() -> None:
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(MARCH, 900_000))
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    items = fund.plan_accruals([_room(1, MARCH, 100_000)])
    assert [(i["period"], i["accrued"], i["programs"]) for i in items] == [("", 0, {})]


def test_its_day_takes_a_new_version_and_the_withdrawn_one_stays() -> None:
    fund = _fund_with_a_mistake()
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    fund.set_policy(_policy(MARCH, 100_000))
    assert [v.rate_ppm(Stream.HOTEL) for v in fund.policy_versions()] == [90_000, 100_000]
    items = fund.plan_accruals([_room(1, MARCH, 100_000)])
    assert [(i["period"], i["accrued"]) for i in items] == [("2025-03-01", 10_000)]
    # The new version is withdrawn on its own; both withdrawals stay, in order.
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    assert [w.version.rate_ppm(Stream.HOTEL) for w in fund.withdrawn_policy_versions()] == [
        900_000,
        100_000,
    ]


def test_once_income_from_its_day_is_accrued_it_is_refused_and_nothing_recorded() -> None:
    fund = _fund_with_a_mistake()
    fund.record_accruals(1, fund.plan_accruals([_room(1, date(2025, 3, 5), 10_000)]), [])
    fund.collect_events()
    for day in (MARCH, JANUARY):
        with pytest.raises(ValidationError) as refused:
            fund.withdraw_policy(day, withdrawn_on=TODAY)
        assert refused.value.field == "effectiveFrom"
        assert "reverse and repost" in refused.value.message
        assert "2025-03-06" in refused.value.message  # the first day a version may start
    assert fund.collect_events() == []
    assert [v.effective_from for v in fund.policy_versions()] == [JANUARY, MARCH]
    assert fund.withdrawn_policy_versions() == []


def test_income_before_its_day_does_not_stop_it() -> None:
    fund = _fund_with_a_mistake()
    fund.record_accruals(1, fund.plan_accruals([_room(1, date(2025, 2, 28), 10_000)]), [])
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    assert [v.effective_from for v in fund.policy_versions()] == [JANUARY]


def test_no_version_on_the_day_is_not_found_and_a_second_withdrawal_is_a_conflict() -> None:
    fund = _fund_with_a_mistake()
    with pytest.raises(NotFound, match="2025-02-01"):
        fund.withdraw_policy(date(2025, 2, 1), withdrawn_on=TODAY)
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    with pytest.raises(VersionWithdrawn, match="2025-03-01") as again:
        fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    # A Conflict, but not the plain one a lost race raises (that one is retried).
    assert isinstance(again.value, Conflict)
    assert type(again.value) is not Conflict
    assert again.value.withdrawn_on == TODAY.isoformat()


def test_the_withdrawal_replays_from_its_events() -> None:
    fund = _fund_with_a_mistake()
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY, actor="person:officer")
    fund.set_policy(_policy(MARCH, 100_000))
    events = fund.collect_events()
    withdrawn = [e for e in events if isinstance(e, WelfareFund.PolicyWithdrawn)]
    assert [(e.effective_from, e.policy["shares"], e.actor) for e in withdrawn] == [
        (MARCH, {"HOTEL": 900_000}, "person:officer")
    ]
    replayed: WelfareFund | None = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.policy_versions() == fund.policy_versions()
    assert replayed.withdrawn_policy_versions() == fund.withdrawn_policy_versions()


def test_a_book_from_a_snapshot_taken_before_withdrawals_existed_still_withdraws() -> None:
    fund = _fund_with_a_mistake()
    del fund.__dict__["withdrawn_policies"]  # as such a snapshot restores it
    assert fund.withdrawn_policy_versions() == []
    with pytest.raises(NotFound):
        fund.withdraw_policy(date(2025, 2, 1), withdrawn_on=TODAY)
    fund.withdraw_policy(MARCH, withdrawn_on=TODAY)
    assert [w.version.effective_from for w in fund.withdrawn_policy_versions()] == [MARCH]
    assert fund.policy_state_set_on("2025-03-01")["shares"] == {"HOTEL": 900_000}

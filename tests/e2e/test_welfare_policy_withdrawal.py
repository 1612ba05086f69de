"""withdrawRedistributionPolicy on both stores: a version set by mistake (90% typed
for 9%) is withdrawn while no income from its day on is accrued, so the mistaken
rate never governs a day; it stays listed, withdrawn; a refusal stores nothing."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import inspect, select, text

from gateway.runtime import Runtime
from services.audit.replay import replay
from services.common.auth import Role
from services.common.errors import ValidationError
from services.common.settings import Settings
from services.ledger.domain import Posting, Side
from services.welfare_fund.domain import Stream
from services.welfare_fund.projections.tables import welfare_policies, welfare_policy_withdrawals
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_welfare_graphql import BALANCE, _income, _policy

WITHDRAW = """
mutation W($input: WithdrawRedistributionPolicyInput!) {
  withdrawRedistributionPolicy(input: $input) {
    __typename
    ... on RedistributionPolicy {
      effectiveFrom withdrawn withdrawnOn shares { stream percent }
    }
    ... on ValidationError { field message }
    ... on NotFound { message }
    ... on Conflict { message }
    ... on IdempotencyKeyReused { message }
  }
}
"""
POLICIES = """
query { redistributionPolicies { effectiveFrom withdrawn withdrawnOn shares { stream percent } } }
"""
POLICY_WITH_SPLIT = """
mutation P($input: SetRedistributionPolicyInput!) { setRedistributionPolicy(input: $input) {
  __typename ... on ValidationError { field message } } }
"""
NINE = [{"stream": "HOTEL", "percent": "9"}]
NINETY = [{"stream": "HOTEL", "percent": "90"}]


async def _withdraw(client: GraphQLClient, key: str, day: str) -> Any:
    body = await client.data(WITHDRAW, {"input": {"idempotencyKey": key, "effectiveFrom": day}})
    return body["withdrawRedistributionPolicy"]


async def _listing(client: GraphQLClient) -> list[tuple[str, str, bool, str | None]]:
    """(day, hotel percent, withdrawn, withdrawn on) per listed version, in order."""
    listed = (await client.data(POLICIES))["redistributionPolicies"]
    return [
        (
            v["effectiveFrom"],
            next(s["percent"] for s in v["shares"] if s["stream"] == "HOTEL"),
            v["withdrawn"],
            v["withdrawnOn"],
        )
        for v in listed
    ]


def _today(client: GraphQLClient) -> str:
    return datetime.now(client.runtime.settings.zone).date().isoformat()


async def test_a_withdrawn_version_governs_nothing_stays_listed_and_rebuilds_the_same(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    auditor = app_client.as_role(Role.AUDITOR)
    await _policy(officer, "jan", "2025-01-01", NINE)
    await _policy(officer, "mar-typo", "2025-03-01", NINETY)
    # Set in November, effective 1 January: the same mistake, ahead of time.
    await _policy(officer, "next-year-typo", "2027-01-01", NINETY)
    await _income(admin, "feb-stay", "2025-02-10", "4000", "100.00")

    today = _today(app_client)
    withdrawn = await _withdraw(officer, "w-mar", "2025-03-01")
    assert withdrawn["__typename"] == "RedistributionPolicy", withdrawn
    assert (withdrawn["effectiveFrom"], withdrawn["withdrawn"]) == ("2025-03-01", True)
    assert withdrawn["withdrawnOn"] in {today, _today(app_client)}
    assert {"stream": "HOTEL", "percent": "90"} in withdrawn["shares"]
    ahead = await _withdraw(officer, "w-next-year", "2027-01-01")
    assert (ahead["__typename"], ahead["withdrawn"]) == ("RedistributionPolicy", True), ahead

    # Income on the withdrawn version's day accrues at January's 9%, to the cent:
    # floor(9% x (100.00 + 1,234.56)) = 120.11 in January's period (90%: 1,120.11).
    await _income(admin, "mar-stay", "2025-03-01", "4000", "1234.56")
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert balance["accrued"] == "120.11"
    hotel = next(s for s in balance["byStream"] if s["stream"] == "HOTEL")
    assert (hotel["base"], hotel["accrued"]) == ("1334.56", "120.11")

    expected = [
        ("2025-01-01", "9", False, None),
        ("2025-03-01", "90", True, withdrawn["withdrawnOn"]),
        ("2027-01-01", "90", True, ahead["withdrawnOn"]),
    ]
    for reader in (officer, admin, auditor):
        assert await _listing(reader) == expected

    await anyio.to_thread.run_sync(app_client.runtime.projector.rebuild)
    assert await _listing(officer) == expected
    assert (await officer.data(BALANCE))["fundBalance"] == balance


async def test_the_withdrawn_versions_day_takes_a_new_version(app_client: GraphQLClient) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "jan", "2025-01-01", NINE)
    await _policy(officer, "mar-typo", "2025-03-01", NINETY)
    assert (await _withdraw(officer, "w-mar", "2025-03-01"))["withdrawn"] is True
    corrected = await _policy(officer, "mar", "2025-03-01", [{"stream": "HOTEL", "percent": "10"}])
    assert corrected["__typename"] == "RedistributionPolicy", corrected

    await _income(admin, "mar-stay", "2025-03-01", "4000", "100.00")
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "10.00"
    listing = await _listing(officer)
    # The withdrawn version first: it was set, and withdrawn, before the new one.
    assert [(day, percent, gone) for day, percent, gone, _on in listing] == [
        ("2025-01-01", "9", False),
        ("2025-03-01", "90", True),
        ("2025-03-01", "10", False),
    ]
    await anyio.to_thread.run_sync(app_client.runtime.projector.rebuild)
    assert await _listing(officer) == listing


async def test_after_income_from_its_day_was_accrued_it_is_refused_and_nothing_stored(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "jan", "2025-01-01", NINE)
    await _policy(officer, "mar-typo", "2025-03-01", NINETY)
    await _income(admin, "mar-stay", "2025-03-05", "4000", "100.00")
    listing = await _listing(officer)
    head = app_client.head()

    refused = await _withdraw(officer, "w-late", "2025-03-01")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "effectiveFrom")
    assert "reverse and repost" in refused["message"]
    assert "2025-03-06" in refused["message"]  # where a correcting version may start
    assert app_client.head() == head
    assert await _listing(officer) == listing
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "90.00"

    # The refusal left the key free: the correcting version from the next day.
    later = await _policy(officer, "w-late", "2025-03-06", NINE)
    assert later["__typename"] == "RedistributionPolicy", later


async def test_not_found_conflict_and_retries(app_client: GraphQLClient) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    await _policy(officer, "next-year-typo", "2027-01-01", NINETY)

    head = app_client.head()
    missing = await _withdraw(officer, "w-missing", "2027-02-01")
    assert missing["__typename"] == "NotFound", missing
    assert "2027-02-01" in missing["message"]
    assert app_client.head() == head

    first = await _withdraw(officer, "w-1", "2027-01-01")
    assert first["__typename"] == "RedistributionPolicy", first
    head = app_client.head()
    assert await _withdraw(officer, "w-1", "2027-01-01") == first  # a retry: the answer again
    again = await _withdraw(officer, "w-2", "2027-01-01")
    assert again["__typename"] == "Conflict", again
    assert "2027-01-01" in again["message"]
    assert "withdrawn" in again["message"]
    reused = await _withdraw(officer, "w-1", "2027-03-01")
    assert reused["__typename"] == "IdempotencyKeyReused", reused
    assert app_client.head() == head
    assert await _listing(officer) == [("2027-01-01", "90", True, first["withdrawnOn"])]

    # A new version for the day, then a retry of the first withdrawal: still its own
    # answer, and the new version stays in force.
    await _policy(officer, "next-year", "2027-01-01", NINE)
    assert await _withdraw(officer, "w-1", "2027-01-01") == first
    assert [v[1:3] for v in await _listing(officer)] == [("90", True), ("9", False)]


async def test_only_the_fund_officer_withdraws(app_client: GraphQLClient) -> None:
    """The admin pays into the fund: withdrawing a version that raises the rate would
    lower its own contribution. FORBIDDEN, and nothing is stored."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "next-year", "2027-01-01", NINETY)
    listing = await _listing(officer)
    head = app_client.head()
    for caller in (admin, app_client.as_role(Role.ADMIN), app_client.as_role(Role.AUDITOR)):
        body = await caller.execute(
            WITHDRAW, {"input": {"idempotencyKey": "w-admin", "effectiveFrom": "2027-01-01"}}
        )
        assert body["data"] is None or body["data"]["withdrawRedistributionPolicy"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert app_client.head() == head
    assert await _listing(officer) == listing
    # The key stayed free for the fund officer.
    accepted = await _withdraw(officer, "w-admin", "2027-01-01")
    assert accepted["__typename"] == "RedistributionPolicy", accepted


# -- against the accrual process, which writes the same book --------------------------


def _room(runtime: Runtime, key: str, day: date, cents: int) -> None:
    runtime.ledger.post_entry(
        key=key,
        actor="test",
        effective_date=day,
        description="Room",
        postings=[Posting("1010", Side.DEBIT, cents), Posting("4000", Side.CREDIT, cents)],
    )


def _two_versions(runtime: Runtime) -> None:
    welfare = runtime.welfare
    for key, day, ppm in (("jan", date(2025, 1, 1), 90_000), ("mar", date(2025, 3, 1), 900_000)):
        welfare.set_policy(key=key, actor="t", effective_from=day, shares=[(Stream.HOTEL, ppm)])
    runtime.projector.run_until_caught_up()


def test_a_withdrawal_that_lost_to_an_accrual_decides_again_and_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_versions(runtime)
    welfare = runtime.welfare
    load_fund = welfare.fund
    loads = 0

    def fund_then_an_accrual() -> Any:
        nonlocal loads
        loads += 1
        fund = load_fund()
        if loads == 1:  # between the withdrawal's read of the book and its save
            _room(runtime, "mar-stay", date(2025, 3, 2), 10_000)
            runtime.projector.run_until_caught_up()
        return fund

    monkeypatch.setattr(welfare, "fund", fund_then_an_accrual)
    with pytest.raises(ValidationError) as refused:
        welfare.withdraw_policy(key="w", actor="t", effective_from=date(2025, 3, 1))
    assert refused.value.field == "effectiveFrom"
    assert loads == 2  # the save lost, and the second decision saw the accrual
    fund = load_fund()
    assert [v.effective_from for v in fund.policy_versions()] == [
        date(2025, 1, 1),
        date(2025, 3, 1),
    ]
    assert fund.withdrawn_policy_versions() == []
    assert sum(fund.accrued_by_program.values()) == 9_000  # at 90%, as accrued


def test_an_accrual_planned_on_the_book_before_a_withdrawal_plans_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower in another process plans on its own copy of the book: one from
    before the withdrawal loses the save and plans again without the version."""
    _two_versions(runtime)
    welfare = runtime.welfare
    before = welfare.fund()
    welfare.withdraw_policy(key="w", actor="t", effective_from=date(2025, 3, 1))
    monkeypatch.setattr(welfare, "last_seen_to_change", lambda _id: copy.deepcopy(before))
    _room(runtime, "mar-stay", date(2025, 3, 2), 10_000)
    runtime.projector.run_until_caught_up()
    fund = welfare.fund()
    assert sum(fund.accrued_by_program.values()) == 900  # January's 9%, not 90%
    assert fund.cumulative == {"HOTEL|2025-01-01": [10_000, 900]}


def test_the_withdrawal_date_is_not_part_of_the_request(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client retrying the next day with the same key gets the first answer."""
    _two_versions(runtime)
    welfare = runtime.welfare
    first = welfare.withdraw_policy(key="w", actor="t", effective_from=date(2025, 3, 1))

    tomorrow = welfare.today() + timedelta(days=1)
    monkeypatch.setattr(welfare, "today", lambda: tomorrow)
    retried = welfare.withdraw_policy(key="w", actor="t", effective_from=date(2025, 3, 1))
    assert retried.replayed
    assert retried.result == first.result


def test_an_audit_replay_of_the_read_models_finds_the_same_rows(runtime: Runtime) -> None:
    _two_versions(runtime)
    welfare = runtime.welfare
    welfare.withdraw_policy(key="w-1", actor="t", effective_from=date(2025, 3, 1))
    welfare.set_policy(
        key="mar-again", actor="t", effective_from=date(2025, 3, 1), shares=[(Stream.HOTEL, 1)]
    )
    welfare.withdraw_policy(key="w-2", actor="t", effective_from=date(2025, 3, 1))
    _room(runtime, "mar-stay", date(2025, 3, 2), 10_000)
    runtime.projector.run_until_caught_up()
    report = replay(
        settings=runtime.settings,
        snapshot_engine=runtime.audit.read_engine,
        mapper=runtime.audit.mapper,
        projections=runtime.projector.projections,
    )
    assert report.ok, report.differences
    assert report.row_counts["welfare_policy_withdrawals"] == 2
    assert report.row_counts["welfare_policies"] == 1


def test_a_database_from_before_withdrawals_gets_the_new_table_on_start(
    settings: Settings,
) -> None:
    """Read-model tables have no migrations: the withdrawals are a new table, which
    the next start creates beside the existing ones (welfare_policies is unchanged)."""
    first = Runtime(settings)
    try:
        _two_versions(first)
        with first.sync_engine.begin() as conn:
            conn.execute(text("DROP TABLE welfare_policy_withdrawals"))
    finally:
        first.close_sync()
    second = Runtime(settings)
    try:
        assert "welfare_policy_withdrawals" in inspect(second.sync_engine).get_table_names()
        second.welfare.withdraw_policy(key="w", actor="t", effective_from=date(2025, 3, 1))
        second.projector.run_until_caught_up()
        with second.sync_engine.connect() as conn:
            rows = conn.execute(
                select(
                    welfare_policy_withdrawals.c.effective_from,
                    welfare_policy_withdrawals.c.withdrawn_on,
                )
            ).all()
            kept = conn.execute(select(welfare_policies.c.effective_from)).scalars().all()
        assert [day for day, _on in rows] == [date(2025, 3, 1)]
        assert kept == [date(2025, 1, 1)]
    finally:
        second.close_sync()


async def test_a_version_whose_split_a_later_one_took_is_not_withdrawn_under_it(
    app_client: GraphQLClient,
) -> None:
    """A later version that left its program split out took the one in force on its
    day: the mistaken version's. Withdrawing the mistake left that copy governing, so
    a July stay still split the wrong way round, and nothing told the officer."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    right = [{"program": "INTERNSHIP", "percent": "90"}, {"program": "HOUSING", "percent": "10"}]
    typo = [{"program": "INTERNSHIP", "percent": "10"}, {"program": "HOUSING", "percent": "90"}]

    async def set_version(key: str, day: str, percent: str, split: Any = None) -> None:
        value: dict[str, Any] = {"idempotencyKey": key, "effectiveFrom": day,
                                 "shares": [{"stream": "HOTEL", "percent": percent}]}  # fmt: skip
        if split is not None:
            value["programShares"] = split
        set_ = (await officer.data(POLICY_WITH_SPLIT, {"input": value}))["setRedistributionPolicy"]
        assert set_["__typename"] == "RedistributionPolicy", set_

    await set_version("base", "2025-01-01", "8", right)
    await set_version("march", "2025-03-01", "9", typo)  # the split the wrong way round
    await set_version("july", "2025-07-01", "10")  # only the rate: the split left out
    refused = await _withdraw(officer, "w-march", "2025-03-01")
    assert refused["__typename"] == "Conflict", refused
    assert "2025-07-01" in refused["message"]
    # As the message says: the July version first, set again, then the mistake.
    assert (await _withdraw(officer, "w-july", "2025-07-01"))["withdrawn"] is True
    assert (await _withdraw(officer, "w-march", "2025-03-01"))["withdrawn"] is True
    await set_version("july-again", "2025-07-01", "10")  # takes January's split now
    await _income(admin, "july-stay", "2025-07-15", "4000", "1000.00")  # 100.00 at 10%
    by_program = {p["program"]: p["accrued"]
                  for p in (await officer.data(BALANCE))["fundBalance"]["byProgram"]}  # fmt: skip
    assert by_program == {"INTERNSHIP": "90.00", "HOUSING": "10.00"}


async def test_a_later_version_with_the_split_of_the_one_before_does_not_hold_a_withdrawal(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    await _policy(officer, "base", "2025-01-01", NINE)
    await _policy(officer, "march", "2025-03-01", NINETY)  # 90 for 9: the rate only
    await _policy(officer, "july", "2025-07-01", NINE)
    # All three have the default split: withdrawing March changes no one's split.
    assert (await _withdraw(officer, "w-march", "2025-03-01"))["withdrawn"] is True


async def test_the_first_version_is_compared_with_the_configured_defaults(
    app_client: GraphQLClient,
) -> None:
    """With no version before it, a left-out split or mapping is the configured default:
    compared with nothing, the default mapping (almost never typed) always 'matched'."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    await _policy(officer, "typo", "2027-01-01", NINETY)
    own = {"idempotencyKey": "next", "effectiveFrom": "2028-01-01", "shares": NINE,
           "programShares": [{"program": "INTERNSHIP", "percent": "30"},
                             {"program": "HOUSING", "percent": "70"}]}  # fmt: skip
    set_ = (await officer.data(POLICY_WITH_SPLIT, {"input": own}))["setRedistributionPolicy"]
    assert set_["__typename"] == "RedistributionPolicy", set_
    await _policy(officer, "after", "2029-01-01", NINE)  # the defaults' mapping, left out
    assert (await _withdraw(officer, "w-typo", "2027-01-01"))["withdrawn"] is True

"""Provenance follows dates: a commitment is traced to income dated on or before it,
whatever order the commitments and the income were recorded in (docs/welfare_fund.md,
"Queries")."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.common.auth import Role
from services.ledger.domain import Cause, JournalEntry, Posting, Side
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_welfare_graphql import COMMIT, ENROLL, PROVENANCE

POLICY = """
mutation P($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) { __typename }
}
"""
POST = """
mutation Post($input: PostJournalEntryInput!) {
  postJournalEntry(input: $input) { __typename ... on JournalEntry { id } }
}
"""


async def _setup(app_client: GraphQLClient) -> tuple[GraphQLClient, GraphQLClient, str]:
    """Half of the shop's income to the fund, all of it to housing (so a posting's
    share is half its amount); one beneficiary enrolled in housing on 2025-01-01."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    policy = {
        "idempotencyKey": "p1",
        "effectiveFrom": "2025-01-01",
        "shares": [{"stream": "SHOP", "percent": "50"}],
        "programShares": [{"program": "HOUSING", "percent": "100"}],
    }
    set_ = await officer.data(POLICY, {"input": policy})
    assert set_["setRedistributionPolicy"]["__typename"] == "RedistributionPolicy"
    enrolled = await officer.data(
        ENROLL,
        {"input": {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-01-01"}},
    )
    return officer, admin, enrolled["enrollBeneficiary"]["beneficiaryRef"]


async def _income(admin: GraphQLClient, key: str, day: date, cents: int) -> str:
    amount = f"{cents // 100}.{cents % 100:02d}"
    posted = await admin.data(
        POST,
        {
            "input": {
                "idempotencyKey": key,
                "effectiveDate": day.isoformat(),
                "description": "Shop takings",
                "postings": [
                    {"account": "1010", "side": "DEBIT", "amount": amount},
                    {"account": "4100", "side": "CREDIT", "amount": amount},
                ],
            }
        },
    )
    entry_id: str = posted["postJournalEntry"]["id"]
    return entry_id


async def _commit(
    officer: GraphQLClient, ref: str, key: str, day: date, cents: int
) -> dict[str, Any]:
    committed = await officer.data(
        COMMIT,
        {
            "input": {
                "idempotencyKey": key,
                "beneficiaryRef": ref,
                "kind": "RENT",
                "month": f"{day:%Y-%m}",
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "effectiveDate": day.isoformat(),
            }
        },
    )
    result: dict[str, Any] = committed["commitDisbursement"]
    return result


async def _traced(auditor: GraphQLClient, disbursement_id: str) -> list[tuple[str, str, str]]:
    body = await auditor.data(PROVENANCE, {"id": disbursement_id})
    return [
        (s["journalEntryId"], s["effectiveDate"], s["amount"])
        for s in body["provenance"]["sources"]
    ]


async def test_a_back_dated_commitment_is_traced_to_income_dated_before_it(
    app_client: GraphQLClient,
) -> None:
    """Income on 10 January and 10 February; a commitment dated 15 February is
    recorded, then one back-dated to 1 February. On 1 February only January's income
    had arrived: that is what funds it, and February's funds the later one."""
    officer, admin, ref = await _setup(app_client)
    january = await _income(admin, "sale-1", date(2025, 1, 10), 10_000)  # 50.00 to housing
    february = await _income(admin, "sale-2", date(2025, 2, 10), 10_000)
    later = await _commit(officer, ref, "c1", date(2025, 2, 15), 5_000)
    earlier = await _commit(officer, ref, "c2", date(2025, 2, 1), 5_000)
    assert (later["__typename"], earlier["__typename"]) == ("Disbursement", "Disbursement")
    auditor = app_client.as_role(Role.AUDITOR)
    assert await _traced(auditor, earlier["id"]) == [(january, "2025-01-10", "50.00")]
    assert await _traced(auditor, later["id"]) == [(february, "2025-02-10", "50.00")]
    app_client.runtime.projector.rebuild()
    assert await _traced(auditor, earlier["id"]) == [(january, "2025-01-10", "50.00")]
    assert await _traced(auditor, later["id"]) == [(february, "2025-02-10", "50.00")]


async def test_income_recorded_late_but_dated_early_funds_the_commitments_of_its_days(
    app_client: GraphQLClient,
) -> None:
    """February's takings are posted first, January's after them (a back-dated
    posting): a commitment dated 20 January is funded by January's, not by money that
    came on 10 February."""
    officer, admin, ref = await _setup(app_client)
    february = await _income(admin, "sale-feb", date(2025, 2, 10), 10_000)
    january = await _income(admin, "sale-jan", date(2025, 1, 10), 10_000)
    in_january = await _commit(officer, ref, "c1", date(2025, 1, 20), 4_000)
    in_february = await _commit(officer, ref, "c2", date(2025, 2, 20), 4_000)
    auditor = app_client.as_role(Role.AUDITOR)
    assert await _traced(auditor, in_january["id"]) == [(january, "2025-01-10", "40.00")]
    # What January's takings still hold comes first, then February's.
    assert await _traced(auditor, in_february["id"]) == [
        (january, "2025-01-10", "10.00"),
        (february, "2025-02-10", "30.00"),
    ]


@dataclass(frozen=True)
class _Income:
    entry_id: str
    day: date
    share_cents: int


@dataclass(frozen=True)
class _Commitment:
    disbursement_id: str
    day: date
    cents: int


def _expected(
    incomes: list[_Income], commitments: list[_Commitment]
) -> dict[str, list[tuple[str, str, str]]]:
    """The rule, stated apart from the code: income in order of date, then of posting;
    commitments in order of date, then of recording; each takes what is left, first
    come first."""
    queue = sorted(enumerate(incomes), key=lambda pair: (pair[1].day, pair[0]))
    left = [income.share_cents for _index, income in queue]
    traced: dict[str, list[tuple[str, str, str]]] = {}
    ordered = sorted(enumerate(commitments), key=lambda pair: (pair[1].day, pair[0]))
    for _order, commitment in ordered:
        need = commitment.cents
        sources = []
        for place, (_index, income) in enumerate(queue):
            if need == 0:
                break
            used = min(need, left[place])
            if used:
                left[place] -= used
                need -= used
                amount = f"{used // 100}.{used % 100:02d}"
                sources.append((income.entry_id, income.day.isoformat(), amount))
        traced[commitment.disbursement_id] = sources
    return traced


async def test_provenance_follows_dates_in_any_order_of_recording(
    app_client: GraphQLClient,
) -> None:
    """Income and commitments on random days, recorded in random order, some of the
    income posted in one batch (one page for the fund): every commitment is traced as
    the rule says, only to income dated on or before it, and the same after a rebuild."""
    rng = random.Random(20250101)
    officer, admin, ref = await _setup(app_client)
    auditor = app_client.as_role(Role.AUDITOR)
    first_day = date(2025, 1, 2)
    incomes: list[_Income] = []
    commitments: list[_Commitment] = []

    def some_day() -> date:
        return first_day + timedelta(days=rng.randrange(85))

    async def commit_some(count: int) -> None:
        for _ in range(count):
            day = some_day()
            cents = rng.randrange(10, 90) * 100
            key = f"c{len(commitments)}"
            committed = await _commit(officer, ref, key, day, cents)
            if committed["__typename"] == "Disbursement":
                commitments.append(_Commitment(committed["id"], day, cents))
            else:  # not covered on its day and after: the fund refuses it
                assert committed["__typename"] == "InsufficientFunds", committed

    for n in range(10):
        day = some_day()
        cents = rng.randrange(10, 100) * 200  # even: the share is exactly half
        incomes.append(_Income(await _income(admin, f"s{n}", day, cents), day, cents // 2))
        if n % 3 == 2:
            await commit_some(2)
    # Several postings in one save: the fund accrues them in one event, so the read
    # model places one page of sources, several dated before its stored ones.
    ledger = app_client.runtime.ledger
    chart = ledger.chart()
    batch = []
    for n in range(6):
        day = first_day + timedelta(days=rng.randrange(40))
        cents = rng.randrange(10, 100) * 200
        batch.append(
            JournalEntry.post(
                chart=chart,
                effective_date=day,
                description="Shop takings, posted late",
                postings=[
                    Posting("1010", Side.DEBIT, cents),
                    Posting("4100", Side.CREDIT, cents),
                ],
                cause=Cause(f"manual:late-{n}", "test"),
                limits=ledger.limits,
            )
        )
        incomes.append(_Income(str(batch[-1].id), day, cents // 2))
    ledger.save(*batch)
    await commit_some(6)
    assert len(commitments) >= 6  # enough of them accepted to mean something

    expected = _expected(incomes, commitments)
    traced = {c.disbursement_id: await _traced(auditor, c.disbursement_id) for c in commitments}
    assert traced == expected
    for commitment in commitments:
        for _entry, source_day, _amount in traced[commitment.disbursement_id]:
            assert source_day <= commitment.day.isoformat()
    app_client.runtime.projector.rebuild()
    assert {c.disbursement_id: await _traced(auditor, c.disbursement_id) for c in commitments} == (
        expected
    )


PROVENANCE_PAGE = """
query P($id: ID!, $first: Int!, $after: String) {
  provenance(disbursementId: $id, first: $first, after: $after) {
    amount sources { journalEntryId amount } pageInfo { hasNextPage endCursor } } }
"""


async def test_provenance_sources_come_in_pages(app_client: GraphQLClient) -> None:
    """Review pages #2: every source of a commitment came back in one list (a month's
    rent funded by the day's sales: thousands), where the API pages every list. Paged
    with first and after, the pages together are the whole list, in queue order."""
    officer, admin, ref = await _setup(app_client)
    incomes = [await _income(admin, f"in-{n}", date(2025, 2, 1 + n), 1000) for n in range(5)]
    disbursement = await _commit(officer, ref, "c1", date(2025, 2, 20), 2500)  # all five
    auditor = app_client.as_role(Role.AUDITOR)
    whole = (await auditor.data(PROVENANCE, {"id": disbursement["id"]}))["provenance"]
    assert [s["journalEntryId"] for s in whole["sources"]] == incomes
    paged: list[str] = []
    after = None
    for expected_next in (True, True, False):
        page = (
            await auditor.data(
                PROVENANCE_PAGE, {"id": disbursement["id"], "first": 2, "after": after}
            )
        )["provenance"]
        assert page["amount"] == whole["amount"]
        assert page["pageInfo"]["hasNextPage"] is expected_next
        paged += [s["journalEntryId"] for s in page["sources"]]
        after = page["pageInfo"]["endCursor"]
    assert paged == incomes
    refused = await auditor.execute(
        PROVENANCE_PAGE, {"id": disbursement["id"], "first": 501, "after": None}
    )
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

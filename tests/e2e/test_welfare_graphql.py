"""The welfare fund through GraphQL, as the territorial enterprise uses it."""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from datetime import date
from typing import Any
from uuid import UUID

import anyio.to_thread
import pytest
from sqlalchemy import inspect, select, text

from gateway.demo import load_demo
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.errors import NotFound
from services.common.settings import ConfigurationError, Settings
from services.ledger.domain import Posting, Side
from services.ledger.projections.tables import ledger_entries, ledger_lines
from services.welfare_fund.domain import Stream
from tests.e2e.conftest import GraphQLClient, serving

BALANCE = """
query B($asOf: DateTime) {
  fundBalance(asOf: $asOf) {
    accrued committed disbursed available
    byProgram { program accrued committed disbursed available }
    byStream { stream base accrued }
  }
}
"""
POLICY = """
mutation P($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) {
    __typename
    ... on RedistributionPolicy { effectiveFrom shares { stream percent } }
    ... on ValidationError { field message }
  }
}
"""
ENROLL = """
mutation E($input: EnrollBeneficiaryInput!) {
  enrollBeneficiary(input: $input) {
    __typename ... on Beneficiary { beneficiaryRef program caseNote }
  }
}
"""
DISBURSEMENT_FIELDS = """
    __typename
    ... on Disbursement { id status amount paid released beneficiaryRef }
    ... on InsufficientFunds { message program requested available }
    ... on PaymentExceedsApproval { message approved paid }
    ... on ApprovalNotAllowed { message }
    ... on ApprovalByCommitter { message }
    ... on PersonRequired { message }
    ... on ValidationError { field message }
    ... on Conflict { message }
    ... on NotFound { message }
"""
COMMIT = f"""
mutation C($input: CommitDisbursementInput!) {{ commitDisbursement(input: $input) {{
{DISBURSEMENT_FIELDS} }} }}
"""
APPROVE = f"""
mutation A($input: ApproveDisbursementInput!) {{ approveDisbursement(input: $input) {{
{DISBURSEMENT_FIELDS} }} }}
"""
PAY = f"""
mutation Pay($input: PayDisbursementInput!) {{ payDisbursement(input: $input) {{
{DISBURSEMENT_FIELDS} }} }}
"""
CANCEL = f"""
mutation X($input: CancelDisbursementInput!) {{ cancelDisbursement(input: $input) {{
{DISBURSEMENT_FIELDS} }} }}
"""
REVERSE_PAYMENT = f"""
mutation R($input: ReverseDisbursementPaymentInput!) {{
  reverseDisbursementPayment(input: $input) {{ {DISBURSEMENT_FIELDS} }} }}
"""
POST = """
mutation Post($input: PostJournalEntryInput!) { postJournalEntry(input: $input) { __typename } }
"""

# The test's own statement of the rules (independent of services/welfare_fund).
ACCOUNT_STREAM = {
    "4000": "HOTEL",
    "4010": "HOTEL",
    "4020": "HOTEL",
    "4030": "HOTEL",
    "4100": "SHOP",
    # The shop's per-category revenue accounts (services/shop/domain/config.py).
    "4110": "SHOP",
    "4120": "SHOP",
    "4130": "SHOP",
    "4140": "SHOP",
    "4150": "SHOP",
    "4200": "GRANT_UNRESTRICTED",
    "4210": "GRANT_RESTRICTED",
    "4300": "CONTRACT",
    "4400": "DONATION",
    "4410": "DONATION_RESTRICTED",
}
DEMO_POLICIES = {  # effective from -> (percent per million per stream, internship share)
    "01-01": ({"HOTEL": 80_000, "SHOP": 100_000, "DONATION": 25_000, "CONTRACT": 20_000}, 600_000),
    "06-01": ({"HOTEL": 90_000, "SHOP": 125_000, "DONATION": 25_000, "CONTRACT": 15_000}, 500_000),
}


def cents(money: str) -> int:
    whole, _, fraction = money.lstrip("-").partition(".")
    value = int(whole) * 100 + int(fraction.ljust(2, "0"))
    return -value if money.startswith("-") else value


def expected_by_month(client: GraphQLClient, year: int) -> dict[int, dict[str, Any]]:
    """Per month end: base and accrued per stream, accrued per program, computed from
    the ledger's own read model with the documented cumulative-floor rule."""
    with client.runtime.sync_engine.connect() as conn:
        rows = conn.execute(
            select(
                ledger_entries.c.position,
                ledger_entries.c.effective_date,
                ledger_entries.c.reverses_entry_id,
                ledger_lines.c.account_code,
                ledger_lines.c.credit_cents - ledger_lines.c.debit_cents,
            )
            .join(ledger_lines, ledger_lines.c.position == ledger_entries.c.position)
            .where(ledger_lines.c.account_code.like("4%"))
            .order_by(ledger_entries.c.position, ledger_lines.c.line_no)
        ).all()
        date_of = dict(
            conn.execute(select(ledger_entries.c.entry_id, ledger_entries.c.effective_date)).all()
        )
    # A reversal is governed by the policy of the entry it reverses.
    per_entry: dict[tuple[int, date, date, str], int] = defaultdict(int)
    for position, day, reverses, account, net in rows:
        policy_day = date_of[reverses] if reverses is not None else day
        per_entry[(position, day, policy_day, ACCOUNT_STREAM[account])] += int(net)
    cumulative: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    moves: list[tuple[date, str, int, int, int]] = []  # day, stream, base, accrued, internship
    for (_position, day, policy_day, stream), base in sorted(per_entry.items()):
        period = "06-01" if policy_day >= date(year, 6, 1) else "01-01"
        rates, internship_ppm = DEMO_POLICIES[period]
        totals = cumulative[(stream, period)]
        before = rates.get(stream, 0) * totals[0] // 1_000_000
        totals[0] += base
        after = rates.get(stream, 0) * totals[0] // 1_000_000
        totals[1] += after - before
        # Largest remainder between two programs: the nearest cent, a tie to HOUSING.
        sign = -1 if totals[1] < 0 else 1
        internship_after = sign * ((abs(totals[1]) * internship_ppm + 499_999) // 1_000_000)
        internship = internship_after - totals[2]
        totals[2] = internship_after
        moves.append((day, stream, base, after - before, internship))
    out: dict[int, dict[str, Any]] = {}
    for month in range(1, 13):
        end = date(year, month, calendar.monthrange(year, month)[1])
        streams: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        internship = 0
        for day, stream, base, accrued, to_internship in moves:
            if day <= end:
                streams[stream][0] += base
                streams[stream][1] += accrued
                internship += to_internship
        total = sum(a for _b, a in streams.values())
        out[month] = {
            "streams": dict(streams),
            "accrued": total,
            "INTERNSHIP": internship,
            "HOUSING": total - internship,
        }
    return out


def ledger_balance(client: GraphQLClient, account: str, end: date) -> int:
    with client.runtime.sync_engine.connect() as conn:
        value = conn.execute(
            select((ledger_lines.c.credit_cents - ledger_lines.c.debit_cents).label("net")).where(
                ledger_lines.c.account_code == account, ledger_lines.c.effective_date <= end
            )
        ).all()
    return sum(int(v[0]) for v in value)


async def test_a_year_with_a_june_policy_change_matches_an_independent_computation(
    app_client: GraphQLClient,
) -> None:
    year = 2024
    runtime = app_client.runtime
    await anyio.to_thread.run_sync(load_demo, runtime, year)
    officer = app_client.as_person(Role.FUND_OFFICER)
    await officer.data(BALANCE)  # waits until the ledger and the fund have caught up
    expected = expected_by_month(app_client, year)
    assert expected[12]["accrued"] > 1_000_000  # a real year: over EUR 10,000 accrued
    for month in range(1, 13):
        end = date(year, month, calendar.monthrange(year, month)[1])
        balance = (await officer.data(BALANCE, {"asOf": f"{end}T12:00:00+00:00"}))["fundBalance"]
        want = expected[month]
        assert cents(balance["accrued"]) == want["accrued"], month
        by_stream = {
            s["stream"]: (cents(s["base"]), cents(s["accrued"])) for s in balance["byStream"]
        }
        for stream, (base, accrued) in want["streams"].items():
            assert by_stream[stream] == (base, accrued), (month, stream)
        by_program = {p["program"]: p for p in balance["byProgram"]}
        for program in ("INTERNSHIP", "HOUSING"):
            assert cents(by_program[program]["accrued"]) == want[program], (month, program)
            p = by_program[program]
            assert cents(p["available"]) == (
                cents(p["accrued"]) - cents(p["committed"]) - cents(p["disbursed"])
            )
        # The ledger agrees: what the cooperative owes the fund (2400) is accrued - paid,
        # and the contribution expense (5000) is what was accrued.
        owed = ledger_balance(app_client, "2400", end)
        assert owed == cents(balance["accrued"]) - cents(balance["disbursed"]), month
        assert -ledger_balance(app_client, "5000", end) == cents(balance["accrued"]), month
    assert cents(balance["disbursed"]) > 0
    statement = await officer.data(
        'query { fundStatement(from: "2024-06-01", to: "2024-06-30") '
        "{ accrued opening { accrued } closing { accrued } } }"
    )
    june = statement["fundStatement"]
    assert cents(june["accrued"]) == expected[6]["accrued"] - expected[5]["accrued"]
    trial = await app_client.as_role(Role.AUDITOR).data("query { trialBalance { balanced } }")
    assert trial["trialBalance"]["balanced"] is True


async def _policy(client: GraphQLClient, key: str, day: str, shares: list[dict[str, str]]) -> Any:
    body = await client.data(
        POLICY,
        {"input": {"idempotencyKey": key, "effectiveFrom": day, "shares": shares}},
    )
    return body["setRedistributionPolicy"]


async def _income(client: GraphQLClient, key: str, day: str, account: str, amount: str) -> None:
    posted = await client.data(
        POST,
        {
            "input": {
                "idempotencyKey": key,
                "effectiveDate": day,
                "description": "Income",
                "postings": [
                    {"account": "1010", "side": "DEBIT", "amount": amount},
                    {"account": account, "side": "CREDIT", "amount": amount},
                ],
            }
        },
    )
    assert posted["postJournalEntry"]["__typename"] == "JournalEntry"


async def test_policy_bad_input_and_the_past_rule_store_nothing(app_client: GraphQLClient) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    for index, percent in enumerate(["100.5", "1.23456", "-1", "abc", "1e1", "12.5%"]):
        head = app_client.head()
        result = await _policy(
            officer, f"bad-{index}", "2025-01-01", [{"stream": "HOTEL", "percent": percent}]
        )
        assert result["__typename"] == "ValidationError", percent
        assert result["field"] == "shares[0].percent"
        assert app_client.head() == head
    for index, stream in enumerate(["GRANT_RESTRICTED", "DONATION_RESTRICTED"]):
        restricted = await _policy(
            officer,
            f"restricted-{index}",
            "2025-01-01",
            [{"stream": "HOTEL", "percent": "10"}, {"stream": stream, "percent": "50"}],
        )
        assert (restricted["__typename"], restricted["field"]) == (
            "ValidationError",
            "shares[1].stream",
        )
        assert "restricted income" in restricted["message"]
    assert app_client.head() == head
    ok = await _policy(officer, "p1", "2025-01-01", [{"stream": "HOTEL", "percent": "10"}])
    assert ok["__typename"] == "RedistributionPolicy"
    await _income(admin, "stay-1", "2025-03-10", "4000", "100.00")
    # Read-your-writes: the accrual of the posting just made is visible.
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert balance["accrued"] == "10.00"
    head = app_client.head()
    past = await _policy(officer, "p2", "2025-03-01", [{"stream": "HOTEL", "percent": "20"}])
    assert past["__typename"] == "ValidationError"
    assert past["field"] == "effectiveFrom"
    assert "2025-03-11" in past["message"]
    assert app_client.head() == head
    future = await _policy(officer, "p3", "2025-03-11", [{"stream": "HOTEL", "percent": "20"}])
    assert future["__typename"] == "RedistributionPolicy"
    await _income(admin, "stay-2", "2025-03-12", "4000", "100.00")
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "30.00"


async def test_a_version_for_a_day_that_has_one_is_a_conflict_and_a_retry_gets_its_answer(
    app_client: GraphQLClient,
) -> None:
    """Three policies for 2027-01-01 were accepted and only the last was listed (the
    others survived only in the event log): a second version for the day is a
    Conflict naming it, and a retry of the first request still gets the first answer."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    first = await _policy(officer, "p-a", "2027-01-01", [{"stream": "HOTEL", "percent": "10"}])
    assert first["__typename"] == "RedistributionPolicy"
    head = app_client.head()
    second = await officer.data(
        "mutation P($input: SetRedistributionPolicyInput!) { setRedistributionPolicy("
        "input: $input) { __typename ... on Conflict { message } } }",
        {"input": {"idempotencyKey": "p-b", "effectiveFrom": "2027-01-01",
                   "shares": [{"stream": "HOTEL", "percent": "1"}]}},
    )  # fmt: skip
    refused = second["setRedistributionPolicy"]
    assert refused["__typename"] == "Conflict", refused
    assert "2027-01-01" in refused["message"]
    again = await _policy(officer, "p-a", "2027-01-01", [{"stream": "HOTEL", "percent": "10"}])
    assert again == first
    assert {"stream": "HOTEL", "percent": "10"} in again["shares"]
    assert app_client.head() == head
    listed = await officer.data(
        "query { redistributionPolicies { effectiveFrom shares { stream percent } } }"
    )
    assert [
        (v["effectiveFrom"], {"stream": "HOTEL", "percent": "10"} in v["shares"])
        for v in listed["redistributionPolicies"]
    ] == [("2027-01-01", True)]


async def test_a_reversal_after_a_rate_change_takes_back_exactly_what_was_accrued(
    app_client: GraphQLClient,
) -> None:
    """A posting corrected by a reversal dated after the rate changed: the fund ends
    where it started (the reversal is governed by the reversed entry's policy), not
    10.00 short as when it was governed by its own date."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "may", "2025-01-01", [{"stream": "HOTEL", "percent": "8"}])
    await _policy(officer, "june", "2025-06-01", [{"stream": "HOTEL", "percent": "9"}])
    await _income(admin, "kept", "2025-05-02", "4000", "100.00")
    before = (await officer.data(BALANCE))["fundBalance"]["accrued"]
    assert before == "8.00"
    posted = await admin.data(
        "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) "
        "{ ... on JournalEntry { id } } }",
        {
            "i": {
                "idempotencyKey": "typo",
                "effectiveDate": "2025-05-30",
                "description": "Room income, typed twice",
                "postings": [
                    {"account": "1010", "side": "DEBIT", "amount": "1000.00"},
                    {"account": "4000", "side": "CREDIT", "amount": "1000.00"},
                ],
            }
        },
    )
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "88.00"
    reversed_ = await admin.data(
        "mutation($i: ReverseJournalEntryInput!) { reverseJournalEntry(input: $i) { __typename } }",
        {
            "i": {
                "idempotencyKey": "typo-fix",
                "entryId": posted["postJournalEntry"]["id"],
                "effectiveDate": "2025-06-02",
                "description": "Typed twice",
            }
        },
    )
    assert reversed_["reverseJournalEntry"]["__typename"] == "JournalEntry"
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert balance["accrued"] == before
    # The ledger agrees: the contribution expense is back where it was.
    assert -ledger_balance(app_client, "5000", date(2025, 12, 31)) == 800
    # Income after the change still accrues at the new rate.
    await _income(admin, "june-stay", "2025-06-03", "4000", "100.00")
    assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "17.00"


async def test_a_payment_recorded_in_error_is_reversed_once_and_paid_again(
    app_client: GraphQLClient,
) -> None:
    """A payment made on the wrong disbursement is put right by a reversal, never an
    edit: the amount is unpaid again, still reserved, and the ledger owes it to the
    fund again; a second reversal of it is refused, and the right payment follows."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    approver = app_client.as_person(Role.FUND_OFFICER)  # maker and checker
    payer = app_client.as_person(Role.FUND_OFFICER)  # four eyes: not the approver
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "SHOP", "percent": "50"}])
    await _income(admin, "sale-1", "2025-02-01", "4100", "1000.00")  # 250 to housing
    enrolled = (
        await officer.data(
            ENROLL,
            {"input": {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01"}},
        )
    )["enrollBeneficiary"]
    commit = {"idempotencyKey": "c1", "beneficiaryRef": enrolled["beneficiaryRef"],
              "kind": "RENT", "month": "2025-02", "amount": "200.00",
              "effectiveDate": "2025-02-03"}  # fmt: skip
    disbursement = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    did = disbursement["id"]
    approve = {"idempotencyKey": "a1", "disbursementId": did, "effectiveDate": "2025-02-04"}
    await approver.data(APPROVE, {"input": approve})
    pay = {"idempotencyKey": "pay1", "disbursementId": did, "amount": "200.00",
           "paidOn": "2025-02-05"}  # fmt: skip
    paid = (await payer.data(PAY, {"input": pay}))["payDisbursement"]
    assert (paid["status"], paid["paid"]) == ("PAID", "200.00")
    owed_after_payment = ledger_balance(app_client, "2400", date(2025, 12, 31))

    reverse = {"idempotencyKey": "rev1", "disbursementId": did, "payment": 1,
               "reason": "WRONG_DISBURSEMENT", "effectiveDate": "2025-02-06"}  # fmt: skip
    head = app_client.head()
    # The reason is a code, required: free text would tend to name the beneficiary.
    for reason in (None, "paid to Maria by mistake"):
        unreasoned = {**reverse, "idempotencyKey": "x", "reason": reason}
        body = await officer.execute(REVERSE_PAYMENT, {"input": unreasoned})
        assert body["data"] is None, body
        assert "reason" in body["errors"][0]["message"], body
    for bad, field in (
        ({**reverse, "payment": 2}, "payment"),  # no such payment
        ({**reverse, "effectiveDate": "2025-02-04"}, "effectiveDate"),  # before it
        ({**reverse, "effectiveDate": "2999-01-01"}, "effectiveDate"),  # the future
    ):
        refused = await officer.data(REVERSE_PAYMENT, {"input": {**bad, "idempotencyKey": "x"}})
        member = refused["reverseDisbursementPayment"]
        assert (member["__typename"], member["field"]) == ("ValidationError", field), member
    assert app_client.head() == head

    reversed_ = (await officer.data(REVERSE_PAYMENT, {"input": reverse}))[
        "reverseDisbursementPayment"
    ]
    assert (reversed_["status"], reversed_["paid"]) == ("APPROVED", "0.00")
    retried = (await officer.data(REVERSE_PAYMENT, {"input": reverse}))[
        "reverseDisbursementPayment"
    ]
    assert retried == reversed_  # a retry changes nothing twice
    # The ledger's reversal says why, by its code.
    entries = (
        await app_client.as_role(Role.AUDITOR).data(
            "query($c: String!) { ledgerEntriesByCause(cause: $c) "
            "{ nodes { description reversesEntryId } } }",
            {"c": did},
        )
    )["ledgerEntriesByCause"]["nodes"]
    reversal = [e["description"] for e in entries if e["reversesEntryId"]]
    assert len(reversal) == 1, entries
    assert reversal[0].endswith(": wrong disbursement"), entries
    twice = (await admin.data(REVERSE_PAYMENT, {"input": {**reverse, "idempotencyKey": "rev2"}}))[
        "reverseDisbursementPayment"
    ]
    assert twice["__typename"] == "Conflict"
    balance = (await officer.data(BALANCE))["fundBalance"]
    housing = {p["program"]: p for p in balance["byProgram"]}["HOUSING"]
    assert (housing["committed"], housing["disbursed"], housing["available"]) == (
        "200.00",
        "0.00",
        "50.00",
    )
    # The ledger owes the fund the 200.00 again (2400 is a credit balance).
    assert ledger_balance(app_client, "2400", date(2025, 12, 31)) == owed_after_payment + 20_000
    as_of_payment = await officer.data(BALANCE, {"asOf": "2025-02-05T12:00:00+00:00"})
    assert as_of_payment["fundBalance"]["disbursed"] == "200.00"  # history stays

    right = (await payer.data(PAY, {"input": {**pay, "idempotencyKey": "pay2",
                                               "paidOn": "2025-02-07"}}))  # fmt: skip
    assert right["payDisbursement"]["status"] == "PAID"
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert (balance["disbursed"], balance["committed"]) == ("200.00", "0.00")
    auditor = app_client.as_role(Role.AUDITOR)
    trial = await auditor.data("query { trialBalance { balanced } }")
    assert trial["trialBalance"]["balanced"] is True
    # The auditor sees who did each step, and on which day.
    history = (
        await auditor.data(
            "query($id: ID!) { eventHistory(aggregateId: $id) "
            "{ nodes { type actor effectiveDate } } }",
            {"id": did},
        )
    )["eventHistory"]["nodes"]
    assert [(n["type"].rsplit(".", 1)[-1], n["effectiveDate"]) for n in history] == [
        ("Committed", "2025-02-03"),
        ("Approved", "2025-02-04"),
        ("Paid", "2025-02-05"),
        ("PaymentReversed", "2025-02-06"),
        ("Paid", "2025-02-07"),
    ]
    assert all(n["actor"] for n in history), history
    actors = [n["actor"] for n in history]
    officer_actor, approver_actor, payer_actor = actors[:3]  # each one signed in
    assert len({officer_actor, approver_actor, payer_actor}) == 3
    assert all(actor.startswith("person:") for actor in actors), actors
    assert actors == [officer_actor, approver_actor, payer_actor, officer_actor, payer_actor]


async def test_a_stipend_cancelled_after_a_part_payment_keeps_its_month(
    app_client: GraphQLClient,
) -> None:
    """500.00 for September, 350.00 paid, the rest cancelled: the month's stipend
    is not committed again (up to 850.00 would have gone out for a 500.00 stipend).
    A stipend cancelled with nothing paid frees its month."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "SHOP", "percent": "100"}])
    await _income(admin, "sale-1", "2025-08-01", "4100", "5000.00")  # 2,500 per program
    enroll = {"idempotencyKey": "e1", "program": "INTERNSHIP", "enrolledOn": "2025-08-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    for month in ("2025-08", "2025-09"):
        attended = await officer.data(
            "mutation($i: RecordAttendanceInput!) { recordAttendance(input: $i) { __typename } }",
            {
                "i": {
                    "idempotencyKey": f"att-{month}",
                    "beneficiaryRef": ref,
                    "month": month,
                    "scheduledDays": 10,
                    "attendedDays": 10,
                }
            },
        )
        assert attended["recordAttendance"]["__typename"] == "Beneficiary", attended

    def stipend(key: str, month: str) -> dict[str, Any]:
        return {"idempotencyKey": key, "beneficiaryRef": ref, "kind": "STIPEND",
                "month": month, "effectiveDate": "2025-10-01"}  # fmt: skip

    september = (await officer.data(COMMIT, {"input": stipend("s1", "2025-09")}))[
        "commitDisbursement"
    ]
    assert september["__typename"] == "Disbursement", september
    approve = {"idempotencyKey": "a1", "disbursementId": september["id"],
               "effectiveDate": "2025-10-02"}  # fmt: skip
    await app_client.as_person(Role.FUND_OFFICER).data(APPROVE, {"input": approve})
    part = {"idempotencyKey": "pay1", "disbursementId": september["id"], "amount": "350.00",
            "paidOn": "2025-10-03"}  # fmt: skip
    assert (await admin.data(PAY, {"input": part}))["payDisbursement"]["paid"] == "350.00"
    cancel = {"idempotencyKey": "x1", "disbursementId": september["id"],
              "effectiveDate": "2025-10-04"}  # fmt: skip
    await officer.data(CANCEL, {"input": cancel})
    head = app_client.head()
    again = (await officer.data(COMMIT, {"input": stipend("s2", "2025-09")}))["commitDisbursement"]
    assert again["__typename"] == "Conflict", again
    assert app_client.head() == head

    august = (await officer.data(COMMIT, {"input": stipend("s3", "2025-08")}))["commitDisbursement"]
    cancel_august = {"idempotencyKey": "x2", "disbursementId": august["id"],
                     "effectiveDate": "2025-10-04"}  # fmt: skip
    await officer.data(CANCEL, {"input": cancel_august})
    renewed = (await officer.data(COMMIT, {"input": stipend("s4", "2025-08")}))[
        "commitDisbursement"
    ]
    assert renewed["__typename"] == "Disbursement", renewed


async def test_disbursement_workflow_roles_and_limits(app_client: GraphQLClient) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "SHOP", "percent": "50"}])
    await _income(admin, "sale-1", "2025-02-01", "4100", "1000.00")  # 500 accrued: 250 each
    await _income(admin, "sale-2", "2025-02-02", "4100", "600.00")  # 300 accrued: 150 each
    enrolled = (
        await officer.data(
            ENROLL,
            {"input": {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01"}},
        )
    )["enrollBeneficiary"]
    ref = enrolled["beneficiaryRef"]
    commit = {
        "idempotencyKey": "c1",
        "beneficiaryRef": ref,
        "kind": "RENT",
        "month": "2025-02",
        "amount": "450.00",
        "effectiveDate": "2025-02-03",
    }
    head = app_client.head()
    refused = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    assert refused["__typename"] == "InsufficientFunds"
    assert refused["available"] == "400.00"
    assert "400.00" in refused["message"]
    assert app_client.head() == head
    commit.update(idempotencyKey="c2", amount="300.00")
    first = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    assert first["__typename"] == "Disbursement"
    assert first["beneficiaryRef"] == ref
    again = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    assert again["id"] == first["id"]  # a retry changes nothing twice
    housing = {p["program"]: p for p in (await officer.data(BALANCE))["fundBalance"]["byProgram"]}
    assert housing["HOUSING"]["committed"] == "300.00"
    assert housing["HOUSING"]["available"] == "100.00"

    approve = {"idempotencyKey": "a1", "disbursementId": first["id"], "effectiveDate": "2025-02-04"}
    head = app_client.head()
    by_admin = (await admin.data(APPROVE, {"input": approve}))["approveDisbursement"]
    assert by_admin["__typename"] == "ApprovalNotAllowed"
    assert app_client.head() == head
    pay = {"idempotencyKey": "pay0", "disbursementId": first["id"], "amount": "100.00"}
    early = (await admin.data(PAY, {"input": {**pay, "paidOn": "2025-02-05"}}))["payDisbursement"]
    assert early["__typename"] == "PaymentExceedsApproval"
    assert "is not approved yet" in early["message"]
    head = app_client.head()
    for document, value, name, field in (
        (
            APPROVE,
            {**approve, "effectiveDate": "2999-01-01"},
            "approveDisbursement",
            "effectiveDate",
        ),
        (PAY, {**pay, "paidOn": "2999-01-01"}, "payDisbursement", "paidOn"),
    ):
        # Dated after today: a payment would count as disbursed only from its date.
        future = (await officer.data(document, {"input": value}))[name]
        assert (future["__typename"], future["field"]) == ("ValidationError", field), future
    assert app_client.head() == head
    # Maker and checker: whoever committed does not approve; a fund officer's device
    # key decides nothing on the fund's money. Neither refusal stores anything or
    # consumes the idempotency key.
    by_committer = (await officer.data(APPROVE, {"input": approve}))["approveDisbursement"]
    assert by_committer["__typename"] == "ApprovalByCommitter", by_committer
    assert "committed by the same person" in by_committer["message"]
    device = app_client.as_role(Role.FUND_OFFICER)
    by_device = (await device.data(APPROVE, {"input": approve}))["approveDisbursement"]
    assert by_device["__typename"] == "PersonRequired", by_device
    assert "sign in as a person" in by_device["message"]
    assert app_client.head() == head
    approver = app_client.as_person(Role.FUND_OFFICER)
    approved = (await approver.data(APPROVE, {"input": approve}))["approveDisbursement"]
    assert approved["status"] == "APPROVED"
    too_much = {**pay, "idempotencyKey": "pay1", "amount": "300.01", "paidOn": "2025-02-05"}
    refused_pay = (await admin.data(PAY, {"input": too_much}))["payDisbursement"]
    assert refused_pay["__typename"] == "PaymentExceedsApproval"
    paid = (
        await admin.data(
            PAY,
            {
                "input": {
                    **pay,
                    "idempotencyKey": "pay2",
                    "amount": "200.00",
                    "paidOn": "2025-02-06",
                }
            },
        )
    )["payDisbursement"]
    assert (paid["paid"], paid["beneficiaryRef"]) == ("200.00", None)  # admin: no refs
    cancelled = (
        await officer.data(
            CANCEL,
            {
                "input": {
                    "idempotencyKey": "x1",
                    "disbursementId": first["id"],
                    "effectiveDate": "2025-02-07",
                }
            },
        )
    )["cancelDisbursement"]
    assert (cancelled["status"], cancelled["released"]) == ("CANCELLED", "100.00")
    balance = (await officer.data(BALANCE))["fundBalance"]
    housing = {p["program"]: p for p in balance["byProgram"]}["HOUSING"]
    assert (housing["committed"], housing["disbursed"], housing["available"]) == (
        "0.00",
        "200.00",
        "200.00",
    )
    as_of = (await officer.data(BALANCE, {"asOf": "2025-02-05T12:00:00+01:00"}))["fundBalance"]
    housing_then = {p["program"]: p for p in as_of["byProgram"]}["HOUSING"]
    assert (housing_then["committed"], housing_then["disbursed"]) == ("300.00", "0.00")

    provenance = await app_client.as_role(Role.AUDITOR).data(
        "query P($id: ID!) { provenance(disbursementId: $id) { amount rule "
        "sources { journalEntryId effectiveDate stream share amount } } }",
        {"id": first["id"]},
    )
    sources = provenance["provenance"]["sources"]
    assert provenance["provenance"]["amount"] == "200.00"
    assert [(s["effectiveDate"], s["stream"], s["amount"]) for s in sources] == [
        ("2025-02-01", "SHOP", "200.00")
    ]
    # A commitment cancelled with nothing paid traces no source, not a 0.00 one.
    unpaid = (await officer.data(COMMIT, {"input": {**commit, "idempotencyKey": "c9",
                                                    "amount": "10.00"}}))  # fmt: skip
    unpaid_id = unpaid["commitDisbursement"]["id"]
    await officer.data(CANCEL, {"input": {"idempotencyKey": "x9", "disbursementId": unpaid_id}})
    traced = await app_client.as_role(Role.AUDITOR).data(
        "query P($id: ID!) { provenance(disbursementId: $id) { amount sources { amount } } }",
        {"id": unpaid_id},
    )
    assert traced["provenance"] == {"amount": "0.00", "sources": []}
    # Nor is anyone enrolled ahead of time.
    ahead = await officer.data(
        ENROLL,
        {"input": {"idempotencyKey": "e-ahead", "program": "HOUSING", "enrolledOn": "2999-01-01"}},
    )
    assert ahead["enrollBeneficiary"]["__typename"] == "ValidationError"


PROVENANCE = """
query P($id: ID!) { provenance(disbursementId: $id) {
  amount sources { journalEntryId effectiveDate amount } } }
"""


async def test_provenance_stops_naming_income_that_was_reversed(
    app_client: GraphQLClient,
) -> None:
    """A sale posted in error and reversed funds nothing: the commitments it was
    traced to are traced to the income that still stands, before and after a rebuild."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    auditor = app_client.as_role(Role.AUDITOR)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "SHOP", "percent": "50"}])
    entry_ids = []
    takings = (("wrong", "2025-02-01", "1000.00"), ("right", "2025-02-02", "1200.00"))
    for key, day, amount in takings:
        posted = await admin.data(
            "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) "
            "{ ... on JournalEntry { id } } }",
            {
                "i": {
                    "idempotencyKey": key,
                    "effectiveDate": day,
                    "description": "Shop takings",
                    "postings": [
                        {"account": "1010", "side": "DEBIT", "amount": amount},
                        {"account": "4100", "side": "CREDIT", "amount": amount},
                    ],
                }
            },
        )
        entry_ids.append(posted["postJournalEntry"]["id"])
    wrong, right = entry_ids  # HOUSING's shares: 250.00, then 300.00
    ref = (
        await officer.data(
            ENROLL,
            {"input": {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01"}},
        )
    )["enrollBeneficiary"]["beneficiaryRef"]
    commitments = []
    for key, amount in (("c1", "200.00"), ("c2", "100.00")):
        committed = await officer.data(
            COMMIT,
            {
                "input": {
                    "idempotencyKey": key,
                    "beneficiaryRef": ref,
                    "kind": "RENT",
                    "month": "2025-02",
                    "amount": amount,
                    "effectiveDate": "2025-02-03",
                }
            },
        )
        commitments.append(committed["commitDisbursement"]["id"])

    async def traced() -> list[list[tuple[str, str]]]:
        answers = []
        for disbursement_id in commitments:
            body = await auditor.data(PROVENANCE, {"id": disbursement_id})
            answers.append(
                [(s["journalEntryId"], s["amount"]) for s in body["provenance"]["sources"]]
            )
        return answers

    assert await traced() == [[(wrong, "200.00")], [(wrong, "50.00"), (right, "50.00")]]
    reversed_ = await admin.data(
        "mutation($i: ReverseJournalEntryInput!) { reverseJournalEntry(input: $i) { __typename } }",
        {
            "i": {
                "idempotencyKey": "undo-wrong",
                "entryId": wrong,
                "effectiveDate": "2025-02-04",
                "description": "Takings of another shop, posted here by mistake",
            }
        },
    )
    assert reversed_["reverseJournalEntry"]["__typename"] == "JournalEntry"
    expected = [[(right, "200.00")], [(right, "100.00")]]
    assert await traced() == expected
    # Income after the correction queues after what still stands.
    await _income(admin, "later", "2025-02-05", "4100", "400.00")  # HOUSING: 100.00
    committed = await officer.data(
        COMMIT,
        {
            "input": {
                "idempotencyKey": "c3",
                "beneficiaryRef": ref,
                "kind": "RENT",
                "month": "2025-03",
                "amount": "50.00",
                "effectiveDate": "2025-02-06",
            }
        },
    )
    commitments.append(committed["commitDisbursement"]["id"])
    body = await auditor.data(PROVENANCE, {"id": commitments[2]})
    assert [(s["effectiveDate"], s["amount"]) for s in body["provenance"]["sources"]] == [
        ("2025-02-05", "50.00")
    ]
    answers = await traced()
    app_client.runtime.projector.rebuild()
    assert await traced() == answers


async def test_forgetting_a_beneficiary_shreds_the_note_and_keeps_every_total(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    note = "Maria Rossi, via Roma 1, Breno: left a violent partner in March"
    await _policy(officer, "p1", "2025-01-01", [{"stream": "HOTEL", "percent": "50"}])
    await _income(admin, "stay-1", "2025-02-01", "4000", "2000.00")
    enrolled = (
        await officer.data(
            ENROLL,
            {
                "input": {
                    "idempotencyKey": "e1",
                    "program": "HOUSING",
                    "enrolledOn": "2025-02-01",
                    "caseNote": note,
                }
            },
        )
    )["enrollBeneficiary"]
    assert enrolled["caseNote"] == note
    ref = enrolled["beneficiaryRef"]
    commit = {"idempotencyKey": "c1", "beneficiaryRef": ref, "kind": "DEPOSIT",
              "month": "2025-02", "amount": "300.00", "effectiveDate": "2025-02-02"}  # fmt: skip
    disbursement = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
    assert disbursement["__typename"] == "Disbursement"
    # Her events' dates are a timeline of her: an auditor or admin who learnt the
    # reference finds no history under it, exactly as under an unknown id.
    history = "query($id: ID!) { eventHistory(aggregateId: $id) { nodes { type } } }"
    for role in (Role.AUDITOR, Role.ADMIN):
        body = await app_client.as_role(role).execute(history, {"id": ref})
        assert body.get("data") is None, body
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert "Beneficiary" not in json.dumps(body)
    payment = await app_client.as_role(Role.AUDITOR).data(history, {"id": disbursement["id"]})
    assert payment["eventHistory"]["nodes"]  # the fund's own records stay auditable

    engine = app_client.runtime.sync_engine
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if "event" in t or "snapshot" in t]
        assert tables
        for table in tables:
            for (state,) in conn.execute(text(f'SELECT state FROM "{table}"')):
                raw = bytes(state)
                assert b"Rossi" not in raw, table
                assert b"Roma" not in raw, table

    statement_query = (
        'query { fundStatement(from: "2025-01-01", to: "2025-12-31") '
        "{ accrued committed disbursed closing { available byProgram { program available } } } }"
    )
    before = (await officer.data(BALANCE))["fundBalance"], await officer.data(statement_query)
    forgotten = (
        await officer.data(
            "mutation F($input: ForgetBeneficiaryInput!) { forgetBeneficiary(input: $input) "
            "{ __typename ... on Beneficiary { forgotten caseNote } } }",
            {"input": {"idempotencyKey": "f1", "beneficiaryRef": ref}},
        )
    )["forgetBeneficiary"]
    assert forgotten == {"__typename": "Beneficiary", "forgotten": True, "caseNote": None}
    after = (await officer.data(BALANCE))["fundBalance"], await officer.data(statement_query)
    assert after == before
    # The sealed note still in the events can no longer be opened by anyone.
    app = app_client.runtime.welfare

    assert app.keys.get(UUID(ref)) is None
    assert app.get_beneficiary(UUID(ref)).case_note_sealed is not None
    looked_up = await officer.data(
        "query B($r: String!) { beneficiary(beneficiaryRef: $r) { forgotten caseNote } }",
        {"r": ref},
    )
    assert looked_up["beneficiary"] == {"forgotten": True, "caseNote": None}


async def test_a_program_added_by_configuration_accrues_and_pays(settings: Settings) -> None:
    """TRAINING (course fees, paid as an allowance) beside the two default programs."""
    with_training = settings.model_copy(
        update={
            "welfare_programs": {
                "INTERNSHIP": "STIPEND",
                "HOUSING": "HOUSING",
                "TRAINING": "ALLOWANCE",
            }
        }
    )
    async with serving(with_training) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        admin = app_client.as_person(Role.ADMIN)
        # Program codes are accepted bare, as enum values used to be, or quoted.
        policy = await officer.data(
            """mutation { setRedistributionPolicy(input: {idempotencyKey: "p1",
              effectiveFrom: "2025-01-01", shares: [{stream: SHOP, percent: "10"}],
              programShares: [{program: INTERNSHIP, percent: "50"},
                              {program: HOUSING, percent: "25"},
                              {program: "TRAINING", percent: "25"}]}) {
              __typename ... on ValidationError { field message } } }"""
        )
        assert policy["setRedistributionPolicy"] == {"__typename": "RedistributionPolicy"}
        await _income(admin, "sale-1", "2025-02-01", "4100", "1000.00")  # 100.00 accrued
        balance = (await officer.data(BALANCE))["fundBalance"]
        by_program = {p["program"]: p for p in balance["byProgram"]}
        assert list(by_program) == ["INTERNSHIP", "HOUSING", "TRAINING"]
        assert [by_program[p]["accrued"] for p in by_program] == ["50.00", "25.00", "25.00"]

        head = app_client.head()
        unknown = await officer.execute(
            ENROLL, {"input": {"idempotencyKey": "e0", "program": "CHILDCARE"}}
        )
        assert unknown["data"]["enrollBeneficiary"]["__typename"] == "ValidationError"
        lowercase = await officer.execute(
            ENROLL, {"input": {"idempotencyKey": "e0", "program": "training"}}
        )
        assert "capital letters" in lowercase["errors"][0]["message"]
        assert app_client.head() == head

        enroll = {"idempotencyKey": "e1", "program": "TRAINING", "enrolledOn": "2025-02-01"}
        ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
        commit = {
            "idempotencyKey": "c1",
            "beneficiaryRef": ref,
            "kind": "RENT",
            "month": "2025-02",
            "amount": "20.00",
            "effectiveDate": "2025-02-03",
        }
        head = app_client.head()
        wrong_kind = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
        assert (wrong_kind["__typename"], wrong_kind["field"]) == ("ValidationError", "kind")
        attendance = await officer.data(
            """mutation A($ref: String!) { recordAttendance(input: {idempotencyKey: "a1",
              beneficiaryRef: $ref, month: "2025-02", scheduledDays: 20, attendedDays: 20}) {
              __typename } }""",
            {"ref": ref},
        )
        assert attendance["recordAttendance"]["__typename"] == "ValidationError"
        assert app_client.head() == head
        commit.update(idempotencyKey="c2", kind="ALLOWANCE")
        committed = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
        assert committed["__typename"] == "Disbursement"
        commit.update(idempotencyKey="c3", amount="5.01")
        short = (await officer.data(COMMIT, {"input": commit}))["commitDisbursement"]
        assert (short["__typename"], short["program"], short["available"]) == (
            "InsufficientFunds",
            "TRAINING",
            "5.00",
        )
        training = {
            p["program"]: p for p in (await officer.data(BALANCE))["fundBalance"]["byProgram"]
        }["TRAINING"]
        assert (training["committed"], training["available"]) == ("20.00", "5.00")

    # A configuration that drops a program holding money is refused at start.
    with pytest.raises(ConfigurationError, match="leaves out TRAINING"):
        Runtime(settings)
    misspelt = settings.model_copy(update={"welfare_programs": {"training": "ALLOWANCE"}})
    with pytest.raises(ConfigurationError, match="COOP_WELFARE_PROGRAMS"):
        Runtime(misspelt)


async def test_a_fund_query_waits_for_postings_made_elsewhere_then_says_it_lags(
    settings: Settings,
) -> None:
    """Income posted by another process (not through this client's mutations) must be
    accrued before the fund answers; when the read models do not catch up in time
    the answer is PROJECTION_LAG, never a balance silently missing that income."""
    behind = settings.model_copy(
        update={"run_projector_in_process": False, "read_your_writes_timeout_s": 0.3}
    )
    async with serving(behind) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        runtime = app_client.runtime
        runtime.welfare.set_policy(
            key="p", actor="t", effective_from=date(2025, 1, 1), shares=[(Stream.SHOP, 100_000)]
        )
        await anyio.to_thread.run_sync(runtime.projector.run_until_caught_up)
        assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "0.00"

        runtime.ledger.post_entry(
            key="till-sale",
            actor="another-process",
            effective_date=date(2025, 2, 1),
            description="Shop sale",
            postings=[Posting("1000", Side.DEBIT, 20_000), Posting("4100", Side.CREDIT, 20_000)],
        )
        lagging = await officer.execute(BALANCE)
        assert lagging["data"] is None
        assert lagging["errors"][0]["extensions"]["code"] == "PROJECTION_LAG"

        await anyio.to_thread.run_sync(runtime.projector.run_until_caught_up)
        assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "20.00"


async def test_a_page_of_beneficiaries_shows_each_her_own_note_and_attendance(
    app_client: GraphQLClient,
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    attend = (
        "mutation A($input: RecordAttendanceInput!) { recordAttendance(input: $input) "
        "{ __typename } }"
    )
    enrolled = [
        ("INTERNSHIP", "2025-01-01", "first intern's note", [("2025-01", 20, 20)]),
        ("HOUSING", "2025-02-01", None, []),
        ("INTERNSHIP", "2025-03-01", "third's note", [("2025-03", 20, 10), ("2025-04", 18, 18)]),
        ("HOUSING", "2025-04-01", "to be forgotten", []),
    ]
    refs = []
    for number, (program, day, note, months) in enumerate(enrolled):
        value = {"idempotencyKey": f"e{number}", "program": program, "enrolledOn": day}
        if note is not None:
            value["caseNote"] = note
        answer = (await officer.data(ENROLL, {"input": value}))["enrollBeneficiary"]
        refs.append(answer["beneficiaryRef"])
        for month, scheduled, attended in months:
            attendance = {
                "idempotencyKey": f"a{number}-{month}",
                "beneficiaryRef": refs[-1],
                "month": month,
                "scheduledDays": scheduled,
                "attendedDays": attended,
            }
            recorded = (await officer.data(attend, {"input": attendance}))["recordAttendance"]
            assert recorded["__typename"] == "Beneficiary", recorded
    forget = (
        "mutation F($input: ForgetBeneficiaryInput!) { forgetBeneficiary(input: $input) "
        "{ __typename } }"
    )
    await officer.data(forget, {"input": {"idempotencyKey": "f", "beneficiaryRef": refs[3]}})

    fields = (
        "beneficiaryRef program enrolledOn forgotten caseNote "
        "attendance { month scheduledDays attendedDays stipend }"
    )
    page_query = (
        "query P($after: String) { beneficiaries(first: 3, after: $after) { nodes { "
        + fields
        + " } pageInfo { hasNextPage endCursor } } }"
    )
    first = (await officer.data(page_query))["beneficiaries"]
    rest = (await officer.data(page_query, {"after": first["pageInfo"]["endCursor"]}))[
        "beneficiaries"
    ]
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)
    listed = first["nodes"] + rest["nodes"]
    assert [b["beneficiaryRef"] for b in listed] == refs
    assert [(b["caseNote"], b["forgotten"]) for b in listed] == [
        ("first intern's note", False),
        (None, False),
        ("third's note", False),
        (None, True),
    ]
    assert [[a["month"] for a in b["attendance"]] for b in listed] == [
        ["2025-01"],
        [],
        ["2025-03", "2025-04"],
        [],
    ]
    one = "query B($r: String!) { beneficiary(beneficiaryRef: $r) { " + fields + " } }"
    for node in listed:
        alone = await officer.data(one, {"r": node["beneficiaryRef"]})
        assert alone["beneficiary"] == node


async def test_a_beneficiary_or_disbursement_missing_from_emptied_read_models_says_so(
    app_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a rebuild in another process has emptied the read models, the command's
    result is NOT_FOUND saying it is not projected yet, not that what the command
    just wrote does not exist."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "HOTEL", "percent": "50"}])
    await _income(app_client.as_person(Role.ADMIN), "stay-1", "2025-02-01", "4000", "2000.00")
    enroll = {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01"}
    ref = (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    from services.welfare_fund.projections import queries

    async def emptied(_conn: object, subject_id: UUID) -> object:
        raise NotFound(f"{subject_id} does not exist")

    monkeypatch.setattr(queries, "beneficiary", emptied)
    monkeypatch.setattr(queries, "disbursement", emptied)
    enroll = {"idempotencyKey": "e2", "program": "HOUSING", "enrolledOn": "2025-02-01"}
    body = await officer.execute(ENROLL, {"input": enroll})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert error["message"].endswith("is not projected yet"), error
    commit = {"idempotencyKey": "c1", "beneficiaryRef": ref, "kind": "DEPOSIT",
              "month": "2025-02", "amount": "300.00", "effectiveDate": "2025-02-02"}  # fmt: skip
    body = await officer.execute(COMMIT, {"input": commit})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert error["message"].startswith("disbursement "), error
    assert error["message"].endswith("is not projected yet"), error

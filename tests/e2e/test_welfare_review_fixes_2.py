"""The welfare fund review's second round of findings, on both stores: an accrual above
the amount ceiling no longer stops the read models, a retry after midnight gets the
stored answer, a 0% program gets no rounding cents, a commitment cannot be saved for
a beneficiary forgotten meanwhile, and empty lists or days a month does not have are
refused with nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.errors import Conflict, NotFound
from services.common.idempotency import Outcome
from services.common.settings import Settings
from services.ledger.domain import Posting, Side
from services.welfare_fund.domain import (
    Beneficiary,
    Disbursement,
    DisbursementKind,
    Program,
    Stream,
    WelfareFund,
    disbursement_id_for,
)
from tests.e2e.conftest import GraphQLClient, serving
from tests.e2e.test_stipend_months import _once_before
from tests.e2e.test_welfare_graphql import BALANCE, ENROLL, POST, _income, _policy

OFFICER = "person:officer"
POLICY = """
mutation P($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) {
    __typename
    ... on RedistributionPolicy {
      effectiveFrom
      programShares { program percent }
      accountStreams { accountPrefix stream }
    }
    ... on ValidationError { field message }
  }
}
"""
POLICIES = "query { redistributionPolicies { effectiveFrom } }"
ATTEND = """
mutation A($i: RecordAttendanceInput!) { recordAttendance(input: $i) {
  __typename
  ... on Beneficiary { attendance { month scheduledDays attendedDays stipend } }
  ... on ValidationError { field message } } }
"""


def _disbursement_mutation(name: str, input_type: str) -> str:
    """`name`'s answer as a client reads it: the disbursement as stored, with its dates."""
    return f"""
mutation M($input: {input_type}!) {{ {name}(input: $input) {{
  __typename
  ... on Disbursement {{
    id status amount paid released committedOn approvedOn lastPaidOn cancelledOn
  }}
  ... on ValidationError {{ field message }}
  ... on Conflict {{ message }}
  ... on IdempotencyKeyReused {{ message }}
}} }}
"""


COMMIT = _disbursement_mutation("commitDisbursement", "CommitDisbursementInput")
APPROVE = _disbursement_mutation("approveDisbursement", "ApproveDisbursementInput")
PAY = _disbursement_mutation("payDisbursement", "PayDisbursementInput")
REVERSE = _disbursement_mutation("reverseDisbursementPayment", "ReverseDisbursementPaymentInput")
CANCEL = _disbursement_mutation("cancelDisbursement", "CancelDisbursementInput")


def _by_program(balance: dict[str, Any]) -> dict[str, str]:
    return {p["program"]: p["accrued"] for p in balance["byProgram"]}


def _posting(account: str, side: str, amount: str) -> dict[str, str]:
    return {"account": account, "side": side, "amount": amount}


# -- 1. an accrual above the amount ceiling ------------------------------------------


async def test_an_accrual_above_the_amount_ceiling_is_posted_and_every_read_model_goes_on(
    settings: Settings,
) -> None:
    """A group booking of EUR 240,000.00 in three lines of 80,000.00, each under a
    ceiling of 100,000.00: half of it, 120,000.00, is the fund's share on that day,
    above the ceiling. Refused, the accrual stopped the follower for good and every
    mutation and query answered PROJECTION_LAG. The ceiling guards amounts people type;
    a description limit of 20 characters (the accrual's is longer) does not stop it
    either."""
    limited = settings.model_copy(
        update={
            "amount_ceiling_cents": 100_000_00,
            "max_description_length": 20,
            "read_your_writes_timeout_s": 3,
        }
    )
    async with serving(limited) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        admin = app_client.as_person(Role.ADMIN)
        await _policy(officer, "policy", "2025-01-01", [{"stream": "HOTEL", "percent": "50"}])
        lines = [_posting("1010", "DEBIT", "80000.00") for _ in range(3)]
        lines += [_posting("4000", "CREDIT", "80000.00") for _ in range(3)]
        booking = {"idempotencyKey": "group", "effectiveDate": "2025-03-01",
                   "description": "Group booking", "postings": lines}  # fmt: skip
        assert (await admin.data(POST, {"input": booking}))["postJournalEntry"] == {
            "__typename": "JournalEntry"
        }

        balance = (await officer.data(BALANCE))["fundBalance"]
        assert balance["accrued"] == "120000.00"
        assert _by_program(balance) == {"INTERNSHIP": "60000.00", "HOUSING": "60000.00"}
        ledger = await admin.data(
            'query { accountBalance(code: "2400") { balance } trialBalance { balanced } }'
        )
        assert ledger["accountBalance"]["balance"] == "120000.00"
        assert ledger["trialBalance"]["balanced"] is True

        # What people type is still held to both limits, and later income is accrued.
        typed = {"idempotencyKey": "typed", "effectiveDate": "2025-03-02",
                 "description": "Too much", "postings": [
                     _posting("1010", "DEBIT", "100000.01"),
                     _posting("4000", "CREDIT", "100000.01")]}  # fmt: skip
        refused = await admin.data(
            "mutation P($input: PostJournalEntryInput!) { postJournalEntry(input: $input) "
            "{ __typename ... on ValidationError { field } } }",
            {"input": typed},
        )
        assert refused["postJournalEntry"] == {
            "__typename": "ValidationError",
            "field": "postings[0].amount",
        }
        await _income(admin, "stay", "2025-03-02", "4000", "10.00")
        assert (await officer.data(BALANCE))["fundBalance"]["accrued"] == "120005.00"


# -- 2. a retry after midnight --------------------------------------------------------


def _pin_today(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Callable[[date], None]:
    """The fund's calendar day, set by the test: what a date left out stands for."""
    today = [date(2025, 2, 10)]
    monkeypatch.setattr(runtime.welfare, "today", lambda: today[0])

    def move_to(day: date) -> None:
        today[0] = day

    return move_to


async def test_a_retry_after_midnight_gets_what_was_stored(
    app_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request leaves its date out (today), and its answer is lost; the client
    retries with the same key after midnight. The date filled in before the request
    was hashed made the retry another request: IdempotencyKeyReused, and the client
    could not tell whether its payment was recorded. Now the retry answers with what
    was stored, dated the first day, and nothing is recorded twice."""
    move_to = _pin_today(app_client.runtime, monkeypatch)
    officer = app_client.as_person(Role.FUND_OFFICER)
    checker = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "policy", "2025-01-01", [{"stream": "SHOP", "percent": "50"}])
    await _income(admin, "sale", "2025-02-01", "4100", "1000.00")

    async def twice(client: GraphQLClient, query: str, field: str, data: dict[str, Any]) -> Any:
        """The request on the 10th, then its retry on the 11th: both answers."""
        move_to(date(2025, 2, 10))
        first = (await client.data(query, {"input": data}))[field]
        head = app_client.head()
        move_to(date(2025, 2, 11))
        again = (await client.data(query, {"input": data}))[field]
        assert app_client.head() == head  # the retry stored nothing
        return first, again

    enrol = {"idempotencyKey": "enrol", "program": "HOUSING"}
    first, again = await twice(officer, ENROLL, "enrollBeneficiary", enrol)
    assert again == first
    ref = first["beneficiaryRef"]
    enrolled = await officer.data(
        "query B($r: String!) { beneficiary(beneficiaryRef: $r) { enrolledOn } }", {"r": ref}
    )
    assert enrolled["beneficiary"]["enrolledOn"] == "2025-02-10"

    commit = {"idempotencyKey": "commit", "beneficiaryRef": ref, "kind": "RENT",
              "month": "2025-02", "amount": "200.00"}  # fmt: skip
    first, again = await twice(officer, COMMIT, "commitDisbursement", commit)
    assert first["__typename"] == "Disbursement", first
    assert again == first
    assert first["committedOn"] == "2025-02-10"
    disbursement_id = first["id"]

    steps = (
        (checker, APPROVE, "approveDisbursement", {"idempotencyKey": "approve"}),
        (admin, PAY, "payDisbursement", {"idempotencyKey": "pay", "amount": "50.00"}),
        (admin, REVERSE, "reverseDisbursementPayment",
         {"idempotencyKey": "reverse", "payment": 1, "reason": "WRONG_AMOUNT"}),
        (officer, CANCEL, "cancelDisbursement", {"idempotencyKey": "cancel"}),
    )  # fmt: skip
    answers = []
    for client, query, field, data in steps:
        full = {**data, "disbursementId": disbursement_id}
        first, again = await twice(client, query, field, full)
        assert first["__typename"] == "Disbursement", (field, first)
        assert again == first, field
        answers.append(first)
    approved, paid, reversed_, cancelled = answers
    assert approved["approvedOn"] == "2025-02-10"
    assert (paid["paid"], paid["lastPaidOn"]) == ("50.00", "2025-02-10")
    assert reversed_["paid"] == "0.00"
    assert (cancelled["status"], cancelled["released"], cancelled["cancelledOn"]) == (
        "CANCELLED",
        "200.00",
        "2025-02-10",
    )
    balance = (await officer.data(BALANCE))["fundBalance"]
    assert (balance["committed"], balance["disbursed"]) == ("0.00", "0.00")

    # A date sent is still part of the request: the same key with another date is not
    # the same request.
    move_to(date(2025, 2, 12))
    other_day = {**commit, "effectiveDate": "2025-02-11"}
    reused = (await officer.data(COMMIT, {"input": other_day}))["commitDisbursement"]
    assert reused["__typename"] == "IdempotencyKeyReused"


# -- 3. a 0% program and a reduction ---------------------------------------------------


async def test_a_program_with_a_zero_share_gets_no_rounding_cents(settings: Settings) -> None:
    """50/50/0: half a cent each to INTERNSHIP and HOUSING, twice. The last program
    listed, TRAINING at 0%, took the odd cent both times (EUR 0.02 it was never
    given). Now the odd cent goes by largest remainder among the programs with a
    share (of equal remainders, the one listed later)."""
    three = settings.model_copy(
        update={
            "welfare_programs": {
                "INTERNSHIP": "STIPEND",
                "HOUSING": "HOUSING",
                "TRAINING": "ALLOWANCE",
            }
        }
    )
    async with serving(three) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        admin = app_client.as_person(Role.ADMIN)
        policy = {
            "idempotencyKey": "policy",
            "effectiveFrom": "2025-01-01",
            "shares": [{"stream": "SHOP", "percent": "10"}, {"stream": "HOTEL", "percent": "10"}],
            "programShares": [
                {"program": "INTERNSHIP", "percent": "50"},
                {"program": "HOUSING", "percent": "50"},
                {"program": "TRAINING", "percent": "0"},
            ],
        }
        set_ = (await officer.data(POLICY, {"input": policy}))["setRedistributionPolicy"]
        assert set_["__typename"] == "RedistributionPolicy", set_
        await _income(admin, "sale", "2025-02-01", "4100", "0.10")  # accrues 0.01
        await _income(admin, "stay", "2025-02-01", "4000", "10.10")  # accrues 1.01
        balance = (await officer.data(BALANCE))["fundBalance"]
        assert balance["accrued"] == "1.02"
        assert _by_program(balance) == {
            "INTERNSHIP": "0.50",
            "HOUSING": "0.52",
            "TRAINING": "0.00",
        }


async def test_a_reduction_takes_from_the_programs_and_gives_none_a_cent(
    settings: Settings,
) -> None:
    """40/40/20, and the period's first posting takes EUR 0.01 of shop income back (a
    correction by hand): the fund accrues -0.01. Each program but the last took the
    floor of its share, -0.01 each, and the last the rest, +0.01: a reduction that
    added to a program. Now the whole cent comes from one program, and none gains."""
    three = settings.model_copy(
        update={
            "welfare_programs": {
                "INTERNSHIP": "STIPEND",
                "HOUSING": "HOUSING",
                "TRAINING": "ALLOWANCE",
            }
        }
    )
    async with serving(three) as app_client:
        officer = app_client.as_person(Role.FUND_OFFICER)
        admin = app_client.as_person(Role.ADMIN)
        policy = {
            "idempotencyKey": "policy",
            "effectiveFrom": "2025-01-01",
            "shares": [{"stream": "SHOP", "percent": "100"}],
            "programShares": [
                {"program": "INTERNSHIP", "percent": "40"},
                {"program": "HOUSING", "percent": "40"},
                {"program": "TRAINING", "percent": "20"},
            ],
        }
        set_ = (await officer.data(POLICY, {"input": policy}))["setRedistributionPolicy"]
        assert set_["__typename"] == "RedistributionPolicy", set_
        taken_back = {"idempotencyKey": "correction", "effectiveDate": "2025-02-01",
                      "description": "Correction", "postings": [
                          _posting("4100", "DEBIT", "0.01"),
                          _posting("1010", "CREDIT", "0.01")]}  # fmt: skip
        posted = (await admin.data(POST, {"input": taken_back}))["postJournalEntry"]
        assert posted == {"__typename": "JournalEntry"}
        balance = (await officer.data(BALANCE))["fundBalance"]
        assert balance["accrued"] == "-0.01"
        assert _by_program(balance) == {
            "INTERNSHIP": "0.00",
            "HOUSING": "-0.01",
            "TRAINING": "0.00",
        }


# -- 4. a commitment racing a forget --------------------------------------------------


def _housed(runtime: Runtime) -> Beneficiary:
    welfare = runtime.welfare
    welfare.set_policy(
        key="policy",
        actor=OFFICER,
        effective_from=date(2025, 1, 1),
        shares=[(Stream.SHOP, 500_000)],
    )
    runtime.ledger.post_entry(
        key="sale",
        actor="admin",
        effective_date=date(2025, 2, 1),
        description="Sale",
        postings=[Posting("1000", Side.DEBIT, 100_000), Posting("4100", Side.CREDIT, 100_000)],
    )
    runtime.projector.run_until_caught_up()
    return welfare.enroll(
        key="enrol",
        actor=OFFICER,
        program=Program.HOUSING,
        enrolled_on=date(2025, 2, 1),
        case_note=None,
    ).result


def _commit_rent(runtime: Runtime, key: str, beneficiary: Beneficiary) -> Outcome[Disbursement]:
    return runtime.welfare.commit(
        key=key,
        actor=OFFICER,
        beneficiary_id=beneficiary.id,
        kind=DisbursementKind.RENT,
        month="2025-02",
        amount_cents=10_000,
        committed_on=date(2025, 2, 3),
    )


@pytest.mark.parametrize("kind", [DisbursementKind.RENT, DisbursementKind.DEPOSIT])
def test_a_commitment_decided_while_its_beneficiary_is_forgotten_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, kind: DisbursementKind
) -> None:
    """The rent read her (not forgotten), then she was forgotten, then the rent was
    saved: only a stipend saved her with it, so a housing commitment was stored for a
    beneficiary already forgotten. Now its save loses on her version, and deciding
    again it is refused; nothing of it is stored."""
    welfare = runtime.welfare
    housed = _housed(runtime)
    available = welfare.fund().available_cents(Program.HOUSING)
    decisions = _once_before(
        monkeypatch,
        WelfareFund,
        "reserve",
        lambda: welfare.forget(key="forget", actor=OFFICER, beneficiary_id=housed.id),
    )
    with pytest.raises(Conflict, match="forgotten"):
        welfare.commit(
            key="rent",
            actor=OFFICER,
            beneficiary_id=housed.id,
            kind=kind,
            month="2025-02",
            amount_cents=10_000,
            committed_on=date(2025, 2, 3),
        )
    assert len(decisions) == 1  # the second decision is refused before reserving
    assert welfare.get_beneficiary(housed.id).forgotten
    assert welfare.fund().available_cents(Program.HOUSING) == available
    with pytest.raises(NotFound):
        welfare.get_disbursement(disbursement_id_for("rent"))


def test_a_retry_of_a_stored_commitment_racing_the_forget_gets_the_stored_answer(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rent was stored, its answer lost; the retry read her just before she was
    forgotten. It is the same request: it gets the stored commitment, not a refusal."""
    welfare = runtime.welfare
    housed = _housed(runtime)
    stored = _commit_rent(runtime, "rent", housed).result
    _once_before(
        monkeypatch,
        WelfareFund,
        "reserve",
        lambda: welfare.forget(key="forget", actor=OFFICER, beneficiary_id=housed.id),
    )
    again = _commit_rent(runtime, "rent", housed)
    assert again.replayed
    assert again.result.id == stored.id
    assert welfare.get_beneficiary(housed.id).forgotten


def test_a_forget_saved_after_a_commitment_still_forgets(runtime: Runtime) -> None:
    """The other order is a valid one: what was committed for her stays (accounting
    facts), and she is forgotten."""
    welfare = runtime.welfare
    housed = _housed(runtime)
    stored = _commit_rent(runtime, "rent", housed).result
    welfare.forget(key="forget", actor=OFFICER, beneficiary_id=housed.id)
    assert welfare.get_beneficiary(housed.id).forgotten
    assert welfare.get_disbursement(stored.id).amount_cents == 10_000


# -- 5. empty lists and days a month does not have ------------------------------------


@pytest.mark.parametrize("field", ["programShares", "accountStreams"])
async def test_an_empty_list_is_refused_not_taken_as_left_out(
    app_client: GraphQLClient, field: str
) -> None:
    """`programShares: []` or `accountStreams: []` silently kept the earlier values:
    the answer showed a split or a mapping the officer had not sent. An empty list is
    refused on its field and nothing is stored; leaving the field out keeps the
    values in force."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    policy = {"idempotencyKey": "policy", "effectiveFrom": "2025-01-01",
              "shares": [{"stream": "HOTEL", "percent": "10"}]}  # fmt: skip
    head = app_client.head()
    answer = await officer.data(POLICY, {"input": {**policy, field: []}})
    refused = answer["setRedistributionPolicy"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
    assert app_client.head() == head
    assert (await officer.data(POLICIES))["redistributionPolicies"] == []

    # The key is free again: the same request without the field takes the defaults.
    kept = (await officer.data(POLICY, {"input": policy}))["setRedistributionPolicy"]
    assert kept["__typename"] == "RedistributionPolicy", kept
    assert kept["programShares"] == [
        {"program": "INTERNSHIP", "percent": "50"},
        {"program": "HOUSING", "percent": "50"},
    ]
    assert {"accountPrefix": "40", "stream": "HOTEL"} in kept["accountStreams"]


async def test_scheduled_days_are_at_most_the_days_in_the_month(
    app_client: GraphQLClient,
) -> None:
    """February 2025 with 31 scheduled days was recorded: 24 attended then read as
    77% and paid pro rata, EUR 387.10. At most 28 days are scheduled in that February
    (29 in 2024's), 30 in April; nothing is stored for a refusal."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    enrolled = await officer.data(
        ENROLL,
        {"input": {"idempotencyKey": "e", "program": "INTERNSHIP", "enrolledOn": "2024-01-01"}},
    )
    ref = enrolled["enrollBeneficiary"]["beneficiaryRef"]
    # February 2024 and April 2025 are months 2 and 16: rules allowing that long.
    longer = {"idempotencyKey": "r", "effectiveFrom": "2024-01-01", "fullAmount": "500.00",
              "withMealsAmount": "400.00", "partTimeAmount": "350.00", "floorAmount": "300.00",
              "fullAttendancePercent": "80", "maxMonths": 24}  # fmt: skip
    rules = await officer.data(
        "mutation S($i: SetStipendRulesInput!) { setStipendRules(input: $i) { __typename } }",
        {"i": longer},
    )
    assert rules["setStipendRules"]["__typename"] == "StipendRuleSet"

    async def attend(key: str, month: str, scheduled: int) -> Any:
        attendance = {"idempotencyKey": key, "beneficiaryRef": ref, "month": month,
                      "scheduledDays": scheduled, "attendedDays": 24}  # fmt: skip
        return (await officer.data(ATTEND, {"i": attendance}))["recordAttendance"]

    for key, month, scheduled, days in (
        ("feb-31", "2025-02", 31, 28),
        ("feb-29", "2025-02", 29, 28),
        ("leap-30", "2024-02", 30, 29),
        ("april-31", "2025-04", 31, 30),
    ):
        head = app_client.head()
        refused = await attend(key, month, scheduled)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "scheduledDays")
        assert f"1 to {days}" in refused["message"]
        assert app_client.head() == head

    recorded = await attend("feb-28", "2025-02", 28)
    assert recorded["attendance"] == [
        {"month": "2025-02", "scheduledDays": 28, "attendedDays": 24, "stipend": "500.00"}
    ]
    recorded = await attend("leap-29", "2024-02", 29)
    assert {"month": "2024-02", "scheduledDays": 29, "attendedDays": 24,
            "stipend": "500.00"} in recorded["attendance"]  # fmt: skip

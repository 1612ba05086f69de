"""Welfare fund domain: the accrual rule, allocation, percentages, stipends, policy."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.common.errors import Conflict, ValidationError
from services.ledger.domain import Posting, Side
from services.ledger.domain.journal import check_books_open
from services.welfare_fund.domain import (
    DEFAULT_ACCOUNT_STREAMS,
    DEFAULT_PROGRAMS,
    ApprovalByCommitter,
    Beneficiary,
    Disbursement,
    DisbursementKind,
    DisbursementStatus,
    IncomeSource,
    InsufficientFunds,
    PaymentByApprover,
    PaymentReversalReason,
    PersonRequired,
    PolicyVersion,
    Program,
    ProgramCatalog,
    StipendRules,
    Stream,
    Support,
    VersionExists,
    WelfareFund,
    accrue,
    accrued_total,
    allocate,
    check_decided_by_person,
    format_percent,
    parse_percent,
)
from services.welfare_fund.domain.policy import allocate_total, check_policy
from services.welfare_fund.graphql.types import Attendance
from services.welfare_fund.projections.queries import AttendanceRow

PROPORTIONS = ((Program.INTERNSHIP, 333_333), (Program.HOUSING, 666_667))


@given(
    rate_ppm=st.integers(min_value=0, max_value=1_000_000),
    sales=st.lists(st.integers(min_value=-500, max_value=5_000), min_size=1_000, max_size=3_000),
)
@hypothesis_settings(max_examples=40, deadline=None)
def test_accrual_never_drifts_over_thousands_of_small_sales(
    rate_ppm: int, sales: list[int]
) -> None:
    base = accrued = 0
    for cents in sales:
        accrued += accrue(rate_ppm, base, cents)
        base += cents
        # After every sale, what was accrued is exactly floor(rate x base so far).
        assert accrued == rate_ppm * base // 1_000_000
    assert accrued == accrued_total(rate_ppm, sum(sales))


def test_rounding_each_sale_separately_would_drift() -> None:
    # 1,000 sales of EUR 0.99 at 2.5%: per sale 2.475 cents -> 2; cumulatively 2,475.
    per_sale = sum(99 * 25_000 // 1_000_000 for _ in range(1000))
    base = accrued = 0
    for _ in range(1000):
        accrued += accrue(25_000, base, 99)
        base += 99
    assert (per_sale, accrued) == (2_000, 2_475)


@given(steps=st.lists(st.integers(min_value=-300, max_value=3_000), min_size=1, max_size=300))
def test_program_allocations_sum_exactly_to_each_accrual(steps: list[int]) -> None:
    total = 0
    given_by_program = {p: 0 for p, _ in PROPORTIONS}
    for cents in steps:
        parts = allocate(total, cents, PROPORTIONS)
        assert sum(parts.values()) == cents
        total += cents
        for program, part in parts.items():
            given_by_program[program] += part
    assert given_by_program == allocate_total(total, PROPORTIONS)


@pytest.mark.parametrize(
    ("text", "ppm"),
    [("0", 0), ("2.5", 25_000), ("12.3456", 123_456), ("100", 1_000_000), ("0.0001", 1)],
)
def test_percentages_are_exact(text: str, ppm: int) -> None:
    assert parse_percent(text, field="p") == ppm
    assert parse_percent(format_percent(ppm), field="p") == ppm


@pytest.mark.parametrize(
    "text", ["100.0001", "101", "-1", "1.23456", "1e2", "NaN", "", " 5", "5.", ".5", "05"]
)
def test_bad_percentages_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_percent(text, field="shares[0].percent")
    assert caught.value.field == "shares[0].percent"


RULES = StipendRules(effective_from=date(2000, 1, 1))


@pytest.mark.parametrize(
    ("scheduled", "attended", "meals", "part_time", "cents"),
    [
        (20, 20, False, False, 50_000),
        (20, 16, False, False, 50_000),  # 80%: full
        (20, 16, True, False, 40_000),
        (20, 16, False, True, 35_000),
        (20, 15, False, False, 37_500),  # 75%: pro rata
        (20, 10, False, False, 30_000),  # 50% -> 250, never below 300
        (21, 13, False, False, 30_952),  # 61.9%: rounded half up to the cent
        (20, 0, False, False, 0),  # no attendance, no stipend
    ],
)
def test_stipend_rules(
    scheduled: int, attended: int, meals: bool, part_time: bool, cents: int
) -> None:
    assert (
        RULES.stipend_cents(
            scheduled_days=scheduled,
            attended_days=attended,
            meals_provided=meals,
            part_time=part_time,
        )
        == cents
    )


def _policy(day: date, hotel_ppm: int) -> PolicyVersion:
    return PolicyVersion(
        effective_from=day,
        shares_ppm={Stream.HOTEL: hotel_ppm},
        program_shares_ppm=PROPORTIONS,
        account_streams=DEFAULT_ACCOUNT_STREAMS,
    )


def _sale(position: int, day: date, cents: int, account: str = "4000") -> IncomeSource:
    return IncomeSource(
        position,
        f"entry-{position}",
        day,
        [Posting("1000", Side.DEBIT, cents), Posting(account, Side.CREDIT, cents)],
    )


def test_each_posting_follows_the_policy_on_its_date_and_the_past_is_closed() -> None:
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(date(2025, 1, 1), 50_000))
    fund.set_policy(_policy(date(2025, 6, 1), 100_000))
    items = fund.plan_accruals(
        [_sale(1, date(2025, 5, 31), 1_000), _sale(2, date(2025, 6, 1), 1_000)]
    )
    assert [(i["period"], i["accrued"]) for i in items] == [
        ("2025-01-01", 50),
        ("2025-06-01", 100),
    ]
    fund.record_accruals(2, items, [])
    with pytest.raises(ValidationError) as caught:
        fund.set_policy(_policy(date(2025, 6, 1), 0))
    assert caught.value.field == "effectiveFrom"
    assert "2025-06-02" in caught.value.message
    fund.set_policy(_policy(date(2025, 6, 2), 0))  # the future stays open


def test_reversals_reduce_the_base_and_vat_accounts_are_not_income() -> None:
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(date(2025, 1, 1), 100_000))
    sale = IncomeSource(
        1,
        "sale",
        date(2025, 2, 1),
        [
            Posting("1000", Side.DEBIT, 1_100),
            Posting("4000", Side.CREDIT, 1_000),
            Posting("2010", Side.CREDIT, 100),
        ],
    )
    reversal = IncomeSource(
        2,
        "reversal",
        date(2025, 2, 2),
        [
            Posting("1000", Side.CREDIT, 1_100),
            Posting("4000", Side.DEBIT, 1_000),
            Posting("2010", Side.DEBIT, 100),
        ],
    )
    items = fund.plan_accruals([sale, reversal])
    assert [(i["base"], i["accrued"]) for i in items] == [(1_000, 100), (-1_000, -100)]


def test_a_reversal_is_governed_by_the_policy_of_the_entry_it_reverses() -> None:
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(date(2025, 1, 1), 80_000))
    fund.set_policy(_policy(date(2025, 6, 1), 90_000))
    posted = _sale(1, date(2025, 5, 30), 100_001)
    mirrored = [
        Posting(p.account_code, Side.CREDIT if p.side is Side.DEBIT else Side.DEBIT, p.amount_cents)
        for p in posted.postings
    ]
    reversal = IncomeSource(2, "reversal", date(2025, 6, 2), mirrored, date(2025, 5, 30))
    items = fund.plan_accruals([posted, reversal])
    assert [(i["period"], i["date"], i["accrued"]) for i in items] == [
        ("2025-01-01", "2025-05-30", 8_000),
        ("2025-01-01", "2025-06-02", -8_000),  # dated its own day, at May's rate
    ]
    # A refund or any other entry dated in June is June's.
    refund = IncomeSource(2, "refund", date(2025, 6, 2), mirrored)
    assert [i["accrued"] for i in fund.plan_accruals([posted, refund])] == [8_000, -9_001]


def test_programs_come_from_configuration() -> None:
    catalog = ProgramCatalog.from_config(
        {"INTERNSHIP": "STIPEND", "HOUSING": "HOUSING", "TRAINING": "ALLOWANCE"}
    )
    assert catalog.programs == ("INTERNSHIP", "HOUSING", "TRAINING")
    assert catalog.check("TRAINING") == "TRAINING"
    assert catalog.support_of("TRAINING") is Support.ALLOWANCE
    # Equal default shares that still add up to exactly 100%.
    shares = catalog.default_shares_ppm()
    assert [ppm for _p, ppm in shares] == [333_333, 333_333, 333_334]
    with pytest.raises(ValidationError) as unknown:
        catalog.check("CHILDCARE", field="programShares[2].program")
    assert unknown.value.field == "programShares[2].program"
    assert "INTERNSHIP, HOUSING, TRAINING" in unknown.value.message
    for bad in ["training", "T", "1ST", "A-B", "X" * 33]:
        with pytest.raises(ValidationError):
            Program(bad)
    with pytest.raises(ValueError, match="STIPEND"):
        ProgramCatalog.from_config({"TRAINING": "SCHOLARSHIP"})
    with pytest.raises(ValueError, match="capital letters"):
        ProgramCatalog.from_config({"training": "ALLOWANCE"})


def test_a_disbursement_kind_must_be_one_its_program_pays() -> None:
    training = Program("TRAINING")
    common = {
        "disbursement_id": uuid4(),
        "beneficiary_id": uuid4(),
        "program": training,
        "support": Support.ALLOWANCE,
        "month": "2025-03",
        "amount_cents": 12_000,
        "committed_on": date(2025, 3, 1),
    }
    with pytest.raises(ValidationError) as wrong:
        Disbursement.commit(kind=DisbursementKind.RENT, **common)  # type: ignore[arg-type]
    assert wrong.value.field == "kind"
    allowance = Disbursement.commit(kind=DisbursementKind.ALLOWANCE, **common)  # type: ignore[arg-type]
    assert (allowance.program, allowance.amount_cents) == ("TRAINING", 12_000)
    beneficiary = Beneficiary.enroll(uuid4(), training, date(2025, 1, 1), None)
    with pytest.raises(ValidationError, match="stipends"):
        beneficiary.record_attendance(
            month="2025-03",
            scheduled_days=20,
            attended_days=20,
            meals_provided=False,
            part_time=False,
            rules=StipendRules(effective_from=date(2025, 1, 1)),
            support=Support.ALLOWANCE,
            today=date(2025, 4, 10),
        )


def test_attendance_and_commitments_stay_within_the_enrolment_and_the_past() -> None:
    """Attendance for a month that has not begun, or before the enrolment, and money
    for a month or a day before it, are refused: a commitment dated before the
    enrolment made the program's balance as of then negative."""
    beneficiary = Beneficiary.enroll(uuid4(), Program("INTERNSHIP"), date(2025, 6, 1), None)
    attendance = {
        "scheduled_days": 20,
        "attended_days": 20,
        "meals_provided": False,
        "part_time": False,
        "rules": StipendRules(effective_from=date(2025, 1, 1)),
        "support": Support.STIPEND,
        "today": date(2025, 7, 10),
    }
    for month, reason in (("2025-08", "has not begun"), ("2025-05", "before the beneficiary")):
        with pytest.raises(ValidationError, match=reason) as refused:
            beneficiary.record_attendance(month=month, **attendance)  # type: ignore[arg-type]
        assert refused.value.field == "month"
    assert beneficiary.record_attendance(month="2025-07", **attendance) > 0  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as early_month:
        beneficiary.check_within_enrolment("2025-05", on=date(2025, 6, 2))
    assert early_month.value.field == "month"
    with pytest.raises(ValidationError) as early_day:
        beneficiary.check_within_enrolment("2025-06", on=date(2025, 5, 31))
    assert early_day.value.field == "effectiveDate"
    beneficiary.check_within_enrolment("2025-06", on=date(2025, 6, 1))


def test_a_payment_is_reversed_once_and_never_after_a_cancellation() -> None:
    disbursement = _committed_rent(cents=30_000, month="2025-03", committed_on=date(2025, 3, 1))
    disbursement.approve(approved_on=date(2025, 3, 2), approver="officer")
    first_entry, second_entry = uuid4(), uuid4()
    disbursement.pay(amount_cents=10_000, paid_on=date(2025, 3, 3), entry_id=first_entry)
    disbursement.pay(amount_cents=20_000, paid_on=date(2025, 3, 5), entry_id=second_entry)
    assert disbursement.status is DisbursementStatus.PAID
    # The second payment's own date bounds its reversal, not the first's.
    with pytest.raises(ValidationError):
        disbursement.payment_to_reverse(2, reversed_on=date(2025, 3, 4))
    assert disbursement.payment_to_reverse(2, reversed_on=date(2025, 3, 5)) == (
        20_000,
        second_entry,
    )
    disbursement.reverse_payment(
        payment=2, reversed_on=date(2025, 3, 6), reversal_entry_id=uuid4(), reason=WRONG
    )
    assert (disbursement.status, disbursement.paid_cents) == (DisbursementStatus.APPROVED, 10_000)
    with pytest.raises(Conflict):
        disbursement.reverse_payment(
            payment=2, reversed_on=date(2025, 3, 6), reversal_entry_id=uuid4(), reason=WRONG
        )
    disbursement.cancel(cancelled_on=date(2025, 3, 7))
    with pytest.raises(Conflict):
        disbursement.payment_to_reverse(1, reversed_on=date(2025, 3, 8))


def test_a_commitment_is_covered_on_its_own_date_and_every_day_after() -> None:
    fund = WelfareFund.start(RULES)
    # 100% of hotel income to the fund, a third to internships, two thirds to housing.
    fund.set_policy(_policy(date(2025, 1, 1), 1_000_000))
    fund.record_accruals(1, fund.plan_accruals([_sale(1, date(2025, 2, 20), 75_000)]), [])
    housing = Program.HOUSING
    assert fund.available_cents(housing) == 50_000  # two thirds of 750.00, from 20 February

    def commit(cents: int, day: date) -> None:
        fund.reserve(uuid4(), housing, cents, on=day)

    # In January there was nothing yet: the money that came later does not cover it.
    with pytest.raises(InsufficientFunds) as caught:
        commit(40_000, date(2025, 1, 10))
    assert caught.value.available_cents == 0
    commit(40_001, date(2025, 3, 1))  # 99.99 left from March on
    # A February commitment would leave March short, though February itself had 500.00.
    with pytest.raises(InsufficientFunds) as caught:
        commit(20_000, date(2025, 2, 25))
    assert caught.value.available_cents == 9_999
    # Released in April: from April on there is room again, before it there is not.
    fund.release(uuid4(), housing, 40_001, on=date(2025, 4, 1))
    with pytest.raises(InsufficientFunds):
        commit(20_000, date(2025, 2, 25))
    commit(45_000, date(2025, 4, 1))
    assert fund.available_cents(housing) == 5_000


@pytest.mark.parametrize(
    ("accounts", "index"),
    [
        # The review's policy: 4210 and 4410 mapped to DONATION.
        ((("40", Stream.HOTEL), ("4210", Stream.DONATION), ("4410", Stream.DONATION)), 1),
        # A prefix that covers a restricted account and wins for it.
        ((("40", Stream.HOTEL), ("42", Stream.GRANT_UNRESTRICTED)), 1),
        ((("4", Stream.SHOP),), 0),
        # A sub-account of a restricted account.
        ((*DEFAULT_ACCOUNT_STREAMS, ("44105", Stream.DONATION)), 7),
    ],
)
def test_restricted_income_accounts_stay_on_restricted_streams(
    accounts: tuple[tuple[str, Stream], ...], index: int
) -> None:
    with pytest.raises(ValidationError) as refused:
        check_policy([(Stream.DONATION, 100_000)], PROPORTIONS, accounts, DEFAULT_PROGRAMS)
    assert refused.value.field == f"accountStreams[{index}].stream"
    assert "restricted" in refused.value.message


def test_a_wider_prefix_is_fine_where_a_longer_one_keeps_restricted_income_apart() -> None:
    for accounts in (
        DEFAULT_ACCOUNT_STREAMS,
        (
            ("4", Stream.SHOP),
            ("4210", Stream.GRANT_RESTRICTED),
            ("4410", Stream.DONATION_RESTRICTED),
        ),
        # Either restricted stream: both are always at 0%.
        (("42", Stream.GRANT_UNRESTRICTED), ("4210", Stream.DONATION_RESTRICTED)),
        (("4000", Stream.HOTEL),),  # restricted accounts unmapped: no base, no share
    ):
        check_policy([(Stream.DONATION, 100_000)], PROPORTIONS, accounts, DEFAULT_PROGRAMS)


WRONG = PaymentReversalReason.WRONG_AMOUNT


def _committed_rent(
    actor: str | None = None,
    *,
    cents: int = 70_000,
    month: str = "2025-08",
    committed_on: date = date(2025, 8, 2),
) -> Disbursement:
    return Disbursement.commit(
        disbursement_id=uuid4(),
        beneficiary_id=uuid4(),
        program=Program("HOUSING"),
        support=Support.HOUSING,
        kind=DisbursementKind.RENT,
        month=month,
        amount_cents=cents,
        committed_on=committed_on,
        actor=actor,
    )


def _approved_rent(cents: int = 70_000) -> Disbursement:
    disbursement = _committed_rent(cents=cents)
    disbursement.approve(approved_on=date(2025, 8, 10), approver="officer")
    return disbursement


def test_a_payment_reversal_is_a_step_neither_a_cancellation_nor_a_payment_precedes() -> None:
    """Review findings 2 and 3: paid 08-20, reversed 09-01. A cancellation dated
    08-30 showed "committed" -700.00 until 09-01; a payment dated 08-25 counted the
    disbursement as paid twice until then."""
    disbursement = _approved_rent()
    disbursement.pay(amount_cents=70_000, paid_on=date(2025, 8, 20), entry_id=uuid4())
    disbursement.reverse_payment(
        payment=1, reversed_on=date(2025, 9, 1), reversal_entry_id=uuid4(), reason=WRONG
    )
    assert disbursement.last_reversed_on == date(2025, 9, 1)
    with pytest.raises(ValidationError, match="2025-09-01") as early_cancel:
        disbursement.cancel(cancelled_on=date(2025, 8, 30))
    assert early_cancel.value.field == "effectiveDate"
    with pytest.raises(ValidationError, match="2025-09-01") as early_payment:
        disbursement.pay(amount_cents=70_000, paid_on=date(2025, 8, 25), entry_id=uuid4())
    assert early_payment.value.field == "paidOn"
    assert disbursement.paid_cents == 0
    # On the reversal's day or after, both are fine.
    disbursement.pay(amount_cents=30_000, paid_on=date(2025, 9, 1), entry_id=uuid4())
    assert disbursement.cancel(cancelled_on=date(2025, 9, 1)) == 40_000


def test_a_cancellation_does_not_precede_any_payment() -> None:
    disbursement = _approved_rent()
    disbursement.pay(amount_cents=10_000, paid_on=date(2025, 8, 20), entry_id=uuid4())
    disbursement.pay(amount_cents=10_000, paid_on=date(2025, 8, 15), entry_id=uuid4())
    with pytest.raises(ValidationError, match="2025-08-20"):
        disbursement.cancel(cancelled_on=date(2025, 8, 18))


def test_a_disbursement_is_not_paid_by_whoever_approved_it() -> None:
    """Four eyes: the officer who approved (actor "officer") does not also pay; anyone
    else does. A payment whose actor is not known is not compared."""
    disbursement = _approved_rent()
    assert disbursement.approved_by == "officer"
    with pytest.raises(PaymentByApprover):
        disbursement.pay(
            amount_cents=10_000, paid_on=date(2025, 8, 20), entry_id=uuid4(), actor="officer"
        )
    assert disbursement.paid_cents == 0
    assert not any(isinstance(e, Disbursement.Paid) for e in disbursement.pending_events)
    disbursement.pay(
        amount_cents=10_000, paid_on=date(2025, 8, 20), entry_id=uuid4(), actor="treasurer"
    )
    disbursement.pay(amount_cents=10_000, paid_on=date(2025, 8, 21), entry_id=uuid4())
    assert disbursement.paid_cents == 20_000


def test_a_disbursement_is_not_approved_by_whoever_committed_it() -> None:
    """Maker and checker: the officer who committed does not also approve, so two
    people agree to every spending; a commitment whose actor is not known (recorded
    before commitments named theirs) is not compared."""
    disbursement = _committed_rent("person:anna")
    with pytest.raises(ApprovalByCommitter):
        disbursement.approve(approved_on=date(2025, 8, 10), approver="person:anna")
    assert disbursement.status is DisbursementStatus.COMMITTED
    assert not any(isinstance(e, Disbursement.Approved) for e in disbursement.pending_events)
    disbursement.approve(approved_on=date(2025, 8, 10), approver="person:bruno")
    assert disbursement.approved_by == "person:bruno"
    unknown = _committed_rent(None)
    unknown.approve(approved_on=date(2025, 8, 10), approver="person:anna")
    assert unknown.status is DisbursementStatus.APPROVED


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        ("person:anna", True),
        ("device:office-pc#3", False),
        ("device:person:anna", False),  # a key named like a person is still a key
        ("cli:audit", False),
        ("anonymous", False),
    ],
)
def test_only_a_person_decides_on_the_funds_money(actor: str, allowed: bool) -> None:
    if allowed:
        check_decided_by_person(actor, "payDisbursement")
        return
    with pytest.raises(PersonRequired, match="payDisbursement refused") as refused:
        check_decided_by_person(actor, "payDisbursement")
    assert actor not in refused.value.message  # who tried is the log's, not the reply's


def test_history_paid_by_its_approver_before_the_rule_still_loads() -> None:
    """Events recorded before the four-eyes rule may show one actor approving and
    paying: replaying them is not refused (the rule decides new payments only)."""
    disbursement = _approved_rent()
    # As the old code recorded it: no check, straight to the event.
    disbursement.trigger_event(
        Disbursement.Paid,
        program="HOUSING",
        amount_cents=70_000,
        paid_on=date(2025, 8, 20),
        entry_id=uuid4(),
        actor="officer",
    )
    replayed: Disbursement | None = None
    for event in disbursement.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert (replayed.status, replayed.paid_cents, replayed.approved_by) == (
        DisbursementStatus.PAID,
        70_000,
        "officer",
    )


@pytest.mark.parametrize(
    ("amounts", "field"),
    [
        ({"floor_cents": 60_000}, "floorAmount"),  # above full (the review's 600 > 500)
        ({"floor_cents": 36_000}, "floorAmount"),  # above part time (350)
        ({"floor_cents": 45_000, "part_time_cents": 50_000}, "floorAmount"),  # above meals
        ({"with_meals_cents": 50_001}, "withMealsAmount"),
        ({"part_time_cents": 60_000}, "partTimeAmount"),
    ],
)
def test_stipend_amounts_that_contradict_each_other_are_refused(
    amounts: dict[str, int], field: str
) -> None:
    rules = StipendRules(effective_from=date(2026, 6, 1), **amounts)
    with pytest.raises(ValidationError) as refused:
        rules.check_amounts()
    assert refused.value.field == field


def test_stipend_amounts_may_be_equal() -> None:
    RULES.check_amounts()
    StipendRules(
        effective_from=date(2026, 6, 1),
        full_cents=40_000,
        with_meals_cents=40_000,
        part_time_cents=30_000,
        floor_cents=30_000,
    ).check_amounts()


def test_a_version_for_a_day_that_has_one_is_refused_not_replaced() -> None:
    fund = WelfareFund.start(RULES)
    fund.set_policy(_policy(date(2027, 1, 1), 100_000))
    with pytest.raises(VersionExists, match="2027-01-01") as policy:
        fund.set_policy(_policy(date(2027, 1, 1), 10_000))
    assert policy.value.effective_from == "2027-01-01"
    assert [v.rate_ppm(Stream.HOTEL) for v in fund.policy_versions()] == [100_000]
    fund.set_stipend_rules(StipendRules(effective_from=date(2026, 6, 1)))
    with pytest.raises(VersionExists, match="2026-06-01"):
        fund.set_stipend_rules(StipendRules(effective_from=date(2026, 6, 1), full_cents=10_000))
    # The defaults the fund started with are the version from their day.
    with pytest.raises(VersionExists, match="2000-01-01"):
        fund.set_stipend_rules(StipendRules(effective_from=date(2000, 1, 1)))
    assert fund.stipend_rules_on(date(2026, 7, 1)).full_cents == 50_000


def test_nothing_is_dated_before_the_books_opened() -> None:
    opened = date(2000, 1, 15)
    with pytest.raises(ValidationError, match="books opened") as enrolled:
        check_books_open(date(1900, 1, 1), opened, field="enrolledOn")
    assert enrolled.value.field == "enrolledOn"
    with pytest.raises(ValidationError):
        check_books_open(date(2000, 1, 14), opened, field="enrolledOn")
    check_books_open(opened, opened, field="enrolledOn")
    # A month the books opened in is in the books; the month before is not.
    check_books_open(date(2000, 1, 1), opened, field="month", whole_month=True)
    with pytest.raises(ValidationError) as month:
        check_books_open(date(1999, 12, 1), opened, field="month", whole_month=True)
    assert month.value.field == "month"


@pytest.mark.parametrize(
    ("attended", "scheduled", "shown"),
    [(19, 21, "90.47"), (20, 21, "95.23"), (4, 5, "80"), (0, 20, "0"), (21, 21, "100")],
)
def test_attendance_is_shown_cut_to_two_decimals_never_rounded_up(
    attended: int, scheduled: int, shown: str
) -> None:
    # Rounded, 79.996% would show "80" beside an 80% threshold it did not reach.
    row = AttendanceRow("2025-03", scheduled, attended, False, False, 0)
    assert Attendance.from_row(row).attendance_percent == shown


@pytest.mark.parametrize(
    ("enrolled_on", "months", "last_day"),
    [
        (date(2025, 1, 1), 12, date(2025, 12, 31)),
        (date(2025, 1, 20), 12, date(2026, 1, 19)),
        (date(2025, 1, 31), 1, date(2025, 2, 27)),  # no 31 February: to its last day, less one
        (date(2024, 2, 29), 12, date(2025, 2, 27)),
        (date(2025, 6, 15), 36, date(2028, 6, 14)),
    ],
)
def test_an_internship_s_last_day_is_its_months_from_the_enrolment_day(
    enrolled_on: date, months: int, last_day: date
) -> None:
    from services.welfare_fund.domain.policy import StipendRules

    rules = StipendRules(effective_from=date(2000, 1, 1), max_months=months)
    assert rules.last_day(enrolled_on) == last_day
    rules.check_within_duration(last_day.replace(day=1), enrolled_on)  # its last month
    after = date(last_day.year + last_day.month // 12, last_day.month % 12 + 1, 1)
    with pytest.raises(ValidationError):
        rules.check_within_duration(after, enrolled_on)

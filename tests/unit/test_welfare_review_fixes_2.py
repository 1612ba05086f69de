"""The welfare fund review's second round, in the domain: the split of an amount over
programs (largest remainder, a 0% program gets nothing, no part against the amount's
sign), the ledger's limits on what people type that an accrual is not held to, empty
lists in a policy, and the days of the month a schedule may have."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.common.errors import ValidationError
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import (
    DEFAULT_ACCOUNTS,
    AccountType,
    Cause,
    ChartOfAccounts,
    JournalEntry,
    LedgerLimits,
    Posting,
    Side,
    UnbalancedEntry,
)
from services.ledger.domain.journal import ACCRUAL_CAUSE_PREFIX
from services.welfare_fund.application import ACCRUAL_ACTOR
from services.welfare_fund.domain import (
    DEFAULT_ACCOUNT_STREAMS,
    DEFAULT_PROGRAMS,
    Beneficiary,
    Program,
    StipendRules,
    Stream,
    Support,
    allocate,
)
from services.welfare_fund.domain.policy import PPM_PER_UNIT, allocate_total, check_policy

INTERNSHIP, HOUSING, TRAINING = Program.INTERNSHIP, Program.HOUSING, Program("TRAINING")

# -- the split over programs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "proportions", "parts"),
    [
        # The review's case: a 1-cent reduction at 40/40/20 gave the last program +1
        # (-1, -1, +1). The cent now comes from one program; of equal remainders the
        # later listed.
        (-1, ((INTERNSHIP, 400_000), (HOUSING, 400_000), (TRAINING, 200_000)), (0, -1, 0)),
        # A 0% program listed last took the odd cent.
        (1, ((INTERNSHIP, 500_000), (HOUSING, 500_000), (TRAINING, 0)), (0, 1, 0)),
        (101, ((INTERNSHIP, 500_000), (HOUSING, 500_000), (TRAINING, 0)), (50, 51, 0)),
        # 0% listed first or between: nothing either.
        (7, ((TRAINING, 0), (INTERNSHIP, 250_000), (HOUSING, 750_000)), (0, 2, 5)),
        # The largest remainder, not the last program: 24,999.975 and 50,000.025.
        (75_000, ((INTERNSHIP, 333_333), (HOUSING, 666_667)), (25_000, 50_000)),
        (-75_000, ((INTERNSHIP, 333_333), (HOUSING, 666_667)), (-25_000, -50_000)),
        # 50/50: the odd cent to the second program, as before.
        (3, ((INTERNSHIP, 500_000), (HOUSING, 500_000)), (1, 2)),
        (0, ((INTERNSHIP, 400_000), (HOUSING, 400_000), (TRAINING, 200_000)), (0, 0, 0)),
        (1_000_000_000_000_001, ((INTERNSHIP, 1_000_000),), (1_000_000_000_000_001,)),
    ],
)
def test_an_amount_is_split_by_largest_remainder_among_programs_with_a_share(
    amount: int, proportions: tuple[tuple[Program, int], ...], parts: tuple[int, ...]
) -> None:
    split = allocate_total(amount, proportions)
    assert tuple(split[program] for program, _ppm in proportions) == parts


@st.composite
def _proportions(draw: st.DrawFn) -> list[tuple[Program, int]]:
    """1 to 6 programs, some at 0%, adding up to 100%."""
    cuts = sorted(draw(st.lists(st.integers(0, PPM_PER_UNIT), max_size=4)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, PPM_PER_UNIT], strict=True)]
    for _ in range(draw(st.integers(0, 2))):  # programs at 0%, anywhere in the list
        shares.insert(draw(st.integers(0, len(shares))), 0)
    return [(Program(f"P{index}"), ppm) for index, ppm in enumerate(shares)]


@given(
    amount=st.integers(min_value=-(10**13), max_value=10**13),
    proportions=_proportions(),
)
@hypothesis_settings(max_examples=500, deadline=None)
def test_any_split_is_exact_within_a_cent_of_each_share_and_never_against_the_sign(
    amount: int, proportions: list[tuple[Program, int]]
) -> None:
    split = allocate_total(amount, proportions)
    assert sum(split.values()) == amount
    size = abs(amount)
    extra: list[tuple[int, int]] = []  # (remainder, position) of who got a cent more
    short: list[tuple[int, int]] = []
    for index, (program, ppm) in enumerate(proportions):
        part = split[program]
        assert part * amount >= 0  # never against the amount's sign
        if ppm == 0:
            assert part == 0
            continue
        floor_cents, remainder = divmod(size * ppm, PPM_PER_UNIT)
        assert abs(part) in (floor_cents, floor_cents + 1)  # within a cent of its share
        (extra if abs(part) > floor_cents else short).append((remainder, index))
    # Largest remainder: each program given a cent more has a larger remainder than
    # each one not, or an equal one and is listed later.
    if extra and short:
        assert min(extra) > max(short)
    # The same split whatever the sign: a reduction takes what the increase gave.
    assert allocate_total(-amount, proportions) == {p: -cents for p, cents in split.items()}


@given(
    steps=st.lists(st.integers(min_value=-3_000, max_value=3_000), min_size=1, max_size=200),
    proportions=_proportions(),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_a_program_at_zero_percent_never_receives_a_cent_over_any_accruals(
    steps: list[int], proportions: list[tuple[Program, int]]
) -> None:
    total = 0
    received = {program: 0 for program, _ppm in proportions}
    for cents in steps:
        parts = allocate(total, cents, proportions)
        assert sum(parts.values()) == cents
        total += cents
        for program, part in parts.items():
            received[program] += part
    assert received == allocate_total(total, proportions)
    assert all(received[program] == 0 for program, ppm in proportions if ppm == 0)


# -- an accrual is not held to the limits on what people type -----------------------

LIMITS = LedgerLimits(
    amount_ceiling_cents=100_000_00,
    max_description_length=10,
    max_entry_lines=4,
    max_account_code_length=16,
)
ACCRUAL = Cause(f"{ACCRUAL_CAUSE_PREFIX}41:2025-03-01", ACCRUAL_ACTOR)
ACCRUAL_DESCRIPTION = (
    "Welfare fund accrual on 3 income entries effective 2025-03-01 (ledger positions 39-41)"
)


@pytest.fixture
def chart() -> ChartOfAccounts:
    chart = ChartOfAccounts.start()
    for code, name, kind in DEFAULT_ACCOUNTS:
        chart.open_account(code, name, kind, max_code_length=16)
    return chart


def _share(cents: int, credit_cents: int | None = None) -> list[Posting]:
    return [
        Posting("5000", Side.DEBIT, cents),
        Posting("2400", Side.CREDIT, cents if credit_cents is None else credit_cents),
    ]


def test_an_accrual_above_the_ceiling_with_a_long_description_is_posted(
    chart: ChartOfAccounts,
) -> None:
    """The fund's share of a day whose income lines were each under the ceiling: their
    sum, and so the share, need not be. The description is the fund's own."""
    entry = JournalEntry.post(
        chart=chart,
        effective_date=date(2025, 3, 1),
        description=ACCRUAL_DESCRIPTION,
        postings=_share(120_000_00),
        cause=ACCRUAL,
        limits=LIMITS,
    )
    assert entry.total_cents == 120_000_00
    assert entry.description == ACCRUAL_DESCRIPTION


@pytest.mark.parametrize(
    ("description", "postings", "field"),
    [
        ("Typed", _share(100_000_01), "postings[0].amount"),
        ("A sentence too long", _share(100), "description"),
    ],
)
def test_the_same_entry_typed_by_a_person_is_refused(
    chart: ChartOfAccounts, description: str, postings: list[Posting], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        JournalEntry.post(
            chart=chart,
            effective_date=date(2025, 3, 1),
            description=description,
            postings=postings,
            cause=Cause("manual:typed", "person:admin"),
            limits=LIMITS,
        )
    assert refused.value.field == field


def test_an_accrual_is_still_balanced_positive_and_described(chart: ChartOfAccounts) -> None:
    for description, postings, error in (
        (ACCRUAL_DESCRIPTION, _share(120_000_00, 119_999_99), UnbalancedEntry),
        (ACCRUAL_DESCRIPTION, _share(0), ValidationError),
        ("  ", _share(100), ValidationError),
    ):
        with pytest.raises(error):
            JournalEntry.post(
                chart=chart,
                effective_date=date(2025, 3, 1),
                description=description,
                postings=postings,
                cause=ACCRUAL,
                limits=LIMITS,
            )


@pytest.fixture
def limited_ledger(settings: Settings) -> Iterator[LedgerApplication]:
    app = LedgerApplication(
        settings.model_copy(
            update={"amount_ceiling_cents": 100_000_00, "max_description_length": 10}
        )
    )
    app.ensure_chart()
    yield app
    app.close()


def test_an_accrual_above_the_ceiling_is_saved_after_the_chart_changed(
    limited_ledger: LedgerApplication,
) -> None:
    """Prepared on the chart as last seen; an account opened before its save makes the
    save check the entry again on the new chart: the ceiling, which no chart changes,
    is not checked again (the accrual would be refused there)."""
    ledger = limited_ledger
    accrual = ledger.prepare_entry(
        effective_date=date(2025, 3, 1),
        description=ACCRUAL_DESCRIPTION,
        postings=_share(120_000_00),
        cause=ACCRUAL,
    )
    ledger.open_account(
        key="open",
        actor="admin",
        code="4900",
        name="Other income",
        account_type=AccountType.REVENUE,
    )
    ledger.save(accrual)
    assert ledger.get_entry(accrual.id).total_cents == 120_000_00


# -- empty lists in a policy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("programs", "accounts", "field"),
    [
        ((), DEFAULT_ACCOUNT_STREAMS, "programShares"),
        (((INTERNSHIP, 500_000), (HOUSING, 500_000)), (), "accountStreams"),
    ],
)
def test_an_empty_list_in_a_policy_is_refused_on_its_field(
    programs: tuple[tuple[Program, int], ...],
    accounts: tuple[tuple[str, Stream], ...],
    field: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        check_policy([(Stream.HOTEL, 100_000)], programs, accounts, DEFAULT_PROGRAMS)
    assert refused.value.field == field


# -- the days of the month -----------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "days"),
    [("2025-02", 28), ("2024-02", 29), ("2025-04", 30), ("2025-01", 31), ("2100-02", 28)],
)
def test_scheduled_days_are_at_most_the_days_in_the_month(month: str, days: int) -> None:
    intern = Beneficiary.enroll(uuid4(), INTERNSHIP, date.fromisoformat(f"{month}-01"), None)
    attendance = {
        "month": month,
        "attended_days": 1,
        "meals_provided": False,
        "part_time": False,
        "rules": StipendRules(effective_from=date(2000, 1, 1)),
        "support": Support.STIPEND,
        "today": date(2100, 12, 31),
    }
    with pytest.raises(ValidationError) as refused:
        intern.record_attendance(scheduled_days=days + 1, **attendance)  # type: ignore[arg-type]
    assert refused.value.field == "scheduledDays"
    assert f"1 to {days}" in refused.value.message
    assert intern.record_attendance(scheduled_days=days, **attendance) > 0  # type: ignore[arg-type]

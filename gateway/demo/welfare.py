"""Demo year of the welfare fund: a policy from 1 January and a new one from 1 June,
two interns and two women in semi-autonomy housing, monthly stipends from recorded
attendance, rent and utilities, each committed, approved by the territorial
enterprise's fund officer and paid. The fund's accrual follows the ledger: before a
commitment the demo lets the accrual process catch up, as the projector would."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from gateway.demo.steps import DemoStep
from services.common.errors import CoopError
from services.common.settings import ConfigurationError
from services.welfare_fund.domain import (
    DEFAULT_PROGRAMS,
    DisbursementKind,
    Program,
    ProgramCatalog,
    Stream,
)

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# Three people, as the fund's controls want: the officer enrols and commits, another
# officer approves (not whoever committed), the cooperative's treasurer pays (not
# whoever approved). Devices decide nothing on the fund's money.
OFFICER = "person:demo-fund-officer"
APPROVER = "person:demo-fund-approver"
TREASURER = "person:demo-treasurer"

JANUARY_SHARES_PPM = {
    Stream.HOTEL: 80_000,  # 8%
    Stream.SHOP: 100_000,  # 10%
    Stream.DONATION: 25_000,  # 2.5%
    Stream.GRANT_UNRESTRICTED: 0,
    Stream.CONTRACT: 20_000,  # 2%
}
JUNE_SHARES_PPM = {
    Stream.HOTEL: 90_000,  # 9%
    Stream.SHOP: 125_000,  # 12.5%
    Stream.DONATION: 25_000,
    Stream.GRANT_UNRESTRICTED: 0,
    Stream.CONTRACT: 15_000,  # 1.5%
}
JANUARY_PROGRAMS_PPM = ((Program.INTERNSHIP, 600_000), (Program.HOUSING, 400_000))
JUNE_PROGRAMS_PPM = ((Program.INTERNSHIP, 500_000), (Program.HOUSING, 500_000))
RENT_CENTS = 40_000
UTILITIES_CENTS = 9_000


def check_programs(catalog: ProgramCatalog) -> None:
    """The demo year enrols interns and housing beneficiaries: it needs both programs,
    paying what they pay by default (other configured programs just get no share)."""
    for program, support in DEFAULT_PROGRAMS.supports:
        if program not in catalog.programs or catalog.support_of(program) is not support:
            raise ConfigurationError(
                f"the demo needs the {program} program paying {support.value} in "
                "COOP_WELFARE_PROGRAMS"
            )


def _catch_up(runtime: Runtime) -> None:
    """Accrue the income so far (the runner drives the accrual process)."""
    runtime.projector.run_until_caught_up()


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    refs: dict[str, object] = {}

    def policy(
        key: str,
        effective: date,
        shares: dict[Stream, int],
        programs: tuple[tuple[Program, int], ...],
    ) -> DemoStep:
        def run(runtime: Runtime) -> bool:
            _catch_up(runtime)
            outcome = runtime.welfare.set_policy(
                key=key,
                actor=OFFICER,
                effective_from=effective,
                shares=list(shares.items()),
                program_shares=programs,
            )
            return not outcome.replayed

        return DemoStep(effective - timedelta(days=1), run)

    yield policy(
        f"demo:{year}:welfare:policy:jan",
        date(year, 1, 1),
        JANUARY_SHARES_PPM,
        JANUARY_PROGRAMS_PPM,
    )
    yield policy(
        f"demo:{year}:welfare:policy:jun", date(year, 6, 1), JUNE_SHARES_PPM, JUNE_PROGRAMS_PPM
    )

    people = [("intern-a", Program.INTERNSHIP, 2), ("intern-b", Program.INTERNSHIP, 6),
              ("housing-a", Program.HOUSING, 2), ("housing-b", Program.HOUSING, 7)]  # fmt: skip
    for name, program, month in people:

        def enroll(
            runtime: Runtime, name: str = name, program: Program = program, month: int = month
        ) -> bool:
            outcome = runtime.welfare.enroll(
                key=f"demo:{year}:welfare:enroll:{name}",
                actor=OFFICER,
                program=program,
                enrolled_on=date(year, month, 1),
                case_note=None,
            )
            refs[name] = outcome.result.id
            return not outcome.replayed

        yield DemoStep(date(year, month, 1), enroll)

    for name, program, first_month in people:
        for month in range(first_month + 1, 13):
            period = f"{year}-{month - 1:02d}"
            scheduled = rng.randint(18, 22)
            attended = max(scheduled - rng.choice((0, 0, 1, 2, 5, 9)), 0)
            kinds = [DisbursementKind.STIPEND]
            if program == Program.HOUSING:
                kinds = [DisbursementKind.RENT]
                if month % 3 == 0:
                    kinds.append(DisbursementKind.UTILITIES)
            for kind in kinds:
                yield DemoStep(
                    date(year, month, 3),
                    _disbursement_step(year, refs, name, period, kind, scheduled, attended, month),
                )


def _disbursement_step(
    year: int,
    refs: dict[str, object],
    name: str,
    period: str,
    kind: DisbursementKind,
    scheduled: int,
    attended: int,
    month: int,
) -> Callable[[Runtime], bool]:
    def run(runtime: Runtime) -> bool:
        ref = refs.get(name)
        if not isinstance(ref, UUID):
            return False
        key = f"demo:{year}:welfare:{name}:{period}:{kind.value.lower()}"
        app = runtime.welfare
        _catch_up(runtime)
        try:
            if kind is DisbursementKind.STIPEND:
                app.record_attendance(
                    key=f"{key}:attendance",
                    actor=OFFICER,
                    beneficiary_id=ref,
                    month=period,
                    scheduled_days=scheduled,
                    attended_days=attended,
                    meals_provided=name == "intern-b",
                    part_time=False,
                )
            amount = None
            if kind is DisbursementKind.RENT:
                amount = RENT_CENTS
            elif kind is DisbursementKind.UTILITIES:
                amount = UTILITIES_CENTS
            committed = app.commit(
                key=f"{key}:commit",
                actor=OFFICER,
                beneficiary_id=ref,
                kind=kind,
                month=period,
                amount_cents=amount,
                committed_on=date(year, month, 3),
            )
            disbursement_id = committed.result.id
            app.approve(
                key=f"{key}:approve",
                actor=APPROVER,
                approver_is_fund_officer=True,
                disbursement_id=disbursement_id,
                approved_on=date(year, month, 5),
            )
            app.pay(
                key=f"{key}:pay",
                actor=TREASURER,
                disbursement_id=disbursement_id,
                amount_cents=committed.result.amount_cents,
                paid_on=date(year, month, 10),
            )
        except CoopError:
            return False  # e.g. not enough accrued yet: the fund officer waits a month
        return not committed.replayed

    return run

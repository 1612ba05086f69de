"""What a redistribution policy version leaves out (the program split, the account
mapping) stays as it was on its day: the version in force then, not the latest-dated
one; before the first version, the configured defaults. On both stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from gateway.runtime import Runtime
from services.welfare_fund.domain import DEFAULT_ACCOUNT_STREAMS, PolicyVersion, Program, Stream

JANUARY, APRIL, JULY = date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)
ROOMS_ONLY = (("4000", Stream.HOTEL), ("41", Stream.SHOP))


def _set(
    runtime: Runtime,
    day: date,
    program_shares: Sequence[tuple[Program, int]] | None = None,
    account_streams: Sequence[tuple[str, Stream]] | None = None,
) -> PolicyVersion:
    return runtime.welfare.set_policy(
        key=f"policy-{day.isoformat()}",
        actor="person:officer",
        effective_from=day,
        shares=[(Stream.HOTEL, 50_000)],
        program_shares=program_shares,
        account_streams=account_streams,
    ).result


def test_a_version_put_between_two_keeps_the_split_in_force_on_its_day(
    runtime: Runtime,
) -> None:
    _set(
        runtime,
        JANUARY,
        program_shares=[(Program.INTERNSHIP, 700_000), (Program.HOUSING, 300_000)],
        account_streams=ROOMS_ONLY,
    )
    _set(runtime, JULY, program_shares=[(Program.INTERNSHIP, 200_000), (Program.HOUSING, 800_000)])

    april = _set(runtime, APRIL)  # only the stream shares change in April

    assert dict(april.program_shares_ppm) == {Program.INTERNSHIP: 700_000, Program.HOUSING: 300_000}
    assert april.account_streams == ROOMS_ONLY
    assert runtime.welfare.fund().policy_versions()[1] == april


def test_a_version_before_the_first_takes_the_configured_defaults(runtime: Runtime) -> None:
    _set(
        runtime,
        JULY,
        program_shares=[(Program.INTERNSHIP, 200_000), (Program.HOUSING, 800_000)],
        account_streams=ROOMS_ONLY,
    )

    january = _set(runtime, JANUARY)

    assert january.program_shares_ppm == runtime.welfare.programs.default_shares_ppm()
    assert january.account_streams == DEFAULT_ACCOUNT_STREAMS

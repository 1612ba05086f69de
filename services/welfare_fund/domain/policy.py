"""Redistribution policy: streams, shares, programs, and the exact accrual arithmetic.

Pure Python. Rates are integers in millionths of the base ("ppm"): a percentage with
at most 4 decimals (e.g. "2.5", "12.3456") is exactly `percent * 10_000` ppm, so no
rate is ever rounded.

Accrual rule (no drift): within one stream and one policy period (the days governed
by one policy version) postings are taken in ledger recording order; after each one

    accrued so far = floor(rate_ppm * cumulative base / 1_000_000)

and the posting accrues the difference from what was accrued before it. Summed over
any prefix of the period, accrued = floor(rate * base of that prefix), to the cent,
however many postings there are; a reversal lowers the cumulative base and accrues a
negative difference. Allocation to programs is cumulative in the same way: the
cumulative accrued is split by largest remainder (`allocate_total`), and each
posting's parts are the differences, so they sum exactly to its accrual.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import ClassVar

from services.common.errors import ValidationError
from services.ledger.domain.accounts import REVENUE_CLASS

PPM_PER_UNIT = 1_000_000  # a rate of 100% in millionths
PPM_PER_PERCENT = 10_000
_PERCENT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,2})(\.[0-9]{1,4})?$")
_PROGRAM_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")


class Stream(StrEnum):
    HOTEL = "HOTEL"
    SHOP = "SHOP"
    DONATION = "DONATION"
    GRANT_UNRESTRICTED = "GRANT_UNRESTRICTED"
    CONTRACT = "CONTRACT"
    # Restricted income funds only its purpose: tracked, its share always 0.
    GRANT_RESTRICTED = "GRANT_RESTRICTED"
    DONATION_RESTRICTED = "DONATION_RESTRICTED"


RESTRICTED_STREAMS = frozenset({Stream.GRANT_RESTRICTED, Stream.DONATION_RESTRICTED})


class Program(str):
    """A welfare program's code. INTERNSHIP and HOUSING are the default programs; more
    are added by configuration (a ProgramCatalog), so this is a checked string, not an
    enumeration."""

    __slots__ = ()
    INTERNSHIP: ClassVar[Program]
    HOUSING: ClassVar[Program]

    def __new__(cls, code: str) -> Program:
        if not isinstance(code, str) or not _PROGRAM_PATTERN.fullmatch(code):
            raise ValidationError(
                "program",
                "a program code is 2 to 32 capital letters, digits or _, starting with a letter",
            )
        return super().__new__(cls, code)


Program.INTERNSHIP = Program("INTERNSHIP")
Program.HOUSING = Program("HOUSING")


class Support(StrEnum):
    """What a program pays out, and so which disbursement kinds it takes."""

    STIPEND = "STIPEND"  # internship stipends, from recorded attendance
    HOUSING = "HOUSING"  # rent, deposit and utilities
    ALLOWANCE = "ALLOWANCE"  # a stated amount per month (course fees, emergency support...)


@dataclass(frozen=True)
class ProgramCatalog:
    """The programs the fund runs, each with what it pays (configuration:
    COOP_WELFARE_PROGRAMS). Order matters only for listings and default shares."""

    supports: tuple[tuple[Program, Support], ...]

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> ProgramCatalog:
        if not config:
            raise ValueError("configure at least one welfare program")
        choices = [s.value for s in Support]
        for code, support in config.items():
            if not _PROGRAM_PATTERN.fullmatch(code):
                raise ValueError(
                    f"program code {code!r}: 2 to 32 capital letters, digits or _, "
                    "starting with a letter"
                )
            if support not in choices:
                raise ValueError(f"{code} pays {support!r}; choose one of {', '.join(choices)}")
        return cls(tuple((Program(code), Support(support)) for code, support in config.items()))

    @property
    def programs(self) -> tuple[Program, ...]:
        return tuple(program for program, _support in self.supports)

    def check(self, code: str, *, field: str = "program") -> Program:
        """The configured program with this code, or a ValidationError naming the choices."""
        for program, _support in self.supports:
            if program == code:
                return program
        raise ValidationError(
            field, f"not a configured program; choose one of {', '.join(self.programs)}"
        )

    def support_of(self, program: str) -> Support:
        for configured, support in self.supports:
            if configured == program:
                return support
        raise ValidationError("program", f"{program} is no longer a configured program")

    def default_shares_ppm(self) -> tuple[tuple[Program, int], ...]:
        """Equal parts; the last program takes the remainder so they add up to 100%."""
        count = len(self.supports)
        return tuple(
            (program, PPM_PER_UNIT // count + (PPM_PER_UNIT % count if i == count - 1 else 0))
            for i, program in enumerate(self.programs)
        )


DEFAULT_PROGRAMS = ProgramCatalog(
    ((Program.INTERNSHIP, Support.STIPEND), (Program.HOUSING, Support.HOUSING))
)


# Revenue accounts of the default chart (services/ledger/domain/accounts.py) by
# prefix; the longest matching prefix wins. A policy may carry its own mapping.
DEFAULT_ACCOUNT_STREAMS: tuple[tuple[str, Stream], ...] = (
    ("40", Stream.HOTEL),  # 4000 rooms, 4010 food, 4020 other, 4030 retained deposits
    ("41", Stream.SHOP),
    ("4200", Stream.GRANT_UNRESTRICTED),
    ("4210", Stream.GRANT_RESTRICTED),
    ("43", Stream.CONTRACT),
    ("4400", Stream.DONATION),
    ("4410", Stream.DONATION_RESTRICTED),
)


def parse_percent(text: str, *, field: str) -> int:
    """ "12.3456" -> 123456 ppm. 0 to 100, at most 4 decimals, decimal notation only."""
    if not isinstance(text, str) or not _PERCENT_PATTERN.fullmatch(text):
        raise ValidationError(
            field, 'percent must be a decimal string from 0 to 100 with at most 4 decimals, "2.5"'
        )
    whole, _, fraction = text.partition(".")
    ppm = int(whole) * PPM_PER_PERCENT + int((fraction or "0").ljust(4, "0"))
    if ppm > 100 * PPM_PER_PERCENT:
        raise ValidationError(field, "percent must be at most 100")
    return ppm


def format_percent(ppm: int) -> str:
    """123456 -> "12.3456"; 25000 -> "2.5"; 0 -> "0"."""
    whole, fraction = divmod(ppm, PPM_PER_PERCENT)
    text = f"{fraction:04d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


@dataclass(frozen=True)
class PolicyVersion:
    effective_from: date
    shares_ppm: Mapping[Stream, int]
    program_shares_ppm: tuple[tuple[Program, int], ...]
    account_streams: tuple[tuple[str, Stream], ...]

    def rate_ppm(self, stream: Stream) -> int:
        return self.shares_ppm.get(stream, 0)

    def stream_of(self, account_code: str) -> Stream | None:
        return stream_of(account_code, self.account_streams)

    def as_state(self) -> dict[str, object]:
        return {
            "effective_from": self.effective_from.isoformat(),
            "shares": {s.value: p for s, p in self.shares_ppm.items()},
            "programs": [[str(p), ppm] for p, ppm in self.program_shares_ppm],
            "accounts": [[prefix, s.value] for prefix, s in self.account_streams],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> PolicyVersion:
        shares = state["shares"]
        programs = state["programs"]
        accounts = state["accounts"]
        assert isinstance(shares, dict)
        assert isinstance(programs, list)
        assert isinstance(accounts, list)
        return cls(
            effective_from=date.fromisoformat(str(state["effective_from"])),
            shares_ppm={Stream(s): int(p) for s, p in shares.items()},
            program_shares_ppm=tuple((Program(p), int(ppm)) for p, ppm in programs),
            account_streams=tuple((str(prefix), Stream(s)) for prefix, s in accounts),
        )


@dataclass(frozen=True)
class PolicyWithdrawal:
    """A version withdrawn before any income from its day on was accrued: it governs
    nothing, and stays listed so that what was set, and that it was undone, is seen."""

    version: PolicyVersion
    withdrawn_on: date


def is_revenue_account(account_code: str) -> bool:
    """Revenue accounts are class 4 of the chart, and class 4 is revenue only (the
    ledger opens no other): the only accounts a policy may map to a stream
    (`accountStreams`), so the only income any version could accrue."""
    return account_code.startswith(REVENUE_CLASS)


def stream_of(account_code: str, account_streams: Sequence[tuple[str, Stream]]) -> Stream | None:
    index = _winner(account_code, account_streams)
    return None if index is None else account_streams[index][1]


def check_policy(
    shares: Sequence[tuple[Stream, int]],
    program_shares: Sequence[tuple[Program, int]],
    account_streams: Sequence[tuple[str, Stream]],
    catalog: ProgramCatalog,
) -> None:
    seen: set[Stream] = set()
    for index, (stream, ppm) in enumerate(shares):
        if stream in seen:
            raise ValidationError(f"shares[{index}].stream", f"{stream.value} is listed twice")
        if stream in RESTRICTED_STREAMS and ppm:
            raise ValidationError(
                f"shares[{index}].stream",
                f"{stream.value} is restricted income: it funds only the purpose it was "
                "given for, so its share is 0",
            )
        seen.add(stream)
    if not program_shares:
        raise ValidationError("programShares", "name at least one program, or leave the field out")
    programs: set[Program] = set()
    for index, (program, _ppm) in enumerate(program_shares):
        catalog.check(program, field=f"programShares[{index}].program")
        if program in programs:
            raise ValidationError(f"programShares[{index}].program", f"{program} is listed twice")
        programs.add(program)
    if sum(ppm for _p, ppm in program_shares) != PPM_PER_UNIT:
        raise ValidationError("programShares", "program proportions must add up to 100")
    if not account_streams:
        # No prefix at all: no income would be in any stream, and the fund would
        # accrue nothing with every rate as set. Leave the field out to keep the
        # mapping in force; give streams 0% to accrue nothing.
        raise ValidationError(
            "accountStreams", "name at least one account prefix, or leave the field out"
        )
    prefixes: set[str] = set()
    for index, (prefix, _stream) in enumerate(account_streams):
        if not (is_revenue_account(prefix) and re.fullmatch(r"[0-9A-Z.\-]{1,16}", prefix)):
            raise ValidationError(
                f"accountStreams[{index}].accountPrefix",
                "a revenue account prefix: starts with 4, at most 16 characters",
            )
        if prefix in prefixes:
            raise ValidationError(
                f"accountStreams[{index}].accountPrefix", f"prefix {prefix!r} is listed twice"
            )
        prefixes.add(prefix)
    _check_restricted_accounts(account_streams)


# The revenue accounts that hold restricted income (4210 restricted grants, 4410
# restricted donations): those the default mapping gives to restricted streams.
RESTRICTED_ACCOUNTS: tuple[tuple[str, Stream], ...] = tuple(
    (prefix, stream) for prefix, stream in DEFAULT_ACCOUNT_STREAMS if stream in RESTRICTED_STREAMS
)


def _check_restricted_accounts(account_streams: Sequence[tuple[str, Stream]]) -> None:
    """Restricted income stays on restricted streams whatever the mapping: checking
    only the shares' stream names let a policy map 4210 or 4410 (or a prefix such as
    "42" that covers them) to an unrestricted stream and accrue restricted money."""
    for index, (prefix, stream) in enumerate(account_streams):
        if stream in RESTRICTED_STREAMS:
            continue
        for account, restricted_stream in RESTRICTED_ACCOUNTS:
            # Either a sub-account of a restricted account, or the prefix that wins
            # (the longest) for the restricted account itself.
            inside = prefix.startswith(account)
            covering = account.startswith(prefix) and _winner(account, account_streams) == index
            if inside or covering:
                raise ValidationError(
                    f"accountStreams[{index}].stream",
                    f"prefix {prefix!r} takes in account {account}, restricted income: it "
                    "funds only the purpose it was given for, so it stays on a restricted "
                    f"stream ({restricted_stream.value})",
                )


def _winner(account_code: str, account_streams: Sequence[tuple[str, Stream]]) -> int | None:
    """The index of the mapping entry that governs `account_code` (longest prefix)."""
    best: tuple[int, int] | None = None
    for index, (prefix, _stream) in enumerate(account_streams):
        if account_code.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), index)
    return None if best is None else best[1]


def accrued_total(rate_ppm: int, cumulative_base_cents: int) -> int:
    """floor(rate * cumulative base), in cents. Python's // floors negatives too."""
    return rate_ppm * cumulative_base_cents // PPM_PER_UNIT


def accrue(rate_ppm: int, base_before_cents: int, base_cents: int) -> int:
    """What one posting with net base `base_cents` accrues after `base_before_cents`."""
    return accrued_total(rate_ppm, base_before_cents + base_cents) - accrued_total(
        rate_ppm, base_before_cents
    )


def allocate_total(
    amount_cents: int, proportions: Sequence[tuple[Program, int]]
) -> dict[Program, int]:
    """Split a cumulative amount over programs (whose proportions add up to 100%, as
    `check_policy` holds them); the parts sum to the amount exactly.

    Largest remainder, on the amount's size: each program gets the floor of its exact
    share, and the cents left over (fewer than the programs) go one each to the
    programs with the largest remainders; of equal remainders, the program listed
    later first (with 50/50, the odd cent goes to the second program, as it did when
    the last program took the rest). A program with a 0% share has no remainder to
    take, so it gets nothing; and every part has the amount's sign: a reduction never
    adds to a program. The last program used to take the rest whatever its share,
    and so took cents at 0%, or a cent back from a reduction (40/40/20 of -0.01:
    -0.01, -0.01, +0.01).
    """
    sign = -1 if amount_cents < 0 else 1
    size = abs(amount_cents)
    parts = {program: size * ppm // PPM_PER_UNIT for program, ppm in proportions}
    left_over = size - sum(parts.values())
    # Sorted by (remainder, position), largest first: deterministic whatever the
    # order of equal remainders. Only programs with a share compete.
    by_remainder = sorted(
        (
            (size * ppm % PPM_PER_UNIT, index, program)
            for index, (program, ppm) in enumerate(proportions)
            if ppm > 0
        ),
        reverse=True,
    )
    for _remainder, _index, program in by_remainder[:left_over]:
        parts[program] += 1
    return {program: sign * cents for program, cents in parts.items()}


def allocate(
    accrued_before_cents: int, accrued_cents: int, proportions: Sequence[tuple[Program, int]]
) -> dict[Program, int]:
    """The programs' parts of one accrual, as the difference of cumulative allocations."""
    after = allocate_total(accrued_before_cents + accrued_cents, proportions)
    before = allocate_total(accrued_before_cents, proportions)
    return {program: after[program] - before[program] for program in after}


# Months an internship lasts at most unless the stipend rules say otherwise.
DEFAULT_INTERNSHIP_MONTHS = 12


@dataclass(frozen=True)
class StipendRules:
    """Lombardy extracurricular internships (DOMAIN.md); every figure is configurable."""

    effective_from: date
    full_cents: int = 50_000
    with_meals_cents: int = 40_000
    part_time_cents: int = 35_000
    floor_cents: int = 30_000
    full_attendance_ppm: int = 800_000  # 80%
    # Months an internship lasts at most, counted from the enrolment's month (up to
    # 12 for disadvantaged people, DOMAIN.md).
    max_months: int = DEFAULT_INTERNSHIP_MONTHS

    def check_amounts(self) -> None:
        """Amounts that contradict each other are refused, naming the input field: a
        floor above the full amount paid the full stipend at any attendance, and
        meals or part time are meant to lower the amount, never raise it."""
        for field, cents in (
            ("withMealsAmount", self.with_meals_cents),
            ("partTimeAmount", self.part_time_cents),
        ):
            if cents > self.full_cents:
                raise ValidationError(field, "must not be above fullAmount")
        for other, cents in (
            ("fullAmount", self.full_cents),
            ("withMealsAmount", self.with_meals_cents),
            ("partTimeAmount", self.part_time_cents),
        ):
            if self.floor_cents > cents:
                raise ValidationError("floorAmount", f"must not be above {other}")

    def last_day(self, enrolled_on: date) -> date:
        """The internship's last day at most: `max_months` months from the enrolment
        day, less a day (20 January 2025, 12 months: 19 January 2026; a day missing in
        the last month, 31 January plus one month, is that month's last day)."""
        index = enrolled_on.year * 12 + enrolled_on.month - 1 + self.max_months
        year, month = divmod(index, 12)
        day = min(enrolled_on.day, calendar.monthrange(year, month + 1)[1])
        return date(year, month + 1, day) - timedelta(days=1)

    def check_within_duration(self, month: date, enrolled_on: date) -> None:
        """A month of attendance (its first day) begins by the internship's last day:
        one that began mid-month has its last weeks in a thirteenth calendar month."""
        last_day = self.last_day(enrolled_on)
        if month > last_day:
            nth = (month.year - enrolled_on.year) * 12 + month.month - enrolled_on.month + 1
            raise ValidationError(
                "month",
                f"an internship lasts at most {self.max_months} months: from "
                f"{enrolled_on.isoformat()} to {last_day.isoformat()}; "
                f"{month.isoformat()[:7]} would be calendar month {nth}",
            )

    def stipend_cents(
        self,
        *,
        scheduled_days: int,
        attended_days: int,
        meals_provided: bool,
        part_time: bool,
        internship_days: int = 1,
        month_days: int = 1,
    ) -> int:
        """Monthly stipend from recorded attendance.

        Base: the lowest amount that applies (meals and part time both lower it), for
        a month the internship covers only in part (its first and last) the share of
        the month's calendar days it covers, `internship_days` of `month_days`
        (rounded half up to the cent): a twelve-month internship begun mid-month pays
        twelve months, not thirteen full ones. Full base at attendance >= the
        threshold; otherwise pro rata (rounded half up to the cent), never below the
        floor but never above the base. No attendance at all pays nothing.
        """
        base = self.full_cents
        if meals_provided:
            base = min(base, self.with_meals_cents)
        if part_time:
            base = min(base, self.part_time_cents)
        if internship_days < month_days:
            base = (2 * base * internship_days + month_days) // (2 * month_days)
        if attended_days == 0:
            return 0
        if attended_days * PPM_PER_UNIT >= self.full_attendance_ppm * scheduled_days:
            return base
        pro_rata = (2 * base * attended_days + scheduled_days) // (2 * scheduled_days)
        return min(base, max(pro_rata, self.floor_cents))

    def as_state(self) -> dict[str, object]:
        return {
            "effective_from": self.effective_from.isoformat(),
            "full": self.full_cents,
            "with_meals": self.with_meals_cents,
            "part_time": self.part_time_cents,
            "floor": self.floor_cents,
            "full_attendance_ppm": self.full_attendance_ppm,
            # Only when not the default: versions, requests and snapshots recorded
            # before the duration was kept are then stated as they were.
            **(
                {}
                if self.max_months == DEFAULT_INTERNSHIP_MONTHS
                else {"max_months": self.max_months}
            ),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> StipendRules:
        return cls(
            effective_from=date.fromisoformat(str(state["effective_from"])),
            full_cents=int(str(state["full"])),
            with_meals_cents=int(str(state["with_meals"])),
            part_time_cents=int(str(state["part_time"])),
            floor_cents=int(str(state["floor"])),
            full_attendance_ppm=int(str(state["full_attendance_ppm"])),
            max_months=int(str(state.get("max_months", DEFAULT_INTERNSHIP_MONTHS))),
        )

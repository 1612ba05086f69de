"""The fund's book: policy versions, stipend rules, accrual state and reservations.

One long-lived aggregate (snapshotted). Everything that must be decided against the
same numbers lives here, so optimistic concurrency on this one aggregate makes
conflicting commands exclusive: a policy change against the accrual process (the
past-policy rule), two commitments against the same available funds.

State is kept in JSON-friendly shapes (string keys, plain dicts) so snapshots need
no custom transcodings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.ledger.domain import (
    WELFARE_FUND_CONTRIBUTION_ACCOUNT,
    WELFARE_FUND_PAYABLE_ACCOUNT,
    Posting,
    Side,
)
from services.welfare_fund.domain.beneficiary import check_month
from services.welfare_fund.domain.errors import (
    InsufficientFunds,
    VersionExists,
    VersionWithdrawn,
)
from services.welfare_fund.domain.policy import (
    DEFAULT_ACCOUNT_STREAMS,
    PolicyVersion,
    PolicyWithdrawal,
    Program,
    StipendRules,
    Stream,
    accrue,
    allocate,
    is_revenue_account,
    stream_of,
)

FUND_ID: UUID = uuid5(NAMESPACE_URL, "urn:coop:welfare-fund:book")
# The program split and account mapping a version set before any other takes for what
# it leaves out (from the configuration).
LeftOutDefaults = tuple[tuple[tuple[Program, int], ...], tuple[tuple[str, Stream], ...]]
NO_POLICY = ""  # the period before the first policy version: rate 0


@dataclass(frozen=True)
class IncomeSource:
    """A journal entry as the fund sees it: its position, date and postings.

    `reverses_effective_date`: for a reversal, the date of the entry it reverses. The
    reversal is governed by that date's policy, in that policy's period, so it takes
    back exactly what the original accrued. Governed by its own date, a correction
    dated after a rate change left the fund richer or poorer by the difference (a
    posting of 1,000.00 at 8% reversed under 9%: 10.00 short on income that nets to
    nothing). A refund is no reversal: it is income given back when it is given back.
    `reverses_entry_id`: the entry it reverses, so that provenance stops counting that
    entry's share as a source (docs/welfare_fund.md, "Queries").
    """

    position: int
    entry_id: str
    effective_date: date
    postings: Sequence[Posting]
    reverses_effective_date: date | None = None
    reverses_entry_id: str | None = None

    @property
    def policy_date(self) -> date:
        """The date whose policy version governs this entry."""
        return self.reverses_effective_date or self.effective_date


@dataclass(frozen=True)
class StipendRulesWithdrawal:
    """A stipend rules version withdrawn before its first month began: it governs no
    month, and stays listed so that what was set, and that it was undone, is seen."""

    rules: StipendRules
    withdrawn_on: date


EARLIEST = "0000-00-00"  # sorts before every ISO day


class WelfareFund(Aggregate):
    class Started(Aggregate.Created):
        stipend_rules: dict[str, Any]

    class PolicySet(Aggregate.Event):
        policy: dict[str, Any]
        actor: str | None = None  # who set it (None in events recorded before it was kept)

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            aggregate.policies[str(self.policy["effective_from"])] = self.policy

    class PolicyWithdrawn(Aggregate.Event):
        effective_from: date
        # The version as it was set, so the log alone says what was withdrawn.
        policy: dict[str, Any]
        withdrawn_on: date
        actor: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            del aggregate.policies[self.effective_from.isoformat()]
            aggregate._withdrawn_policies().append(
                {"policy": self.policy, "withdrawn_on": self.withdrawn_on.isoformat()}
            )

    class StipendRulesSet(Aggregate.Event):
        rules: dict[str, Any]
        actor: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            aggregate.stipend_rules[str(self.rules["effective_from"])] = self.rules

    class StipendRulesWithdrawn(Aggregate.Event):
        effective_from: date
        # The version as it was set, so the log alone says what was withdrawn.
        rules: dict[str, Any]
        withdrawn_on: date
        actor: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            del aggregate.stipend_rules[self.effective_from.isoformat()]
            aggregate._stipend_rules_withdrawals().append(
                {"rules": self.rules, "withdrawn_on": self.withdrawn_on.isoformat()}
            )

    class StipendRulesApplied(Aggregate.Event):
        """The first attendance of `month` ("YYYY-MM") was recorded, its stipend
        computed by the rules then governing the month: from now on no version set or
        withdrawn may change which rules govern it."""

        month: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            aggregate._stipend_months().append(self.month)

    class AccrualsRecorded(Aggregate.Event):
        # The last ledger position read: the process's own exactly-once tracking.
        source_position: int
        items: list[dict[str, Any]]
        entry_ids: list[str]
        # The latest date of the income read, whether a stream took it or not (ISO
        # day). None in events recorded before it was kept: their items' dates stand.
        income_through: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            aggregate.position = self.source_position
            latest = aggregate.latest_accrued_date
            if self.income_through is not None and (latest is None or self.income_through > latest):
                aggregate.latest_accrued_date = self.income_through
            for item in self.items:
                key = f"{item['stream']}|{item['period']}"
                totals = aggregate.cumulative.setdefault(key, [0, 0])
                totals[0] += int(item["base"])
                totals[1] += int(item["accrued"])
                day = str(item["date"])
                for program, cents in item["programs"].items():
                    accrued = aggregate.accrued_by_program
                    accrued[program] = accrued.get(program, 0) + int(cents)
                    aggregate._move_available(program, day, int(cents))
                if aggregate.latest_accrued_date is None or day > aggregate.latest_accrued_date:
                    aggregate.latest_accrued_date = day

    class FundsReserved(Aggregate.Event):
        disbursement_id: UUID
        program: str
        amount_cents: int
        # The commitment's date; None in events recorded before dates were kept.
        on: date | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            reserved = aggregate.reserved_by_program
            reserved[self.program] = reserved.get(self.program, 0) + self.amount_cents
            aggregate._move_available(self.program, self.on, -self.amount_cents)

    class FundsReleased(Aggregate.Event):
        disbursement_id: UUID
        program: str
        amount_cents: int
        on: date | None = None  # the cancellation's date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            reserved = aggregate.reserved_by_program
            reserved[self.program] = reserved.get(self.program, 0) - self.amount_cents
            aggregate._move_available(self.program, self.on, self.amount_cents)

    def __init__(self, stipend_rules: dict[str, Any]) -> None:
        self.policies: dict[str, dict[str, Any]] = {}
        # [{"policy": state, "withdrawn_on": ISO day}] in withdrawal order: they govern
        # nothing, and are kept so the book still says they were set.
        self.withdrawn_policies: list[dict[str, Any]] = []
        self.stipend_rules: dict[str, dict[str, Any]] = {
            str(stipend_rules["effective_from"]): stipend_rules
        }
        # [{"rules": state, "withdrawn_on": ISO day}] in withdrawal order, as for the
        # policy: they govern no month, and are kept so the book says they were set.
        self.stipend_rules_withdrawals: list[dict[str, Any]] = []
        # "YYYY-MM" of every month with recorded attendance, in recording order: the
        # rules governing these months are fixed (StipendRulesApplied).
        self.stipend_months: list[str] = []
        self.position = 0
        self.latest_accrued_date: str | None = None
        # "<stream>|<policy effective_from>" -> [cumulative base, cumulative accrued]
        self.cumulative: dict[str, list[int]] = {}
        self.accrued_by_program: dict[str, int] = {}
        # Committed (outstanding) plus paid, per program: what is no longer available.
        self.reserved_by_program: dict[str, int] = {}
        # program -> ISO day -> change of what is available that day (accruals in,
        # commitments out, releases in): a back-dated commitment must be covered on its
        # day and every day after, not only today.
        self.available_changes: dict[str, dict[str, int]] = {}

    @classmethod
    def start(cls, stipend_rules: StipendRules) -> WelfareFund:
        return cls._create(cls.Started, id=FUND_ID, stipend_rules=stipend_rules.as_state())

    # -- policy ----------------------------------------------------------------

    def policy_versions(self) -> list[PolicyVersion]:
        return [PolicyVersion.from_state(self.policies[k]) for k in sorted(self.policies)]

    def policy_in_force(self, day: date) -> PolicyVersion | None:
        """The version governing income dated `day` (None before the first)."""
        return _governing(self.policy_versions(), day)

    def set_policy(self, version: PolicyVersion, *, actor: str | None = None) -> None:
        """Record a policy version. A version never rewrites accrued history.

        Rule: refused when any income posting dated on or after `effective_from` has
        already been accrued (under the policy then in force). There is no
        restatement: to change the past, reverse and repost the income.
        """
        day = version.effective_from.isoformat()
        latest = self.latest_accrued_date
        if latest is not None and day <= latest:
            raise ValidationError(
                "effectiveFrom",
                f"income up to {latest} was already accrued under the policy then in force "
                "(income its mapping left out of every stream included); a new policy can "
                f"take effect on {_day_after(latest)} or later",
            )
        if day in self.policies:
            raise VersionExists("a redistribution policy version", day)
        self.trigger_event(self.PolicySet, policy=version.as_state(), actor=actor)

    def _check_not_carried_on(
        self, withdrawn: PolicyVersion, defaults: LeftOutDefaults | None
    ) -> None:
        """A later version whose program split (account mapping) was left out when it
        was set took the one in force on its day: this version's, if this one was
        then in force. Withdrawn, this version would still govern through it. A later
        version with the same values as this one and not the version before it may
        have copied them: refused, naming it (an identical split typed on purpose is
        set again after that version's withdrawal just as well)."""
        versions = [
            v for v in self.policy_versions() if v.effective_from != withdrawn.effective_from
        ]
        before = _governing(versions, withdrawn.effective_from)
        # Before the first version, what a version leaves out is the configured default
        # (`defaults`; None: not known, and then nothing is compared).
        if before is not None:
            earlier: LeftOutDefaults = (before.program_shares_ppm, before.account_streams)
        elif defaults is not None:
            earlier = defaults
        else:
            return
        for later in (v for v in versions if v.effective_from > withdrawn.effective_from):
            for what, mine, theirs, earlier_values in (
                (
                    "program split",
                    withdrawn.program_shares_ppm,
                    later.program_shares_ppm,
                    earlier[0],
                ),
                (
                    "account mapping",
                    withdrawn.account_streams,
                    later.account_streams,
                    earlier[1],
                ),
            ):
                if theirs == mine and mine != earlier_values:
                    raise Conflict(
                        f"the version from {later.effective_from.isoformat()} has this "
                        f"version's {what} (left out when it was set, it took this one's): "
                        "withdrawn, this version would still govern through it. Withdraw "
                        "that version first, then set it again with the right values"
                    )

    def withdraw_policy(
        self,
        effective_from: date,
        *,
        withdrawn_on: date,
        actor: str | None = None,
        defaults: LeftOutDefaults | None = None,
    ) -> PolicyWithdrawal:
        """Withdraw a version set by mistake, before it has governed anything.

        Rule: the same as for setting one, so withdrawing is possible exactly as long
        as setting that version would be: refused once any income posting dated on or
        after `effective_from` has been accrued. Before that, nothing accrued depends
        on the version, and after it the accrued history is not rewritten (to change
        it, reverse and repost the income). Withdrawn, it governs nothing (its days
        fall to the version before it, or to none), its day takes a new version, and
        it stays among `withdrawn_policy_versions`.
        """
        day = effective_from.isoformat()
        state = self.policies.get(day)
        if state is None:
            earlier = _last_withdrawal_on_day(day, self._withdrawn_policies(), "policy")
            if earlier is not None:
                raise VersionWithdrawn(
                    "the redistribution policy version", day, earlier["withdrawn_on"]
                )
            raise NotFound(f"there is no redistribution policy version from {day}")
        latest = self.latest_accrued_date
        # The version's period key ("<stream>|<day>") is reused by a version set on
        # the day again: it must hold nothing, which this rule also guarantees.
        if latest is not None and day <= latest:
            raise ValidationError(
                "effectiveFrom",
                f"income dated {latest}, on or after this version's day, was already "
                "accrued; a version can be withdrawn only until income from its day on is "
                "accrued (accrued history is never rewritten). To correct that income, "
                "reverse and repost it; to change the rate from now on, set a version "
                f"from {_day_after(latest)} or later",
            )
        self._check_not_carried_on(PolicyVersion.from_state(state), defaults)
        self.trigger_event(
            self.PolicyWithdrawn,
            effective_from=effective_from,
            policy=state,
            withdrawn_on=withdrawn_on,
            actor=actor,
        )
        return PolicyWithdrawal(PolicyVersion.from_state(state), withdrawn_on)

    def withdrawn_policy_versions(self) -> list[PolicyWithdrawal]:
        return [
            PolicyWithdrawal(
                PolicyVersion.from_state(w["policy"]), date.fromisoformat(w["withdrawn_on"])
            )
            for w in self._withdrawn_policies()
        ]

    def policy_state_set_on(self, day: str) -> dict[str, Any]:
        """The state of the version last set for `day`, in force or withdrawn."""
        return _state_set_on(
            day, self.policies, self._withdrawn_policies(), "policy", "redistribution policy"
        )

    def _withdrawn_policies(self) -> list[dict[str, Any]]:
        # Snapshots taken before versions could be withdrawn do not have the list.
        if "withdrawn_policies" not in self.__dict__:
            self.withdrawn_policies = []
        return self.withdrawn_policies

    def set_stipend_rules(self, rules: StipendRules, *, actor: str | None = None) -> None:
        """Record a version of the rules. The defaults the fund started with count as
        the version from their date (2000-01-01). A withdrawn version's day takes a
        new one (`withdraw_stipend_rules`)."""
        day = rules.effective_from.isoformat()
        _first_month_from(rules.effective_from)  # refuses a version that governs no month
        if day in self.stipend_rules:
            raise VersionExists("a version of the stipend rules", day)
        regoverned = self._recorded_months_regoverned({**self.stipend_rules, day: {}})
        if regoverned:
            governing = _governing_key(self.stipend_rules, f"{regoverned[0]}-01")
            raise ValidationError(
                "effectiveFrom",
                f"attendance for {_months(regoverned)} is already recorded ({regoverned[0]} "
                f"paid by the rules from {governing}): a version from {day} would govern "
                "it, and the stipends already recorded would not follow. A month's rules "
                "are fixed once its first attendance is recorded; a version from "
                f"{_next_first_of_month(check_month(regoverned[-1]))} would "
                "govern none of these months",
            )
        self.trigger_event(self.StipendRulesSet, rules=rules.as_state(), actor=actor)

    def stipend_rules_on(self, day: date) -> StipendRules:
        key = _governing_key(self.stipend_rules, day.isoformat())
        return StipendRules.from_state(self.stipend_rules[key])

    def fix_stipend_rules(self, month: date) -> bool:
        """Attendance for `month` (its 1st) is being recorded by the rules governing
        it: the first time, record that they are now fixed for it (True). Saved with
        the attendance, this event makes the attendance and any change of the rules
        write the same aggregate, so one of two racing commands re-decides on the
        other's outcome (a version set or withdrawn meanwhile changes the stipend;
        recorded attendance refuses the version)."""
        key = f"{month:%Y-%m}"
        if key in self._stipend_months():
            return False
        self.trigger_event(self.StipendRulesApplied, month=key)
        return True

    def _recorded_months_regoverned(self, versions_after: Mapping[str, Any]) -> list[str]:
        """The months with recorded attendance ("YYYY-MM", ascending) whose governing
        version would differ with `versions_after` (keyed by ISO day) in force."""
        return [
            month
            for month in sorted(self._stipend_months())
            if _governing_key(self.stipend_rules, f"{month}-01")
            != _governing_key(versions_after, f"{month}-01")
        ]

    def _stipend_months(self) -> list[str]:
        # Snapshots taken before months were recorded do not have the list.
        if "stipend_months" not in self.__dict__:
            self.stipend_months = []
        return self.stipend_months

    def withdraw_stipend_rules(
        self, effective_from: date, *, withdrawn_on: date, actor: str | None = None
    ) -> StipendRulesWithdrawal:
        """Withdraw a version set by mistake (EUR 5000 typed for 500) before any month
        it governs has begun.

        A month's attendance is paid by the rules in force on its first day, and is
        recorded only once the month has begun, with the stipend computed then. So
        while the version's first month (the one starting on `effective_from` if that
        is a 1st, else the next) has not begun, no attendance carries these rules;
        after that some may, and withdrawing would leave recorded stipends computed
        with rules the book no longer has. A corrective version from a later day would
        leave the mistake in force for at least the first month (a version from the
        2nd governs only from the next month). The version the fund started with (the
        earliest) is the base every month falls back to: it stays. Withdrawn, a
        version governs nothing (its months fall to the version before it), its day
        takes a new version, and it stays among `withdrawn_stipend_rules`.
        """
        day = effective_from.isoformat()
        state = self.stipend_rules.get(day)
        if state is None:
            earlier = _last_withdrawal_on_day(day, self._stipend_rules_withdrawals(), "rules")
            if earlier is not None:
                raise VersionWithdrawn("the stipend rules version", day, earlier["withdrawn_on"])
            raise NotFound(f"there is no version of the stipend rules from {day}")
        if day == min(self.stipend_rules):
            raise ValidationError(
                "effectiveFrom",
                f"the stipend rules from {day} are the earliest version (the fund starts "
                "with it): the base every month falls back to, so it cannot be withdrawn; "
                "to change stipends, set a new version",
            )
        # A version stored before such versions were refused may govern no month: it
        # has not begun, whatever the day, and may be withdrawn.
        governs_a_month = effective_from < date(date.max.year, date.max.month, 2)
        first_month = _first_month_from(effective_from) if governs_a_month else date.max
        if first_month <= withdrawn_on:
            raise ValidationError(
                "effectiveFrom",
                f"the stipend rules from {day} govern attendance from {first_month:%Y-%m}, "
                "which has begun: its attendance may already be recorded with them. Only "
                "rules whose first month has not begun can be withdrawn; to change "
                "stipends from a later month, set a version from "
                f"{_next_first_of_month(withdrawn_on).isoformat()}",
            )
        # Attendance is recorded only once its month has begun, so the check above
        # is enough, except against a racing attendance: this command's day was taken
        # before the month began, the attendance's after (fix_stipend_rules).
        regoverned = self._recorded_months_regoverned(
            {k: v for k, v in self.stipend_rules.items() if k != day}
        )
        if regoverned:
            raise ValidationError(
                "effectiveFrom",
                f"attendance for {_months(regoverned)} is already recorded, its stipends "
                f"computed by the rules from {day}: withdrawn, they would no longer govern "
                "the months paid by them. To change stipends from a later month, set a "
                "version from "
                f"{_next_first_of_month(check_month(regoverned[-1]))}",
            )
        self.trigger_event(
            self.StipendRulesWithdrawn,
            effective_from=effective_from,
            rules=state,
            withdrawn_on=withdrawn_on,
            actor=actor,
        )
        return StipendRulesWithdrawal(StipendRules.from_state(state), withdrawn_on)

    def withdrawn_stipend_rules(self) -> list[StipendRulesWithdrawal]:
        return [
            StipendRulesWithdrawal(
                StipendRules.from_state(w["rules"]), date.fromisoformat(w["withdrawn_on"])
            )
            for w in list(self._stipend_rules_withdrawals())
        ]

    def stipend_rules_listing(self) -> list[tuple[StipendRules, date | None]]:
        """Every version set, with the day it was withdrawn (None: in force), oldest
        first by `effective_from`, the fund's starting version included. A day's
        withdrawn versions come first, in the order withdrawn: a version in force on
        that day can only have been set after them."""
        # Each copied in one step before use: the application reads the cached book
        # without a defensive copy, and another thread may fast-forward it meanwhile
        # (iterating the live dict could fail: "changed size during iteration").
        in_force = list(self.stipend_rules.values())
        listed: list[tuple[StipendRules, date | None]] = [
            (w.rules, w.withdrawn_on) for w in self.withdrawn_stipend_rules()
        ]
        listed += [(StipendRules.from_state(state), None) for state in in_force]
        # A stable sort keeps the withdrawal order within a day.
        return sorted(listed, key=lambda item: (item[0].effective_from, item[1] is None))

    def stipend_rules_state_set_on(self, day: str) -> dict[str, Any]:
        """The state of the version last set for `day`, in force or withdrawn."""
        return _state_set_on(
            day, self.stipend_rules, self._stipend_rules_withdrawals(), "rules", "stipend rules"
        )

    def _stipend_rules_withdrawals(self) -> list[dict[str, Any]]:
        # Snapshots taken before versions could be withdrawn do not have the list.
        if "stipend_rules_withdrawals" not in self.__dict__:
            self.stipend_rules_withdrawals = []
        return self.stipend_rules_withdrawals

    # -- accrual ---------------------------------------------------------------

    def plan_accruals(self, sources: Iterable[IncomeSource]) -> list[dict[str, Any]]:
        """The accrual items for these ledger entries (in order), without recording them."""
        versions = self.policy_versions()
        cumulative = {key: list(totals) for key, totals in self.cumulative.items()}
        items: list[dict[str, Any]] = []
        for source in sources:
            if source.position <= self.position:
                continue  # already accrued (a replayed page)
            version = _governing(versions, source.policy_date)
            mapping = version.stream_of if version is not None else _default_stream_of
            base_by_stream: dict[Stream, int] = {}
            for posting in source.postings:
                stream = mapping(posting.account_code)
                if stream is None:
                    continue
                signed = (
                    posting.amount_cents if posting.side is Side.CREDIT else -posting.amount_cents
                )
                base_by_stream[stream] = base_by_stream.get(stream, 0) + signed
            for stream, base_cents in base_by_stream.items():
                period = version.effective_from.isoformat() if version else NO_POLICY
                totals = cumulative.setdefault(f"{stream.value}|{period}", [0, 0])
                rate_ppm = version.rate_ppm(stream) if version else 0
                accrued_cents = accrue(rate_ppm, totals[0], base_cents)
                # Before any policy nothing accrues, so nothing is allocated.
                programs = (
                    allocate(totals[1], accrued_cents, version.program_shares_ppm)
                    if version
                    else {}
                )
                totals[0] += base_cents
                totals[1] += accrued_cents
                item: dict[str, Any] = {
                    "entry_id": source.entry_id,
                    "position": source.position,
                    "date": source.effective_date.isoformat(),
                    "stream": stream.value,
                    "period": period,
                    "base": base_cents,
                    "accrued": accrued_cents,
                    "programs": {str(p): c for p, c in programs.items()},
                }
                if source.reverses_entry_id is not None:
                    item["reverses_entry_id"] = source.reverses_entry_id
                items.append(item)
        return items

    def income_read(self, sources: Iterable[IncomeSource]) -> tuple[int, date] | None:
        """The last position and the latest date of the income among `sources` not yet
        accrued: every entry with a revenue posting, whether a stream of the policy in
        force takes it or not. Income a narrower mapping left out was still read under
        that policy: a version set (or withdrawn) later must not newly cover it, or its
        reversal would take back a share it never accrued."""
        read = [
            (source.position, source.effective_date)
            for source in sources
            if source.position > self.position
            and any(is_revenue_account(p.account_code) for p in source.postings)
        ]
        if not read:
            return None
        return max(position for position, _ in read), max(day for _, day in read)

    def record_accruals(
        self,
        source_position: int,
        items: list[dict[str, Any]],
        entry_ids: list[str],
        *,
        income_through: date | None = None,
    ) -> None:
        if source_position <= self.position:
            raise ValueError("accruals must move the fund's position forward")
        self.trigger_event(
            self.AccrualsRecorded,
            source_position=source_position,
            items=items,
            entry_ids=entry_ids,
            income_through=None if income_through is None else income_through.isoformat(),
        )

    # -- reservations ----------------------------------------------------------

    def available_cents(self, program: Program) -> int:
        return self.accrued_by_program.get(program, 0) - self.reserved_by_program.get(program, 0)

    def programs_in_use(self) -> set[str]:
        """Programs that hold accruals or that a policy version allocates to: they must
        stay configured, or their money would drop out of every balance."""
        used = {program for program, cents in self.accrued_by_program.items() if cents}
        for version in self.policy_versions():
            used.update(str(program) for program, _ppm in version.program_shares_ppm)
        return used

    def _move_available(self, program: str, day: date | str | None, cents: int) -> None:
        # Facts recorded before dates were kept (and a snapshot taken before) count
        # from the beginning: the check then reads as the undated one did.
        changes = getattr(self, "available_changes", None)
        if changes is None:
            return
        key = EARLIEST if day is None else str(day)
        by_day = changes.setdefault(program, {})
        by_day[key] = by_day.get(key, 0) + cents

    def available_from_cents(self, program: Program, day: date) -> int:
        """What stays available to a commitment dated `day`: the least the program holds
        on that day or any day after (a later commitment may rely on money that came
        after `day`). Without the dated record (an old snapshot): today's figure."""
        changes = getattr(self, "available_changes", None)
        if changes is None:
            return self.available_cents(program)
        running = 0
        lowest: int | None = None  # from the end of `day` on
        start = day.isoformat()
        for key, cents in sorted(changes.get(str(program), {}).items()):
            if key > start and lowest is None:
                lowest = running  # what the program held at the end of `day`
            running += cents
            if lowest is not None:
                lowest = min(lowest, running)
        return running if lowest is None else lowest

    def reserve(
        self, disbursement_id: UUID, program: Program, amount_cents: int, *, on: date
    ) -> None:
        available = self.available_from_cents(program, on)
        if amount_cents > available:
            raise InsufficientFunds(program, amount_cents, max(available, 0))
        self.trigger_event(
            self.FundsReserved,
            disbursement_id=disbursement_id,
            program=str(program),
            amount_cents=amount_cents,
            on=on,
        )

    def release(
        self, disbursement_id: UUID, program: Program, amount_cents: int, *, on: date
    ) -> None:
        if amount_cents > 0:
            self.trigger_event(
                self.FundsReleased,
                disbursement_id=disbursement_id,
                program=str(program),
                amount_cents=amount_cents,
                on=on,
            )


def _governing(versions: Sequence[PolicyVersion], day: date) -> PolicyVersion | None:
    governing = None
    for version in versions:  # sorted by effective_from; a handful per year
        if version.effective_from <= day:
            governing = version
    return governing


def _last_withdrawal_on_day(
    day: str, withdrawals: Sequence[dict[str, Any]], versioned: str
) -> dict[str, Any] | None:
    """The latest withdrawal of a version from `day` (a day may have several);
    `versioned`: the key of the withdrawn version's state in each withdrawal."""
    return next((w for w in reversed(withdrawals) if w[versioned]["effective_from"] == day), None)


def _state_set_on(
    day: str,
    in_force: Mapping[str, dict[str, Any]],
    withdrawals: Sequence[dict[str, Any]],
    versioned: str,
    what: str,
) -> dict[str, Any]:
    """The state of the version of `what` last set for `day`, in force or withdrawn."""
    state = in_force.get(day)
    if state is not None:
        return state
    withdrawn = _last_withdrawal_on_day(day, withdrawals, versioned)
    if withdrawn is not None:
        return dict(withdrawn[versioned])
    raise NotFound(f"there is no {what} version from {day}")


def _governing_key(versions: Iterable[str], day: str) -> str:
    """The ISO day of the version in force on `day`: the latest from that day or
    before, else the earliest (the fund's starting version is the base)."""
    keys = list(versions)
    return max((k for k in keys if k <= day), default=min(keys))


def _months(months: Sequence[str]) -> str:
    """Months named in a message: a version can govern years of them."""
    if len(months) <= 3:
        return ", ".join(months)
    return f"{months[0]} and {len(months) - 1} later months through {months[-1]}"


def _first_month_from(effective_from: date) -> date:
    """The first day of the first month a stipend rules version governs: a month is
    paid by the rules in force on its first day."""
    if effective_from.day == 1:
        return effective_from
    if (effective_from.year, effective_from.month) == (date.max.year, date.max.month):
        raise ValidationError(
            "effectiveFrom",
            f"stipend rules from {effective_from.isoformat()} would govern no month: the "
            "first they could govern begins after the calendar's last day (9999-12-31)",
        )
    return _next_first_of_month(effective_from)


def _next_first_of_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _day_after(iso_day: str) -> str:
    return (date.fromisoformat(iso_day) + timedelta(days=1)).isoformat()


def _default_stream_of(account_code: str) -> Stream | None:
    return stream_of(account_code, DEFAULT_ACCOUNT_STREAMS)


def accrual_postings(net_by_day: dict[date, int]) -> dict[date, list[Posting]]:
    """The fund's ledger postings per day: Dr 5000 / Cr 2400 (or back for a reduction)."""
    contribution, payable = WELFARE_FUND_CONTRIBUTION_ACCOUNT, WELFARE_FUND_PAYABLE_ACCOUNT
    out: dict[date, list[Posting]] = {}
    for day, cents in net_by_day.items():
        if cents > 0:
            out[day] = [
                Posting(contribution, Side.DEBIT, cents),
                Posting(payable, Side.CREDIT, cents),
            ]
        elif cents < 0:
            out[day] = [
                Posting(payable, Side.DEBIT, -cents),
                Posting(contribution, Side.CREDIT, -cents),
            ]
    return out

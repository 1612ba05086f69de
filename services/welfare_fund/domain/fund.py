"""The fund's book: policy versions, stipend rules, accrual state and reservations.

One long-lived aggregate (snapshotted). Everything that must be decided against the
same numbers lives here, so optimistic concurrency on this one aggregate makes
conflicting commands exclusive: a policy change against the accrual process (the
past-policy rule), two commitments against the same available funds.

State is kept in JSON-friendly shapes (string keys, plain dicts) so snapshots need
no custom transcodings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import NotFound, ValidationError
from services.ledger.domain import (
    WELFARE_FUND_CONTRIBUTION_ACCOUNT,
    WELFARE_FUND_PAYABLE_ACCOUNT,
    Posting,
    Side,
)
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
    stream_of,
)

FUND_ID: UUID = uuid5(NAMESPACE_URL, "urn:coop:welfare-fund:book")
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

    class AccrualsRecorded(Aggregate.Event):
        # The last ledger position read: the process's own exactly-once tracking.
        source_position: int
        items: list[dict[str, Any]]
        entry_ids: list[str]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, WelfareFund)
            aggregate.position = self.source_position
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
                f"income up to {latest} was already accrued under the policy then in force; "
                f"a new policy can take effect on {_day_after(latest)} or later",
            )
        if day in self.policies:
            raise VersionExists("a redistribution policy version", day)
        self.trigger_event(self.PolicySet, policy=version.as_state(), actor=actor)

    def withdraw_policy(
        self, effective_from: date, *, withdrawn_on: date, actor: str | None = None
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
            earlier = self._last_withdrawn_on_day(day)
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
        state = self.policies.get(day)
        if state is not None:
            return state
        withdrawn = self._last_withdrawn_on_day(day)
        if withdrawn is not None:
            return dict(withdrawn["policy"])
        raise NotFound(f"there is no redistribution policy version from {day}")

    def _last_withdrawn_on_day(self, day: str) -> dict[str, Any] | None:
        """The latest withdrawal of a version from `day` (a day may have several)."""
        withdrawals: list[dict[str, Any]] = self._withdrawn_policies()
        return next(
            (w for w in reversed(withdrawals) if w["policy"]["effective_from"] == day), None
        )

    def _withdrawn_policies(self) -> list[dict[str, Any]]:
        # Snapshots taken before versions could be withdrawn do not have the list.
        if "withdrawn_policies" not in self.__dict__:
            self.withdrawn_policies = []
        return self.withdrawn_policies

    def set_stipend_rules(self, rules: StipendRules, *, actor: str | None = None) -> None:
        """Record a version of the rules. The defaults the fund started with count as
        the version from their date (2000-01-01)."""
        day = rules.effective_from.isoformat()
        if day in self.stipend_rules:
            raise VersionExists("a version of the stipend rules", day)
        self.trigger_event(self.StipendRulesSet, rules=rules.as_state(), actor=actor)

    def stipend_rules_on(self, day: date) -> StipendRules:
        applicable = [k for k in self.stipend_rules if k <= day.isoformat()]
        key = max(applicable) if applicable else min(self.stipend_rules)
        return StipendRules.from_state(self.stipend_rules[key])

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

    def record_accruals(
        self, source_position: int, items: list[dict[str, Any]], entry_ids: list[str]
    ) -> None:
        if source_position <= self.position:
            raise ValueError("accruals must move the fund's position forward")
        self.trigger_event(
            self.AccrualsRecorded,
            source_position=source_position,
            items=items,
            entry_ids=entry_ids,
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

"""Journal entries: balanced, caused, immutable. Corrections are reversals.

One aggregate per entry, its id derived from its cause (uuid5), so posting the same
cause twice collides in the store instead of double-counting money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import ValidationError
from services.common.money import check_positive_amount
from services.ledger.domain.accounts import ChartOfAccounts, KeptAccount, check_account_code
from services.ledger.domain.errors import (
    AccountKeptByContext,
    EntryAlreadyReversed,
    PeriodClosed,
    UnbalancedEntry,
)

ENTRY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:ledger:journal-entry")
CURRENCY = "EUR"
# Actor recorded on entries stored before events carried one (Posted v1).
UNKNOWN_ACTOR = "unknown (recorded before actors were kept)"


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True)
class Posting:
    account_code: str
    side: Side
    amount_cents: int

    def as_state(self) -> dict[str, Any]:
        return {"account": self.account_code, "side": self.side.value, "cents": self.amount_cents}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Posting:
        return cls(state["account"], Side(state["side"]), int(state["cents"]))


@dataclass(frozen=True)
class Cause:
    """Why an entry exists: the source event (or command) and who triggered it.

    `cause_id` is unique per economic fact, e.g. "hotel:checkout:<booking id>" or the
    id of the source domain event; "manual:<key>" for entries typed in by a person.
    """

    cause_id: str
    actor: str


@dataclass(frozen=True)
class LedgerLimits:
    amount_ceiling_cents: int
    max_description_length: int
    max_entry_lines: int
    max_account_code_length: int
    books_opened_on: date = date(2000, 1, 1)  # no entry dated before (configurable)


def entry_id_for_cause(cause_id: str) -> UUID:
    return uuid5(ENTRY_NAMESPACE, cause_id)


def reversal_cause_id(entry_id: UUID) -> str:
    return f"reversal-of:{entry_id}"


MANUAL_CAUSE_PREFIX = "manual:"


def manual_cause_id(key: str) -> str:
    return f"{MANUAL_CAUSE_PREFIX}{key}"


# The field the ledger names when it refuses an entry's date. A context whose command
# caused the entry names its own input instead (a client maps errors to what it sent).
ENTRY_DATE_FIELD = "effectiveDate"


def check_books_open(
    day: date, books_opened_on: date, *, field: str, whole_month: bool = False
) -> None:
    """Nothing is dated before the books opened (COOP_BOOKS_OPENED_ON): no journal entry,
    and no fact of another context (an enrolment typed as 1900 let stipends be committed
    for months no report covers). With `whole_month`, `day` is a month's first day, and
    a month the books opened in is still in the books."""
    first_allowed = books_opened_on.replace(day=1) if whole_month else books_opened_on
    if day < first_allowed:
        raise ValidationError(
            field,
            f"is before the books opened ({books_opened_on.isoformat()}, "
            "COOP_BOOKS_OPENED_ON): is the year right?",
        )


# The welfare fund's accruals (welfare_fund/process.py) are dated on the day of the
# income they follow, and that income passed the close when it was posted. So an
# accrual dated in a closed period is the fund's share of income saved before the
# close and accrued after it (the follower's lag, or a projector that was down):
# refused, it would stop the follower and every read model behind it.
ACCRUAL_CAUSE_PREFIX = "welfare:accrual:"


def is_accrual_cause(cause_id: str) -> bool:
    """Whether an entry with this cause is one of the welfare fund's accruals: an entry
    the fund derives from income already posted, never one a person types."""
    return cause_id.startswith(ACCRUAL_CAUSE_PREFIX)


def check_period_open(day: date, chart: ChartOfAccounts, *, field: str) -> None:
    """Nothing is dated on or before the day the books are closed through."""
    closed_through = chart.closed_through
    if closed_through is not None and day <= closed_through:
        raise PeriodClosed(field, day, closed_through)


def check_entry_date(
    chart: ChartOfAccounts, effective_date: date, cause_id: str, limits: LedgerLimits
) -> None:
    """Raise unless an entry caused by `cause_id` may be dated `effective_date`."""
    check_books_open(effective_date, limits.books_opened_on, field=ENTRY_DATE_FIELD)
    if not is_accrual_cause(cause_id):
        check_period_open(effective_date, chart, field=ENTRY_DATE_FIELD)


class JournalEntry(Aggregate):
    class Posted(Aggregate.Created):
        # v2 added `actor`: who caused the entry. v1 events get UNKNOWN_ACTOR.
        class_version = 2
        effective_date: date
        description: str
        currency: str
        postings: list[dict[str, Any]]
        cause_id: str
        actor: str
        reverses_entry_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor"] = UNKNOWN_ACTOR

    class Reversed(Aggregate.Event):
        reversal_entry_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, JournalEntry)
            aggregate.reversed_by_entry_id = self.reversal_entry_id

    def __init__(
        self,
        effective_date: date,
        description: str,
        currency: str,
        postings: list[dict[str, Any]],
        cause_id: str,
        actor: str,
        reverses_entry_id: UUID | None,
    ) -> None:
        self.effective_date = effective_date
        self.description = description
        self.currency = currency
        self.postings = tuple(Posting.from_state(p) for p in postings)
        self.cause_id = cause_id
        self.actor = actor
        self.reverses_entry_id = reverses_entry_id
        self.reversed_by_entry_id: UUID | None = None

    @property
    def total_cents(self) -> int:
        return sum(p.amount_cents for p in self.postings if p.side is Side.DEBIT)

    @classmethod
    def post(
        cls,
        *,
        chart: ChartOfAccounts,
        effective_date: date,
        description: str,
        postings: Sequence[Posting],
        cause: Cause,
        limits: LedgerLimits,
        correcting: frozenset[str] = frozenset(),
    ) -> JournalEntry:
        """`correcting`: accounts of an earlier entry this one undoes in part (see
        `check_postings`)."""
        check_entry_date(chart, effective_date, cause.cause_id, limits)
        # The limits on amounts and on descriptions' length guard what people type. An
        # accrual is derived: its amount is a share of a day's income (each line of
        # which passed the ceiling, their sum need not) and its description is written
        # by the fund. Refused, it would stop the follower and every read model behind
        # it, for good: the follower retries the same page.
        derived = is_accrual_cause(cause.cause_id)
        description = _checked_description(description, limits, derived=derived)
        check_postings(chart, postings, limits, correcting=correcting)
        if not derived:
            check_amount_ceiling(postings, limits)
        if not cause.cause_id or len(cause.cause_id) > 300:
            raise ValidationError("cause", "cause id must be 1 to 300 characters")
        return cls._create(
            cls.Posted,
            id=entry_id_for_cause(cause.cause_id),
            effective_date=effective_date,
            description=description,
            currency=CURRENCY,
            postings=[p.as_state() for p in postings],
            cause_id=cause.cause_id,
            actor=cause.actor,
            reverses_entry_id=None,
        )

    def reverse(
        self,
        *,
        chart: ChartOfAccounts,
        effective_date: date,
        description: str,
        actor: str,
        limits: LedgerLimits,
    ) -> JournalEntry:
        """Record on this entry that it is reversed and return the reversing entry.

        Both must be saved together: the Reversed event is what makes a second
        reversal (even a concurrent one) collide.
        """
        if self.reversed_by_entry_id is not None:
            raise EntryAlreadyReversed(
                f"entry {self.id} was already reversed by {self.reversed_by_entry_id}"
            )
        if self.reverses_entry_id is not None:
            raise EntryAlreadyReversed(
                f"entry {self.id} is itself a reversal; post a new entry instead"
            )
        # First: an entry in a closed period is reversed after the close, which also
        # puts the reversal after the entry.
        check_period_open(effective_date, chart, field=ENTRY_DATE_FIELD)
        if effective_date < self.effective_date:
            raise ValidationError(
                "effectiveDate", "a reversal cannot be dated before the entry it reverses"
            )
        description = _checked_description(description, limits)
        mirrored = [
            Posting(
                p.account_code,
                Side.CREDIT if p.side is Side.DEBIT else Side.DEBIT,
                p.amount_cents,
            )
            for p in self.postings
        ]
        # Accounts closed since the original was posted may still be reversed into:
        # a correction must always be possible, so only existence is checked here.
        for index, posting in enumerate(mirrored):
            if posting.account_code not in chart.accounts:
                raise ValidationError(f"postings[{index}].account", "unknown account")
        cause_id = reversal_cause_id(self.id)
        reversal = JournalEntry._create(
            JournalEntry.Posted,
            id=entry_id_for_cause(cause_id),
            effective_date=effective_date,
            description=description,
            currency=self.currency,
            postings=[p.as_state() for p in mirrored],
            cause_id=cause_id,
            actor=actor,
            reverses_entry_id=self.id,
        )
        self.trigger_event(self.Reversed, reversal_entry_id=reversal.id)
        return reversal


def _checked_description(description: str, limits: LedgerLimits, *, derived: bool = False) -> str:
    """`derived`: an accrual's, written by the fund (see `JournalEntry.post`), not
    held to COOP_MAX_DESCRIPTION_LENGTH."""
    description = description.strip()
    if not description:
        raise ValidationError("description", "must not be empty")
    if not derived and len(description) > limits.max_description_length:
        raise ValidationError(
            "description", f"must be at most {limits.max_description_length} characters"
        )
    return description


def check_postings(
    chart: ChartOfAccounts,
    postings: Sequence[Posting],
    limits: LedgerLimits,
    *,
    correcting: frozenset[str] = frozenset(),
) -> None:
    """Raise unless `postings` make a valid entry on `chart`: the only part of an
    entry's validity that depends on the chart (the rest is fixed by the request).

    `correcting`: the accounts of an earlier entry this one undoes in part (a shop
    refund: the sale's revenue and VAT accounts). They may have been closed since, and
    still take it, as they would take the earlier entry's reversal."""
    if len(postings) < 2:
        raise ValidationError("postings", "an entry needs at least two postings")
    if len(postings) > limits.max_entry_lines:
        raise ValidationError("postings", f"an entry has at most {limits.max_entry_lines} postings")
    debit_cents = credit_cents = 0
    for index, posting in enumerate(postings):
        field = f"postings[{index}]"
        check_account_code(
            posting.account_code,
            field=f"{field}.account",
            max_length=limits.max_account_code_length,
        )
        chart.postable(
            posting.account_code,
            field=f"{field}.account",
            correcting=posting.account_code in correcting,
        )
        if type(posting.amount_cents) is not int:
            raise ValidationError(f"{field}.amount", "amount must be integer cents")
        if posting.amount_cents <= 0:
            raise ValidationError(f"{field}.amount", "amount must be greater than zero")
        if posting.side is Side.DEBIT:
            debit_cents += posting.amount_cents
        else:
            credit_cents += posting.amount_cents
    if debit_cents != credit_cents:
        raise UnbalancedEntry(debit_cents, credit_cents)


def check_amount_ceiling(postings: Sequence[Posting], limits: LedgerLimits) -> None:
    """Raise if a posting is above the amount ceiling (COOP_AMOUNT_CEILING_CENTS).

    Apart from `check_postings`: the ceiling does not depend on the chart, so a save
    re-checked against a changed chart need not see it again, and an accrual (see
    `is_accrual_cause`) is exempt from it."""
    for index, posting in enumerate(postings):
        check_positive_amount(
            posting.amount_cents,
            field=f"postings[{index}].amount",
            ceiling_cents=limits.amount_ceiling_cents,
        )


def kept_accounts_in(
    postings: Sequence[Posting], kept: Sequence[KeptAccount]
) -> list[tuple[int, KeptAccount]]:
    """The postings (index, account) that touch an account a context keeps."""
    by_code = {k.code: k for k in kept}
    return [
        (index, by_code[p.account_code])
        for index, p in enumerate(postings)
        if p.account_code in by_code
    ]


def check_not_kept(code: str, kept: Sequence[KeptAccount], *, field: str, context: str) -> None:
    """Refuse a context's configuration that would have it post to an account another
    context keeps (a shop cash reason or a hotel VAT account set to 2400 would move the
    fund's payable without the fund knowing)."""
    for account in kept:
        if account.code == code:
            raise ValidationError(
                field,
                f"account {code!r} is kept by {account.kept_by}; {context} may not post to it",
            )


def check_hand_postings(postings: Sequence[Posting], kept: Sequence[KeptAccount]) -> None:
    """Refuse an entry by hand that touches an account a context keeps (see
    KeptAccount); contexts post there through `prepare_entry`, never through this."""
    found = kept_accounts_in(postings, kept)
    if found:
        index, account = found[0]
        raise AccountKeptByContext(
            f"postings[{index}].account",
            account.code,
            account.kept_by,
            account.figure,
            account.use_instead,
        )

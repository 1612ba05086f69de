"""Donations: money (posted), goods in kind and volunteer time (reported, never posted).

A donor's name is personal data: it stays on the donation record, never in a ledger
description, an error message or a log line. So does a reversal's reason (free text,
which may name the donor).

A donation recorded wrong is corrected by a reversal, never an edit: the record says
it was reversed (once), and a money donation's journal entry is reversed in the same
save; the right donation is then recorded anew.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from services.common.errors import Conflict, ValidationError
from services.common.money import check_positive_amount
from services.ledger.domain.facts import (
    LedgerFact,
    check_not_future,
    checked_reversal,
    checked_text,
    credit,
    debit,
    short_id,
)
from services.ledger.domain.funding_accounts import FundingAccounts
from services.ledger.domain.journal import entry_id_for_cause, reversal_cause_id

DONATION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:donation")
NON_CASH_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:non-cash")
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 500
MINUTES_PER_HOUR = 60
# One record is one person's shift or one day's work: a bound catches typos.
MAX_VOLUNTEER_MINUTES = 24 * MINUTES_PER_HOUR


class DonationMethod(StrEnum):
    CASH = "cash"
    BANK = "bank"


def donation_id_for(idempotency_key: str) -> UUID:
    return uuid5(DONATION_NAMESPACE, idempotency_key)


def non_cash_id_for(idempotency_key: str) -> UUID:
    return uuid5(NON_CASH_NAMESPACE, idempotency_key)


def donation_cause_id(donation_id: UUID) -> str:
    return f"funding:donation:{donation_id}"


def donation_entry_id(donation_id: UUID) -> UUID:
    """The journal entry a money donation posted (derived from its cause)."""
    return entry_id_for_cause(donation_cause_id(donation_id))


def donation_reversal_entry_id(donation_id: UUID) -> UUID:
    """The entry that reverses it: the ledger derives a reversal's id from the original's."""
    return entry_id_for_cause(reversal_cause_id(donation_entry_id(donation_id)))


class DonationAlreadyReversed(Conflict):
    pass


class Donation(Aggregate):
    class Recorded(Aggregate.Created):
        received_on: date
        amount_cents: int
        restricted: bool
        method: str
        donor: str | None
        purpose: str | None

    class Reversed(Aggregate.Event):
        reversed_on: date
        reason: str
        reversal_entry_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Donation)
            aggregate.reversed_on = self.reversed_on
            aggregate.reversal_reason = self.reason
            aggregate.reversal_entry_id = self.reversal_entry_id

    def __init__(
        self,
        received_on: date,
        amount_cents: int,
        restricted: bool,
        method: str,
        donor: str | None,
        purpose: str | None,
    ) -> None:
        self.received_on = received_on
        self.amount_cents = amount_cents
        self.restricted = restricted
        self.method = DonationMethod(method)
        self.donor = donor
        self.purpose = purpose
        self.reversed_on: date | None = None
        self.reversal_reason: str | None = None
        self.reversal_entry_id: UUID | None = None

    @property
    def entry_id(self) -> UUID:
        return donation_entry_id(self.id)

    @classmethod
    def record(
        cls,
        *,
        donation_id: UUID,
        received_on: date,
        amount_cents: int,
        restricted: bool,
        method: DonationMethod,
        donor: str | None,
        purpose: str | None,
        today: date,
        ceiling_cents: int,
    ) -> Donation:
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        check_not_future(received_on, today, field="date", what="a donation")
        donor = _optional_text(donor, field="donor", max_length=MAX_NAME_LENGTH)
        purpose = _optional_text(purpose, field="purpose", max_length=MAX_TEXT_LENGTH)
        if restricted and purpose is None:
            raise ValidationError("purpose", "a restricted donation names its purpose")
        return cls._create(
            cls.Recorded,
            id=donation_id,
            received_on=received_on,
            amount_cents=amount_cents,
            restricted=restricted,
            method=method.value,
            donor=donor,
            purpose=purpose,
        )

    def ledger_fact(self, accounts: FundingAccounts) -> LedgerFact:
        money_account = accounts.cash if self.method is DonationMethod.CASH else accounts.bank
        return LedgerFact(
            cause_id=donation_cause_id(self.id),
            effective_date=self.received_on,
            # The donation id, never the donor: descriptions are read by many.
            description=f"Donation {self._label()}",
            postings=(
                debit(money_account, self.amount_cents),
                credit(accounts.donations(restricted=self.restricted), self.amount_cents),
            ),
        )

    def _label(self) -> str:
        kind = "restricted" if self.restricted else "unrestricted"
        return f"{short_id(self.id)} ({kind}, {self.method.value})"

    def reverse(self, *, reversed_on: date, reason: str, today: date) -> str:
        """Record that this donation is reversed; return the description of the
        reversing journal entry, which the caller makes with `JournalEntry.reverse` on
        `entry_id` and saves with this record (so they never disagree).

        At most once: a second reversal, even a concurrent one, collides here.
        """
        if self.reversed_on is not None:
            raise DonationAlreadyReversed(
                f"donation {self.id} was already reversed on {self.reversed_on.isoformat()}"
            )
        reason = checked_reversal(
            reversed_on, reason, recorded_on=self.received_on, today=today, what="donation"
        )
        self.trigger_event(
            self.Reversed,
            reversed_on=reversed_on,
            reason=reason,
            reversal_entry_id=donation_reversal_entry_id(self.id),
        )
        # As the donation's own entry: its id, never the donor nor the reason.
        return f"Reversal of donation {self._label()}"


class NonCashKind(StrEnum):
    IN_KIND = "in_kind"
    VOLUNTEER_TIME = "volunteer_time"


class NonCashContribution(Aggregate):
    """Goods given in kind or hours volunteered, at fair value. Reported, not posted:
    no money moved, so nothing reaches cash, revenue or the welfare fund's base."""

    class Recorded(Aggregate.Created):
        kind: str
        contributed_on: date
        description: str
        fair_value_cents: int
        minutes: int | None
        hourly_fair_value_cents: int | None
        restricted: bool
        donor: str | None

    class Reversed(Aggregate.Event):
        reversed_on: date
        reason: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, NonCashContribution)
            aggregate.reversed_on = self.reversed_on
            aggregate.reversal_reason = self.reason

    def __init__(
        self,
        kind: str,
        contributed_on: date,
        description: str,
        fair_value_cents: int,
        minutes: int | None,
        hourly_fair_value_cents: int | None,
        restricted: bool,
        donor: str | None,
    ) -> None:
        self.kind = NonCashKind(kind)
        self.contributed_on = contributed_on
        self.description = description
        self.fair_value_cents = fair_value_cents
        self.minutes = minutes
        self.hourly_fair_value_cents = hourly_fair_value_cents
        self.restricted = restricted
        self.donor = donor
        self.reversed_on: date | None = None
        self.reversal_reason: str | None = None

    @classmethod
    def in_kind(
        cls,
        *,
        contribution_id: UUID,
        contributed_on: date,
        description: str,
        fair_value_cents: int,
        restricted: bool,
        donor: str | None,
        today: date,
        ceiling_cents: int,
    ) -> NonCashContribution:
        description = checked_text(description, field="description", max_length=MAX_TEXT_LENGTH)
        check_positive_amount(fair_value_cents, field="fairValue", ceiling_cents=ceiling_cents)
        check_not_future(contributed_on, today, field="date", what="a donation in kind")
        return cls._create(
            cls.Recorded,
            id=contribution_id,
            kind=NonCashKind.IN_KIND.value,
            contributed_on=contributed_on,
            description=description,
            fair_value_cents=fair_value_cents,
            minutes=None,
            hourly_fair_value_cents=None,
            restricted=restricted,
            donor=_optional_text(donor, field="donor", max_length=MAX_NAME_LENGTH),
        )

    @classmethod
    def volunteer_time(
        cls,
        *,
        contribution_id: UUID,
        contributed_on: date,
        activity: str,
        minutes: int,
        hourly_fair_value_cents: int,
        today: date,
        ceiling_cents: int,
    ) -> NonCashContribution:
        activity = checked_text(activity, field="activity", max_length=MAX_TEXT_LENGTH)
        if not 1 <= minutes <= MAX_VOLUNTEER_MINUTES:
            raise ValidationError("minutes", f"must be between 1 and {MAX_VOLUNTEER_MINUTES}")
        check_positive_amount(
            hourly_fair_value_cents, field="hourlyFairValue", ceiling_cents=ceiling_cents
        )
        check_not_future(contributed_on, today, field="date", what="volunteer time")
        # Fair value = minutes x hourly value / 60, rounded half up to the cent.
        fair_value_cents = (2 * minutes * hourly_fair_value_cents + MINUTES_PER_HOUR) // (
            2 * MINUTES_PER_HOUR
        )
        return cls._create(
            cls.Recorded,
            id=contribution_id,
            kind=NonCashKind.VOLUNTEER_TIME.value,
            contributed_on=contributed_on,
            description=activity,
            fair_value_cents=fair_value_cents,
            minutes=minutes,
            hourly_fair_value_cents=hourly_fair_value_cents,
            restricted=False,
            # Volunteers are not named: the shop attributes sales, not the fund's report.
            donor=None,
        )

    def reverse(self, *, reversed_on: date, reason: str, today: date) -> None:
        """Record that this contribution is reversed (at most once). Nothing was posted,
        so there is nothing to reverse in the ledger: it just stops counting."""
        if self.reversed_on is not None:
            raise DonationAlreadyReversed(
                f"contribution {self.id} was already reversed on {self.reversed_on.isoformat()}"
            )
        what = "donation in kind" if self.kind is NonCashKind.IN_KIND else "volunteer time record"
        reason = checked_reversal(
            reversed_on, reason, recorded_on=self.contributed_on, today=today, what=what
        )
        self.trigger_event(self.Reversed, reversed_on=reversed_on, reason=reason)


def _optional_text(value: str | None, *, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    value = checked_text(value, field=field, max_length=max_length, required=False)
    return value or None


# What an audit output says in place of an event that may name a donor.
DONOR_WITHHELD = "donor"

# Commands whose request may name a donor (the name, or a reversal's reason): their
# claim's request digest would confirm a guessed name.
OPERATIONS_NAMING_A_DONOR = frozenset({"recordDonation", "recordInKindDonation", "reverseDonation"})


def may_name_a_donor(topic: str, state: dict[str, Any]) -> bool:
    """Whether a donation's or contribution's stored event (its topic, its state as
    JSON) may name a donor: a record with a donor, or any reversal (its reason may
    name them, as in "the donor asked to stay anonymous"). The donor is for admins
    only (docs/funding.md): audit outputs withhold such an event whole."""
    if topic in _REVERSALS:
        return True
    return topic in _RECORDS and state.get("donor") is not None


_RECORDS = frozenset({get_topic(Donation.Recorded), get_topic(NonCashContribution.Recorded)})
_REVERSALS = frozenset({get_topic(Donation.Reversed), get_topic(NonCashContribution.Reversed)})
# Every topic `may_name_a_donor` may say yes to.
DONATION_TOPICS = _RECORDS | _REVERSALS

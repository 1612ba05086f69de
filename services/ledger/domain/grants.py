"""Grants: awarded in tranches, each paid on a condition; revenue when conditions are met.

Accounting (DOMAIN.md, "Public contracts and grants"):
- awarding posts nothing: a conditional promise is not yet income (reported only);
- a tranche received before its condition is met is a refundable advance (liability);
- meeting the condition turns the tranche into revenue: out of the advance if the
  money came, else against a grant receivable that the later receipt settles;
- restricted grants post to restricted revenue, so they never become the welfare
  fund's redistributable base by accident;
- a receipt recorded wrong (on the wrong tranche, or before the money came) is
  reversed, never edited: the tranche is not received any more and the receipt's
  journal entry is reversed in the same save, unless a later step (the condition met
  out of the advance, a pro-rata cut, the closing) was decided on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, ValidationError
from services.common.money import check_positive_amount, format_cents
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

GRANT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:grant")
MAX_TRANCHES = 24
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 500
# A tranche is received once; each correction is a reversal and a new receipt. The
# bound keeps a tranche's receipt history short (and catches a loop of mistakes).
MAX_RECEIPTS_PER_TRANCHE = 10


def grant_id_for(idempotency_key: str) -> UUID:
    return uuid5(GRANT_NAMESPACE, idempotency_key)


def receipt_cause_id(grant_id: UUID, number: int, receipt: int) -> str:
    """Receipt `receipt` (from 1) of tranche `number`: the cause of its journal entry.
    The first keeps the cause it always had; a receipt after a reversal gets its own."""
    cause = f"funding:grant:{grant_id}:tranche:{number}:received"
    return cause if receipt == 1 else f"{cause}:{receipt}"


def receipt_entry_id(grant_id: UUID, number: int, receipt: int) -> UUID:
    return entry_id_for_cause(receipt_cause_id(grant_id, number, receipt))


def receipt_reversal_entry_id(grant_id: UUID, number: int, receipt: int) -> UUID:
    """The entry that reverses it: the ledger derives a reversal's id from the original's."""
    return entry_id_for_cause(reversal_cause_id(receipt_entry_id(grant_id, number, receipt)))


class TrancheAlreadyReceived(Conflict):
    pass


class GrantClosed(Conflict):
    pass


class ReceiptNotReversible(Conflict):
    """A tranche's receipt cannot be reversed: it is not received (any more), or a
    later step was decided on it and must be undone first."""


@dataclass(frozen=True)
class TrancheTerms:
    amount_cents: int
    condition: str
    expected_on: date | None


@dataclass(frozen=True)
class DatedFact:
    """A fact already recorded on a grant, as a later fact's date is checked against it."""

    on: date
    name: str  # e.g. "the receipt of tranche 2": shown in a refusal, never personal data


@dataclass
class Tranche:
    number: int  # 1-based, as people count them
    amount_cents: int
    condition: str
    expected_on: date | None
    received_on: date | None = None
    condition_met_on: date | None = None
    cancelled_on: date | None = None  # the grant was closed before it was paid
    receipts: int = 0  # receipts recorded, reversed ones included: the last one's number
    # The current receipt settled a receivable (condition met first), not an advance.
    receipt_settled_receivable: bool = False
    receipt_reversed_on: date | None = None  # the last reversal of a receipt
    latest_reversal_on: date | None = None  # the latest-dated reversal of any receipt

    @property
    def is_settled(self) -> bool:
        return self.cancelled_on is not None or self.amount_cents == 0

    def receipt_fact(self) -> list[DatedFact]:
        if self.received_on is None:
            return []
        return [DatedFact(self.received_on, f"the receipt of tranche {self.number}")]

    def condition_fact(self) -> list[DatedFact]:
        if self.condition_met_on is None:
            return []
        return [DatedFact(self.condition_met_on, f"the condition of tranche {self.number} met")]

    def facts(self) -> list[DatedFact]:
        """Every dated fact recorded on this tranche (a reversed receipt is dated on or
        before its reversal, so the latest reversal stands for them)."""
        reversal = (
            []
            if self.latest_reversal_on is None
            else [
                DatedFact(
                    self.latest_reversal_on, f"the reversal of a receipt of tranche {self.number}"
                )
            ]
        )
        return [*self.receipt_fact(), *self.condition_fact(), *reversal]


class Grant(Aggregate):
    class Awarded(Aggregate.Created):
        funder: str
        purpose: str
        amount_cents: int
        restricted: bool
        public_funder: bool
        awarded_on: date
        tranches: list[dict[str, Any]]

    class TrancheReceived(Aggregate.Event):
        number: int
        received_on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Grant)
            tranche = aggregate.tranche(self.number)
            tranche.received_on = self.received_on
            tranche.receipts += 1
            tranche.receipt_settled_receivable = tranche.condition_met_on is not None

    class TrancheReceiptReversed(Aggregate.Event):
        number: int
        receipt: int  # which receipt of the tranche (1 = the first)
        reversed_on: date
        reason: str
        reversal_entry_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Grant)
            tranche = aggregate.tranche(self.number)
            tranche.received_on = None
            tranche.receipt_settled_receivable = False
            tranche.receipt_reversed_on = self.reversed_on
            tranche.latest_reversal_on = max(
                self.reversed_on, tranche.latest_reversal_on or self.reversed_on
            )

    class ConditionMet(Aggregate.Event):
        number: int
        met_on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Grant)
            aggregate.tranche(self.number).condition_met_on = self.met_on

    class ReducedProRata(Aggregate.Event):
        reduced_on: date
        budget_cents: int
        reported_cents: int
        amounts_cents: list[int]  # every tranche's amount after the cut

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Grant)
            for tranche, amount in zip(aggregate.tranches, self.amounts_cents, strict=True):
                tranche.amount_cents = amount
            aggregate.reduced_on = self.reduced_on
            # The cut was shared out on the tranches unpaid then: it depends on these.
            aggregate.received_at_reduction = frozenset(
                t.number for t in aggregate.tranches if t.received_on is not None
            )

    class Closed(Aggregate.Event):
        closed_on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Grant)
            for tranche in aggregate.tranches:
                if tranche.received_on is None and tranche.amount_cents > 0:
                    tranche.cancelled_on = self.closed_on
            aggregate.closed_on = self.closed_on

    def __init__(
        self,
        funder: str,
        purpose: str,
        amount_cents: int,
        restricted: bool,
        public_funder: bool,
        awarded_on: date,
        tranches: list[dict[str, Any]],
    ) -> None:
        self.funder = funder
        self.purpose = purpose
        self.original_amount_cents = amount_cents
        self.restricted = restricted
        self.public_funder = public_funder
        self.awarded_on = awarded_on
        self.tranches = [
            Tranche(
                number=index + 1,
                amount_cents=int(t["amount_cents"]),
                condition=t["condition"],
                expected_on=t["expected_on"],
            )
            for index, t in enumerate(tranches)
        ]
        self.reduced_on: date | None = None
        self.received_at_reduction: frozenset[int] = frozenset()
        self.closed_on: date | None = None

    @property
    def amount_cents(self) -> int:
        """The award as it stands (after any pro-rata cut)."""
        return sum(t.amount_cents for t in self.tranches)

    # -- commands --------------------------------------------------------------

    @classmethod
    def award(
        cls,
        *,
        grant_id: UUID,
        funder: str,
        purpose: str,
        amount_cents: int,
        restricted: bool,
        public_funder: bool,
        awarded_on: date,
        tranches: list[TrancheTerms],
        today: date,
        ceiling_cents: int,
    ) -> Grant:
        funder = checked_text(funder, field="funder", max_length=MAX_NAME_LENGTH)
        purpose = checked_text(purpose, field="purpose", max_length=MAX_TEXT_LENGTH)
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        check_not_future(awarded_on, today, field="awardedOn", what="an award")
        if not tranches:
            raise ValidationError("tranches", "a grant has at least one tranche")
        if len(tranches) > MAX_TRANCHES:
            raise ValidationError("tranches", f"a grant has at most {MAX_TRANCHES} tranches")
        states: list[dict[str, Any]] = []
        for index, terms in enumerate(tranches):
            field = f"tranches[{index}]"
            check_positive_amount(
                terms.amount_cents, field=f"{field}.amount", ceiling_cents=ceiling_cents
            )
            condition = checked_text(
                terms.condition, field=f"{field}.condition", max_length=MAX_TEXT_LENGTH
            )
            if terms.expected_on is not None and terms.expected_on < awarded_on:
                raise ValidationError(
                    f"{field}.expectedDate", "a tranche cannot be expected before the award"
                )
            states.append(
                {
                    "amount_cents": terms.amount_cents,
                    "condition": condition,
                    "expected_on": terms.expected_on,
                }
            )
        total_cents = sum(t.amount_cents for t in tranches)
        if total_cents != amount_cents:
            raise ValidationError(
                "tranches",
                f"tranches sum to {format_cents(total_cents)}, "
                f"the award is {format_cents(amount_cents)}",
            )
        return cls._create(
            cls.Awarded,
            id=grant_id,
            funder=funder,
            purpose=purpose,
            amount_cents=amount_cents,
            restricted=restricted,
            public_funder=public_funder,
            awarded_on=awarded_on,
            tranches=states,
        )

    def tranche(self, number: int) -> Tranche:
        if not 1 <= number <= len(self.tranches):
            raise ValidationError(
                "tranche", f"grant {self.id} has tranches 1 to {len(self.tranches)}"
            )
        return self.tranches[number - 1]

    def receive_tranche(
        self, number: int, received_on: date, *, today: date, accounts: FundingAccounts
    ) -> LedgerFact:
        self._check_open()
        tranche = self.tranche(number)
        self._check_date(received_on, today, field="date", what="a receipt")
        if tranche.received_on is not None:
            raise TrancheAlreadyReceived(
                f"tranche {number} of grant {self.id} was already received on "
                f"{tranche.received_on.isoformat()}"
            )
        if tranche.amount_cents == 0:
            raise Conflict(f"tranche {number} of grant {self.id} was cut to zero")
        if tranche.receipts >= MAX_RECEIPTS_PER_TRANCHE:
            raise Conflict(
                f"tranche {number} of grant {self.id} was already received "
                f"{MAX_RECEIPTS_PER_TRANCHE} times (reversed receipts included)"
            )
        # Money dated before its condition was met is an advance the condition released:
        # recorded after the condition, it would settle a receivable not yet posted.
        _check_not_before(received_on, tranche.condition_fact(), field="date", what="a receipt")
        self.trigger_event(self.TrancheReceived, number=number, received_on=received_on)
        amount = tranche.amount_cents
        if tranche.condition_met_on is None:
            # Money before the condition: it must go back if the condition fails.
            description = (
                f"Grant {short_id(self.id)} tranche {number} received before its condition: "
                "refundable advance"
            )
            postings = (
                debit(accounts.bank, amount),
                credit(accounts.refundable_grant_advances, amount),
            )
        else:
            description = f"Grant {short_id(self.id)} tranche {number} received: receivable settled"
            postings = (debit(accounts.bank, amount), credit(accounts.grants_receivable, amount))
        return LedgerFact(
            cause_id=receipt_cause_id(self.id, number, tranche.receipts),
            effective_date=received_on,
            description=description,
            postings=postings,
        )

    def reverse_receipt(
        self, number: int, *, reversed_on: date, reason: str, today: date
    ) -> tuple[UUID, str]:
        """Record that tranche `number`'s receipt is reversed: the tranche is not
        received any more and can be received again. Return the id of the receipt's
        journal entry and the description of its reversal, which the caller makes with
        `JournalEntry.reverse` and saves with this grant (so they never disagree).

        Refused when a later step was decided on the receipt: the condition met out of
        the advance it made, a pro-rata cut shared out on the tranches unpaid then, the
        closing. At most once per receipt: a second reversal, even a concurrent one,
        collides here.
        """
        tranche = self.tranche(number)
        what = f"tranche {number} of grant {self.id}"
        if tranche.received_on is None:
            if tranche.receipt_reversed_on is not None:
                raise ReceiptNotReversible(
                    f"the receipt of {what} was already reversed on "
                    f"{tranche.receipt_reversed_on.isoformat()}; it is not received"
                )
            raise ReceiptNotReversible(f"{what} was not received: there is no receipt to reverse")
        # Which steps depend on the receipt is a matter of what was recorded first, so
        # the messages say that and give both dates: a grant recorded before the dates
        # were kept in order may have a cut or a closing dated before the receipt.
        received = f"tranche {number} received ({tranche.received_on.isoformat()})"
        if self.closed_on is not None:
            raise GrantClosed(
                f"grant {self.id} was closed on {self.closed_on.isoformat()} with {received}: "
                "the closing settled the grant on what was received and must be undone "
                "first (reopening a grant is not supported)"
            )
        if number in self.received_at_reduction:
            assert self.reduced_on is not None
            raise ReceiptNotReversible(
                f"grant {self.id} was cut pro rata on {self.reduced_on.isoformat()} with "
                f"{received}: the cut was shared out on the tranches unpaid then and must "
                "be undone first (undoing a cut is not supported)"
            )
        if tranche.condition_met_on is not None and not tranche.receipt_settled_receivable:
            raise ReceiptNotReversible(
                f"the condition of {what} was met on {tranche.condition_met_on.isoformat()}, "
                "after its receipt, turning the advance into revenue: that must be undone "
                "first (undoing a condition met is not supported)"
            )
        reason = checked_reversal(
            reversed_on, reason, recorded_on=tranche.received_on, today=today, what="receipt"
        )
        receipt = tranche.receipts
        self.trigger_event(
            self.TrancheReceiptReversed,
            number=number,
            receipt=receipt,
            reversed_on=reversed_on,
            reason=reason,
            reversal_entry_id=receipt_reversal_entry_id(self.id, number, receipt),
        )
        # Ids only, as the receipt's own entry: never the funder nor the reason.
        description = f"Reversal of grant {short_id(self.id)} tranche {number} receipt {receipt}"
        return receipt_entry_id(self.id, number, receipt), description

    def meet_condition(
        self, number: int, met_on: date, *, today: date, accounts: FundingAccounts
    ) -> LedgerFact:
        self._check_open()
        tranche = self.tranche(number)
        self._check_date(met_on, today, field="date", what="a condition")
        if tranche.condition_met_on is not None:
            raise Conflict(
                f"the condition of tranche {number} of grant {self.id} was already met on "
                f"{tranche.condition_met_on.isoformat()}"
            )
        if tranche.amount_cents == 0:
            raise Conflict(f"tranche {number} of grant {self.id} was cut to zero")
        # Otherwise the advance would be released before it existed.
        _check_not_before(met_on, tranche.receipt_fact(), field="date", what="a condition")
        self.trigger_event(self.ConditionMet, number=number, met_on=met_on)
        amount = tranche.amount_cents
        revenue = accounts.grant_revenue(restricted=self.restricted)
        source = (
            accounts.refundable_grant_advances
            if tranche.received_on is not None
            else accounts.grants_receivable
        )
        return LedgerFact(
            cause_id=f"funding:grant:{self.id}:tranche:{number}:condition-met",
            effective_date=met_on,
            description=f"Grant {short_id(self.id)} tranche {number} condition met: revenue",
            postings=(debit(source, amount), credit(revenue, amount)),
        )

    def reduce_pro_rata(
        self,
        *,
        budget_cents: int,
        reported_cents: int,
        reduced_on: date,
        today: date,
        ceiling_cents: int,
        accounts: FundingAccounts,
    ) -> LedgerFact | None:
        """Cut the award to award x reported / budget, from the last unpaid tranche back.

        Rounding: the new award is floored to the cent, so the funder never pays more
        than its exact share. Only money not yet received can be cut; a cut that
        would need a refund is refused (refunds are not modelled yet).
        """
        self._check_open()
        # Once only, whatever the date: a second cut dated before the first was told to
        # change its date, and then refused as a second cut.
        if self.reduced_on is not None:
            raise Conflict(f"grant {self.id} was already reduced on {self.reduced_on.isoformat()}")
        self._check_date(reduced_on, today, field="date", what="a reduction")
        # The cut is shared out on the tranches unpaid and cuts the revenue recognised
        # as recorded now: dated earlier, it would cut revenue before it was posted.
        _check_not_before(reduced_on, self.facts(), field="date", what="a reduction")
        check_positive_amount(budget_cents, field="budgetedCosts", ceiling_cents=ceiling_cents)
        check_positive_amount(reported_cents, field="reportedCosts", ceiling_cents=ceiling_cents)
        if reported_cents >= budget_cents:
            raise ValidationError("reportedCosts", "costs are not under budget: nothing to reduce")
        current = self.amount_cents
        new_total = current * reported_cents // budget_cents
        cut = current - new_total
        unpaid = sum(t.amount_cents for t in self.tranches if t.received_on is None)
        if cut > unpaid:
            raise Conflict(
                f"the cut of {format_cents(cut)} exceeds the {format_cents(unpaid)} not yet "
                f"received on grant {self.id}; refunds are not supported"
            )
        amounts = [t.amount_cents for t in self.tranches]
        recognised_cut = 0
        remaining = cut
        for tranche in reversed(self.tranches):
            if remaining == 0:
                break
            if tranche.received_on is not None:
                continue
            part = min(remaining, tranche.amount_cents)
            amounts[tranche.number - 1] -= part
            remaining -= part
            if tranche.condition_met_on is not None:
                recognised_cut += part
        self.trigger_event(
            self.ReducedProRata,
            reduced_on=reduced_on,
            budget_cents=budget_cents,
            reported_cents=reported_cents,
            amounts_cents=amounts,
        )
        if recognised_cut == 0:
            return None  # only unrecognised promises shrank: nothing was posted for them
        return LedgerFact(
            cause_id=f"funding:grant:{self.id}:reduced",
            effective_date=reduced_on,
            description=f"Grant {short_id(self.id)} reduced pro rata: revenue receivable cut",
            postings=(
                debit(accounts.grant_revenue(restricted=self.restricted), recognised_cut),
                credit(accounts.grants_receivable, recognised_cut),
            ),
        )

    def close(
        self, closed_on: date, *, today: date, accounts: FundingAccounts
    ) -> LedgerFact | None:
        """Final settlement: what was not received will not come.

        Refused while an advance is held (received, condition not met): that money is
        either earned or owed back, and the grant must say which first.
        """
        self._check_open()
        self._check_date(closed_on, today, field="date", what="a closure")
        # It cancels what is unpaid and writes off what is recognised as recorded now:
        # dated earlier, a receipt would come after the closing, a write-off before its
        # revenue.
        _check_not_before(closed_on, self.facts(), field="date", what="a closure")
        held = [
            t.number
            for t in self.tranches
            if t.received_on is not None and t.condition_met_on is None and t.amount_cents
        ]
        if held:
            raise Conflict(
                f"grant {self.id} holds advances on tranche(s) "
                f"{', '.join(str(n) for n in held)} whose conditions are not met"
            )
        written_off = sum(
            t.amount_cents
            for t in self.tranches
            if t.received_on is None and t.condition_met_on is not None
        )
        self.trigger_event(self.Closed, closed_on=closed_on)
        if written_off == 0:
            return None
        return LedgerFact(
            cause_id=f"funding:grant:{self.id}:closed",
            effective_date=closed_on,
            description=f"Grant {short_id(self.id)} closed: unpaid receivable written off",
            postings=(
                debit(accounts.grant_revenue(restricted=self.restricted), written_off),
                credit(accounts.grants_receivable, written_off),
            ),
        )

    def facts(self) -> list[DatedFact]:
        """Every dated fact recorded on the grant: what a cut or a closing settles on."""
        facts = [DatedFact(self.awarded_on, "the award")]
        for tranche in self.tranches:
            facts.extend(tranche.facts())
        if self.reduced_on is not None:
            facts.append(DatedFact(self.reduced_on, "the pro-rata cut"))
        return facts

    def _check_open(self) -> None:
        if self.closed_on is not None:
            raise GrantClosed(f"grant {self.id} was closed on {self.closed_on.isoformat()}")

    def _check_date(self, day: date, today: date, *, field: str, what: str) -> None:
        check_not_future(day, today, field=field, what=what)
        if day < self.awarded_on:
            raise ValidationError(field, f"{what} cannot be dated before the award")


def _check_not_before(day: date, facts: Iterable[DatedFact], *, field: str, what: str) -> None:
    """One rule for the order of a grant's facts, used by every command that adds one:
    a fact is not dated before a fact it depends on that is already recorded. Else the
    ledger would show, between the two dates, an effect before its cause (a negative
    receivable, revenue written off before it was recognised)."""
    latest = max(facts, key=lambda fact: fact.on, default=None)
    if latest is not None and day < latest.on:
        raise ValidationError(
            field,
            f"{what} cannot be dated before {latest.name} ({latest.on.isoformat()}), "
            "already recorded on the grant",
        )

"""Disbursements: committed (funds reserved), approved by the territorial enterprise,
paid (in one or more payments, never beyond the approval), or cancelled (the unpaid
rest released)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.auth import is_person_actor
from services.common.errors import Conflict, ValidationError
from services.welfare_fund.domain.errors import (
    ApprovalByCommitter,
    PaymentByApprover,
    PaymentExceedsApproval,
    PersonRequired,
)
from services.welfare_fund.domain.policy import Program, Support

DISBURSEMENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:welfare-fund:disbursement")


class DisbursementKind(StrEnum):
    STIPEND = "STIPEND"
    RENT = "RENT"
    DEPOSIT = "DEPOSIT"
    UTILITIES = "UTILITIES"
    ALLOWANCE = "ALLOWANCE"

    @property
    def support(self) -> Support:
        """The kind of program that pays this kind of disbursement."""
        if self is DisbursementKind.STIPEND:
            return Support.STIPEND
        if self is DisbursementKind.ALLOWANCE:
            return Support.ALLOWANCE
        return Support.HOUSING

    def check_paid_by(self, program: Program, support: Support) -> None:
        if self.support is not support:
            raise ValidationError(
                "kind", f"{program} pays {support.value.lower()}; {self.value} is not one of them"
            )


class PaymentReversalReason(StrEnum):
    """Why a payment is reversed: a code, never free text, since a sentence about a
    payment to a beneficiary tends to name her, and events and the ledger are kept for
    good (and exported to auditors)."""

    WRONG_DISBURSEMENT = "WRONG_DISBURSEMENT"  # paid against another disbursement
    WRONG_AMOUNT = "WRONG_AMOUNT"  # the amount recorded is not what left the bank
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"  # recorded twice, paid once
    RETURNED_BY_BANK = "RETURNED_BY_BANK"  # the transfer bounced back

    @property
    def label(self) -> str:
        """For the ledger entry's description: "wrong amount"."""
        return self.value.lower().replace("_", " ")


class DisbursementStatus(StrEnum):
    COMMITTED = "COMMITTED"
    APPROVED = "APPROVED"
    PAID = "PAID"
    CANCELLED = "CANCELLED"


def check_decided_by_person(actor: str, operation: str) -> None:
    """Committing, approving and paying are decisions a person signs for (four eyes
    are two people, and a device's key is whoever stands at it)."""
    if not is_person_actor(actor):
        raise PersonRequired(operation)


def disbursement_id_for(idempotency_key: str) -> UUID:
    return uuid5(DISBURSEMENT_NAMESPACE, idempotency_key)


class Disbursement(Aggregate):
    class Committed(Aggregate.Created):
        beneficiary_id: UUID
        program: str
        kind: str
        month: str
        amount_cents: int
        committed_on: date
        actor: str | None = None  # who did it (None in events recorded before it was kept)

    class Approved(Aggregate.Event):
        approved_on: date
        approver: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Disbursement)
            aggregate.status = DisbursementStatus.APPROVED
            aggregate.approved_on = self.approved_on
            aggregate.approved_by = self.approver

    class Paid(Aggregate.Event):
        program: str
        amount_cents: int
        paid_on: date
        entry_id: UUID
        actor: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Disbursement)
            aggregate.paid_cents += self.amount_cents
            aggregate.payments += 1
            aggregate.payment_entries[aggregate.payments] = (
                self.amount_cents,
                self.entry_id,
                self.paid_on,
            )
            last = aggregate.last_paid_on
            aggregate.last_paid_on = self.paid_on if last is None else max(last, self.paid_on)
            if aggregate.paid_cents == aggregate.amount_cents:
                aggregate.status = DisbursementStatus.PAID

    class PaymentReversed(Aggregate.Event):
        """A payment recorded in error (the wrong disbursement, the wrong amount): its
        amount is unpaid again, still reserved for this disbursement."""

        program: str
        payment: int
        amount_cents: int
        reversed_on: date
        reversal_entry_id: UUID
        actor: str | None = None
        # A PaymentReversalReason; None in events recorded before reversals gave one.
        reason: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Disbursement)
            aggregate.paid_cents -= self.amount_cents
            aggregate.reversed_payments.add(self.payment)
            aggregate.reversal_dates[self.payment] = self.reversed_on
            aggregate.last_paid_on = max(
                (
                    paid_on
                    for number, (_cents, _entry, paid_on) in aggregate.payment_entries.items()
                    if number not in aggregate.reversed_payments
                ),
                default=None,
            )
            if aggregate.status is DisbursementStatus.PAID:
                aggregate.status = DisbursementStatus.APPROVED

    class Cancelled(Aggregate.Event):
        program: str
        cancelled_on: date
        released_cents: int
        actor: str | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Disbursement)
            aggregate.status = DisbursementStatus.CANCELLED
            aggregate.released_cents = self.released_cents

    def __init__(
        self,
        beneficiary_id: UUID,
        program: str,
        kind: str,
        month: str,
        amount_cents: int,
        committed_on: date,
        actor: str | None = None,
    ) -> None:
        self.beneficiary_id = beneficiary_id
        self.program = Program(program)
        self.kind = DisbursementKind(kind)
        self.month = month
        self.amount_cents = amount_cents
        self.committed_on = committed_on
        # Who committed (None in events recorded before it was kept): not the approver.
        self.committed_by = actor
        self.status = DisbursementStatus.COMMITTED
        self.approved_on: date | None = None
        # Who approved (the actor, as the audit trail names it): not the one who pays.
        self.approved_by: str | None = None
        # The latest day among the payments still standing (not reversed).
        self.last_paid_on: date | None = None
        self.paid_cents = 0
        self.payments = 0
        # Payment number -> (amount, its ledger entry, its date); those reversed.
        self.payment_entries: dict[int, tuple[int, UUID, date]] = {}
        self.reversed_payments: set[int] = set()
        # Payment number -> the day its reversal is dated: a step like any other, so
        # neither a cancellation nor a new payment may be dated before it.
        self.reversal_dates: dict[int, date] = {}
        self.released_cents = 0

    @classmethod
    def commit(
        cls,
        *,
        disbursement_id: UUID,
        beneficiary_id: UUID,
        program: Program,
        support: Support,
        kind: DisbursementKind,
        month: str,
        amount_cents: int,
        committed_on: date,
        actor: str | None = None,
    ) -> Disbursement:
        """`support` is what the beneficiary's program pays (from the configuration)."""
        kind.check_paid_by(program, support)
        if amount_cents <= 0:
            raise ValidationError("amount", "amount must be greater than zero")
        return cls._create(
            cls.Committed,
            id=disbursement_id,
            beneficiary_id=beneficiary_id,
            program=str(program),
            kind=kind.value,
            month=month,
            amount_cents=amount_cents,
            committed_on=committed_on,
            actor=actor,
        )

    @property
    def unpaid_cents(self) -> int:
        return self.amount_cents - self.paid_cents

    @property
    def last_reversed_on(self) -> date | None:
        return max(self.reversal_dates.values(), default=None)

    @property
    def latest_step_on(self) -> date:
        """The day of the latest step so far (commitment, approval, any payment or
        payment reversal)."""
        days = [self.committed_on, *self.reversal_dates.values()]
        days.extend(paid_on for _cents, _entry, paid_on in self.payment_entries.values())
        if self.approved_on is not None:
            days.append(self.approved_on)
        return max(days)

    def approve(self, *, approved_on: date, approver: str) -> None:
        if self.status is not DisbursementStatus.COMMITTED:
            raise Conflict(f"disbursement {self.id} is {self.status.value.lower()}, not committed")
        if approved_on < self.committed_on:
            raise ValidationError("effectiveDate", "approval cannot precede the commitment")
        # Maker and checker: an actor not known (events recorded before commitments
        # named theirs) is not compared, so it blocks nothing.
        if self.committed_by is not None and approver == self.committed_by:
            raise ApprovalByCommitter
        self.trigger_event(self.Approved, approved_on=approved_on, approver=approver)

    def pay(
        self, *, amount_cents: int, paid_on: date, entry_id: UUID, actor: str | None = None
    ) -> None:
        if self.status is DisbursementStatus.COMMITTED:
            raise PaymentExceedsApproval(amount_cents, 0, 0, not_approved_yet=True)
        if self.status is not DisbursementStatus.APPROVED:
            raise Conflict(f"disbursement {self.id} is {self.status.value.lower()}")
        # Four eyes: money leaves the bank only when two people agreed to it. Every
        # Approved event names its approver; an actor not known (None) is not
        # compared, so it blocks nothing.
        if actor is not None and actor == self.approved_by:
            raise PaymentByApprover
        if amount_cents <= 0:
            raise ValidationError("amount", "amount must be greater than zero")
        if amount_cents > self.unpaid_cents:
            raise PaymentExceedsApproval(amount_cents, self.amount_cents, self.paid_cents)
        assert self.approved_on is not None
        if paid_on < self.approved_on:
            raise ValidationError("paidOn", "a payment cannot precede the approval")
        # Dated before a reversal, the new payment and the reversed one would both
        # count as paid on the days between: the disbursement paid twice as of then.
        reversed_on = self.last_reversed_on
        if reversed_on is not None and paid_on < reversed_on:
            raise ValidationError(
                "paidOn",
                f"a payment cannot precede the reversal of an earlier payment "
                f"({reversed_on.isoformat()})",
            )
        self.trigger_event(
            self.Paid,
            program=str(self.program),
            amount_cents=amount_cents,
            paid_on=paid_on,
            entry_id=entry_id,
            actor=actor,
        )

    def payment_to_reverse(self, payment: int, *, reversed_on: date) -> tuple[int, UUID]:
        """Check that payment number `payment` may be reversed on that day; its amount
        and ledger entry. A cancelled disbursement's payments stand: the cancellation
        released what was unpaid then, so reverse a payment before cancelling."""
        if payment not in self.payment_entries:
            raise ValidationError("payment", f"disbursement {self.id} has no payment {payment}")
        if payment in self.reversed_payments:
            raise Conflict(f"payment {payment} of disbursement {self.id} was already reversed")
        if self.status is DisbursementStatus.CANCELLED:
            raise Conflict(f"disbursement {self.id} is cancelled; its payments stand")
        amount_cents, entry_id, paid_on = self.payment_entries[payment]
        if reversed_on < paid_on:
            raise ValidationError("effectiveDate", "a reversal cannot precede the payment")
        return amount_cents, entry_id

    def reverse_payment(
        self,
        *,
        payment: int,
        reversed_on: date,
        reversal_entry_id: UUID,
        reason: PaymentReversalReason,
        actor: str | None = None,
    ) -> None:
        amount_cents, _entry_id = self.payment_to_reverse(payment, reversed_on=reversed_on)
        self.trigger_event(
            self.PaymentReversed,
            program=str(self.program),
            payment=payment,
            amount_cents=amount_cents,
            reversed_on=reversed_on,
            reversal_entry_id=reversal_entry_id,
            actor=actor,
            reason=reason.value,
        )

    def cancel(self, *, cancelled_on: date, actor: str | None = None) -> int:
        """Cancel; returns the unpaid amount released back to the fund."""
        if self.status in (DisbursementStatus.PAID, DisbursementStatus.CANCELLED):
            raise Conflict(f"disbursement {self.id} is {self.status.value.lower()}")
        # A payment reversal is a step too: a cancellation dated before it released
        # money that still stood as paid, and showed "committed" negative until then.
        latest = self.latest_step_on
        if cancelled_on < latest:
            raise ValidationError(
                "effectiveDate",
                f"cancellation cannot precede earlier steps (the latest is dated "
                f"{latest.isoformat()})",
            )
        released = self.unpaid_cents
        self.trigger_event(
            self.Cancelled,
            program=str(self.program),
            cancelled_on=cancelled_on,
            released_cents=released,
            actor=actor,
        )
        return released

"""Welfare fund members of the error tree. Messages name references, never people."""

from __future__ import annotations

from services.common.errors import Conflict, CoopError, Forbidden, lost_race
from services.common.money import format_cents


class InsufficientFunds(Conflict):
    """A commitment beyond what the program has available; nothing was reserved."""

    def __init__(self, program: str, requested_cents: int, available_cents: int) -> None:
        super().__init__(
            f"commitment of {format_cents(requested_cents)} EUR exceeds the "
            f"{format_cents(available_cents)} EUR available for {program}"
        )
        self.program = program
        self.requested_cents = requested_cents
        self.available_cents = available_cents


class VersionExists(Conflict):
    """A configuration version for a day that already has one. Versions are never
    replaced: a replaced one survived only in the event log, listed nowhere."""

    def __init__(self, what: str, effective_from: str) -> None:
        super().__init__(
            f"{what} from {effective_from} exists already; versions are not replaced: "
            "set one from another day"
        )
        self.effective_from = effective_from


class VersionWithdrawn(Conflict):
    """A withdrawal of a version that is withdrawn already (a refusal, not a lost race:
    nothing retries it)."""

    def __init__(self, what: str, effective_from: str, withdrawn_on: str) -> None:
        super().__init__(
            f"{what} from {effective_from} was withdrawn on {withdrawn_on} already; "
            "nothing was written"
        )
        self.effective_from = effective_from
        self.withdrawn_on = withdrawn_on


class ChangedMeanwhile(Conflict):
    """A command deciding again after a lost race found that what it changes was
    changed meanwhile by another command: not its to overwrite."""

    def __init__(self, operation: str) -> None:
        super().__init__(lost_race(operation))


class PaymentExceedsApproval(Conflict):
    def __init__(
        self,
        requested_cents: int,
        approved_cents: int,
        paid_cents: int,
        *,
        not_approved_yet: bool = False,
    ) -> None:
        if not_approved_yet:
            message = (
                f"payment of {format_cents(requested_cents)} EUR refused: the disbursement "
                "is not approved yet (a fund officer approves it first)"
            )
        else:
            message = (
                f"payment of {format_cents(requested_cents)} EUR exceeds what is approved and "
                f"unpaid ({format_cents(approved_cents - paid_cents)} EUR of "
                f"{format_cents(approved_cents)} EUR approved)"
            )
        super().__init__(message)
        self.requested_cents = requested_cents
        self.approved_cents = approved_cents
        self.paid_cents = paid_cents


class ApprovalNotAllowed(CoopError):
    """Only the territorial enterprise's fund officer approves disbursements."""

    def __init__(self) -> None:
        super().__init__("only a fund officer of the territorial enterprise may approve")


class ApprovalByCommitter(Forbidden):
    """Maker and checker: whoever committed a disbursement (proposed to spend) does
    not also approve it, so two people agree to every spending of the fund."""

    def __init__(self) -> None:
        super().__init__(
            "approval refused: the disbursement was committed by the same person; "
            "another fund officer approves it"
        )


class PersonRequired(Forbidden):
    """Four eyes are two people: committing, approving and paying are decisions a
    person signs for. A device key (a till, a desk PC) may be used by whoever stands
    at it, so it cannot be one of the two."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation} refused: a device key may not decide on the fund's money; "
            "sign in as a person (POST /auth/token) and try again"
        )


class PaymentByApprover(Forbidden):
    """Four eyes on money leaving the bank: whoever approved a disbursement does not
    also pay it, so no one person moves the fund's money alone."""

    def __init__(self) -> None:
        super().__init__(
            "payment refused: the disbursement was approved by the same person; "
            "someone else (another fund officer or an admin) records the payment"
        )

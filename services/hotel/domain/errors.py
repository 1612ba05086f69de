"""Hotel-specific members of the error tree. Messages name fields, rooms, dates and
booking ids, never a guest's personal data."""

from __future__ import annotations

from services.common.errors import Conflict, NotFound


class BookingNotFound(NotFound):
    pass


class IllegalTransition(Conflict):
    """The booking's state does not allow the command (e.g. check-out before check-in)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class RoomUnavailable(Conflict):
    """Another booking holds the room for one of the nights."""


class BalanceDue(Conflict):
    """Refused while the folio's balance is not zero: a check-out, or the erasure of
    the guests' identities (the hotel still needs them to collect or to refund)."""

    def __init__(
        self,
        booking_id: str,
        balance_cents: int,
        refused: str = "cannot be checked out",
        how_to_collect: str = "",
    ) -> None:
        from services.common.money import format_cents

        if balance_cents > 0:
            what = f"{format_cents(balance_cents)} EUR is still due{how_to_collect}"
        else:
            what = f"{format_cents(-balance_cents)} EUR must be refunded first"
        super().__init__(f"booking {booking_id} {refused}: {what}")
        self.balance_cents = balance_cents

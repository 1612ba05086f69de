"""Shop-specific members of the error tree. Messages name ids and fields, never people."""

from __future__ import annotations

from services.common.errors import Conflict, Forbidden, NotFound, ValidationError


class UnknownCategory(ValidationError):
    def __init__(self, field: str, code: str, known: list[str]) -> None:
        super().__init__(field, f"unknown category; use one of {', '.join(known)}")
        self.code = code


class SessionNotFound(NotFound):
    pass


class SaleNotFound(NotFound):
    pass


class SessionAlreadyOpen(Conflict):
    """A till has at most one open cash session."""


class SessionClosed(Conflict):
    """No sale, refund or cash movement on a closed session."""


class NoOpenSession(NotFound):
    pass


class WrongTill(Forbidden):
    """The caller's credentials are scoped to another till than the session's."""


class PolicyMovedOn(Conflict):
    """The day's policy changed between a document's decision and its save (another
    process changed the shop's configuration); nothing was written."""

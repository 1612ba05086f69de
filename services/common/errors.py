"""The typed error tree. Domain and application code raise these; the gateway maps
them once, at the edge, to GraphQL union members.

Messages are shown to users and written to logs, so they must never carry personal
data of guests or beneficiaries: name fields and references, never values.
"""

from __future__ import annotations


class CoopError(Exception):
    """Base of every expected failure. Anything else is a bug and gets masked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CoopError):
    """The input is wrong; `field` names the input path, e.g. `lines[1].amount`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(CoopError):
    """The thing the command refers to does not exist."""


class Forbidden(CoopError):
    """The caller's role allows the operation, but not on this object (another till's
    session, say). Roles themselves are checked at the edge, before any command."""


class Conflict(CoopError):
    """The command lost against a concurrent command or against the current state."""


class LostRace(Conflict):
    """Another command changed what this one decided on between its read and its save;
    nothing was written. Unlike a refusal by the current state, deciding again on the
    new state may succeed, so a command that can retry by itself retries only these."""


class StoreBusy(Conflict):
    """The store's writer connection stayed busy past the wait (SQLite has one writer;
    under a burst of commands a command can wait longer than the pool allows). Nothing
    was written: the same request, sent again, is decided afresh."""

    def __init__(self) -> None:
        super().__init__("the store is busy with other writes; nothing was saved: try again")


def lost_race(operation: str) -> str:
    """What a command that lost against a concurrent change answers."""
    return (
        f"{operation} lost against a concurrent change; nothing was written. Reload and try again."
    )


class IdempotencyKeyReused(CoopError):
    """The idempotency key was used before with a different request."""

    def __init__(self, key_hint: str) -> None:
        super().__init__(
            f"idempotency key {key_hint} was already used for a different request; "
            "use a new key for a new request"
        )

"""Ledger-specific members of the error tree."""

from __future__ import annotations

from datetime import date

from services.common.errors import Conflict, NotFound, ValidationError


class UnbalancedEntry(ValidationError):
    def __init__(self, debit_cents: int, credit_cents: int) -> None:
        from services.common.money import format_cents

        super().__init__(
            "postings",
            f"debits ({format_cents(debit_cents)}) must equal credits "
            f"({format_cents(credit_cents)})",
        )
        self.debit_cents = debit_cents
        self.credit_cents = credit_cents


class UnknownAccount(ValidationError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__(field, "unknown account")
        self.code = code


class AccountClosed(ValidationError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__(field, f"account {code!r} is closed")
        self.code = code


class AccountKeptOpen(ValidationError):
    """Closing an account a process posts to on its own: the process would stop."""

    def __init__(self, field: str, code: str, reason: str) -> None:
        super().__init__(field, f"account {code!r} cannot be closed: {reason}")
        self.code = code


class AccountKeptByContext(ValidationError):
    """A hand posting to an account a context keeps in step with its own figures."""

    def __init__(self, field: str, code: str, kept_by: str, figure: str, use_instead: str) -> None:
        super().__init__(
            field,
            f"account {code!r} is kept by {kept_by} (its balance is {figure}); an entry "
            f"by hand would put them out of step: {use_instead}",
        )
        self.code = code


class PeriodClosed(ValidationError):
    """A date on or before the day the books are closed through (closeBooks)."""

    def __init__(self, field: str, day: date, closed_through: date) -> None:
        through = closed_through.isoformat()
        super().__init__(
            field,
            f"{day.isoformat()} is in a closed period: the books are closed through "
            f"{through}, so nothing may be dated on or before it; date the correction "
            f"after {through}",
        )
        self.day = day
        self.closed_through = closed_through


class AccrualsBehind(Conflict):
    """closeBooks while income already saved is not yet accrued to the welfare fund:
    its accrual, dated on the income's day, would land in the period after the close."""

    def __init__(self) -> None:
        super().__init__(
            "nothing was closed: income already in the books is not yet accrued to the "
            "welfare fund (the projector is behind; see `coop projections status`); "
            "close again once it has caught up"
        )


class EntryNotFound(NotFound):
    pass


class EntryAlreadyReversed(Conflict):
    pass

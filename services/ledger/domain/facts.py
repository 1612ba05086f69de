"""What a funding fact asks the journal to post, and small input checks they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from services.common.errors import ValidationError
from services.ledger.domain.journal import Posting, Side


@dataclass(frozen=True)
class LedgerFact:
    """One balanced entry a business event causes; `cause_id` is unique per fact."""

    cause_id: str
    effective_date: date
    description: str
    postings: tuple[Posting, ...]


def debit(account: str, amount_cents: int) -> Posting:
    return Posting(account, Side.DEBIT, amount_cents)


def credit(account: str, amount_cents: int) -> Posting:
    return Posting(account, Side.CREDIT, amount_cents)


def short_id(value: UUID) -> str:
    """Ids in ledger descriptions: enough to find the record, no personal data."""
    return str(value)[:8]


def checked_text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    return value


MAX_REASON_LENGTH = 500  # a correction's reason, kept on the record only


def checked_reversal(
    reversed_on: date, reason: str, *, recorded_on: date, today: date, what: str
) -> str:
    """The reason, cleaned, if a record of `what` dated `recorded_on` may be reversed
    on `reversed_on`: not in the future, not before the record it corrects."""
    check_not_future(reversed_on, today, field="effectiveDate", what="a reversal")
    if reversed_on < recorded_on:
        raise ValidationError(
            "effectiveDate",
            f"a reversal cannot be dated before the {what} it corrects ({recorded_on.isoformat()})",
        )
    return checked_text(reason, field="reason", max_length=MAX_REASON_LENGTH)


def check_not_future(day: date, today: date, *, field: str, what: str) -> None:
    if day > today:
        raise ValidationError(field, f"{what} cannot be dated in the future")


def format_percent_bp(bp: int) -> str:
    """500 -> "5.00" (the FatturaPA RateType form)."""
    return f"{bp // 100}.{bp % 100:02d}"

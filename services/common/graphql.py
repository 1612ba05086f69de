"""GraphQL pieces every context shares: the Money scalar, error types, pagination.

Errors are mapped here, once: a CoopError becomes the matching union member.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import NewType, TypeVar
from zoneinfo import ZoneInfo

import strawberry
from graphql import GraphQLError

from services.common.errors import (
    Conflict,
    CoopError,
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    ValidationError,
)
from services.common.money import MONEY_PATTERN, cents_to_decimal

T = TypeVar("T")


def _parse_money(value: object) -> Decimal:
    # Only strings: a JSON number (12.5), an exponent ("1e3"), NaN/Infinity or a third
    # decimal never becomes money. Error messages never echo the value.
    if not isinstance(value, str) or not MONEY_PATTERN.fullmatch(value):
        raise GraphQLError(
            'Money must be a decimal string with at most 2 decimals, e.g. "12.50"',
            extensions={"code": "BAD_USER_INPUT"},
        )
    return Decimal(value)


def _serialize_money(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError("Money is serialized from Decimal euros or integer cents only")
    amount = cents_to_decimal(value) if isinstance(value, int) else value
    return f"{amount.quantize(Decimal('0.01'))}"


Money = NewType("Money", Decimal)

# Registered through the schema's scalar_map (see gateway/schema.py).
MONEY_SCALAR = strawberry.scalar(
    name="Money",
    description='An amount in EUR as a decimal string with at most 2 decimals, e.g. "12.50".',
    serialize=_serialize_money,
    parse_value=_parse_money,
)


def money(amount_cents: int) -> Money:
    """Output helper: integer cents -> the Money scalar's Python value."""
    return Money(cents_to_decimal(amount_cents))


@strawberry.type(name="ValidationError", description="The input is invalid; nothing changed.")
class ValidationErrorResult:
    field: str
    message: str


@strawberry.type(name="NotFound", description="The referenced object does not exist.")
class NotFoundResult:
    message: str


@strawberry.type(name="Conflict", description="Lost against another change; nothing changed.")
class ConflictResult:
    message: str


@strawberry.type(
    name="IdempotencyKeyReused",
    description="The idempotency key was used before with a different input.",
)
class IdempotencyKeyReusedResult:
    message: str


ErrorResult = ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult
# The same members as a tuple, for isinstance checks.
ERROR_TYPES = (ValidationErrorResult, NotFoundResult, ConflictResult, IdempotencyKeyReusedResult)


def error_result(exc: CoopError) -> ErrorResult:
    """The one mapping from the error tree to union members."""
    if isinstance(exc, ValidationError):
        return ValidationErrorResult(field=exc.field, message=exc.message)
    if isinstance(exc, NotFound):
        return NotFoundResult(message=exc.message)
    if isinstance(exc, IdempotencyKeyReused):
        return IdempotencyKeyReusedResult(message=exc.message)
    if isinstance(exc, Conflict):
        return ConflictResult(message=exc.message)
    return ConflictResult(message=exc.message)


def error_code(exc: CoopError) -> str:
    """The `extensions.code` for a CoopError raised from a query."""
    if isinstance(exc, ValidationError):
        return "BAD_USER_INPUT"
    if isinstance(exc, NotFound):
        return "NOT_FOUND"
    if isinstance(exc, Forbidden):
        return "FORBIDDEN"
    return "CONFLICT"


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def check_page_size(first: int, max_page_size: int) -> None:
    if first < 1 or first > max_page_size:
        raise ValidationError("first", f"must be between 1 and {max_page_size}")


def as_of_date(as_of: datetime | None, zone: ZoneInfo) -> date:
    """The cooperative's calendar day of an instant; `None` means now."""
    if as_of is None:
        return datetime.now(UTC).astimezone(zone).date()
    if as_of.tzinfo is None:
        raise ValidationError("asOf", "must carry a UTC offset, e.g. 2025-06-30T23:59:59+02:00")
    try:
        return as_of.astimezone(zone).date()
    except OverflowError:  # the first or last day of year 1 or 9999, moved past it
        raise ValidationError("asOf", "is out of the calendar's range") from None


def attempt(fn: Callable[[], T]) -> T | ErrorResult:
    """Run input conversion; a CoopError becomes its union member."""
    try:
        return fn()
    except CoopError as exc:
        return error_result(exc)

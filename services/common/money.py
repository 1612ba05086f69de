"""Money as integer cents. Decimal only at the edges, floats never.

`parse_money` is the one gate from user input to cents: it takes decimal *strings*
only, so a JSON number, an exponent, NaN or a third decimal never becomes money.
"""

from __future__ import annotations

import re
from decimal import Decimal

from services.common.errors import ValidationError

CENTS_PER_EURO = 100

# Plain decimal notation, optional sign, at most two decimals. Twelve integer digits
# are far above any ceiling and keep the regex itself bounded.
MONEY_PATTERN = re.compile(r"^-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$")


def parse_money(text: object, *, field: str) -> int:
    """Return the amount in cents of a decimal string such as "12.50"."""
    if not isinstance(text, str):
        # bool is an int subclass and float a tempting shortcut: both are refused.
        raise ValidationError(
            field, 'money must be a decimal string with at most 2 decimals, e.g. "12.50"'
        )
    if not MONEY_PATTERN.fullmatch(text):
        raise ValidationError(
            field, 'money must be a decimal string with at most 2 decimals, e.g. "12.50"'
        )
    return int(Decimal(text) * CENTS_PER_EURO)


def decimal_to_cents(amount: Decimal, *, field: str) -> int:
    """Convert an already-parsed Decimal (from the GraphQL Money scalar) to cents."""
    if not amount.is_finite():
        raise ValidationError(field, "money must be a finite amount")
    cents = amount * CENTS_PER_EURO
    if cents != cents.to_integral_value():
        raise ValidationError(field, "money has at most 2 decimals")
    return int(cents)


def cents_to_decimal(amount_cents: int) -> Decimal:
    return (Decimal(amount_cents) / CENTS_PER_EURO).quantize(Decimal("0.01"))


def format_cents(amount_cents: int) -> str:
    """12345 -> "123.45"; -5 -> "-0.05". The inverse of parse_money."""
    sign = "-" if amount_cents < 0 else ""
    euros, cents = divmod(abs(amount_cents), CENTS_PER_EURO)
    return f"{sign}{euros}.{cents:02d}"


def check_positive_amount(amount_cents: int, *, field: str, ceiling_cents: int) -> None:
    """The common rule for amounts a user enters: strictly positive, at most the ceiling."""
    if amount_cents <= 0:
        raise ValidationError(field, "amount must be greater than zero")
    if amount_cents > ceiling_cents:
        raise ValidationError(
            field, f"amount must not exceed the ceiling of {format_cents(ceiling_cents)} EUR"
        )


def split_vat_included(gross_cents: int, rate_basis_points: int) -> tuple[int, int]:
    """Split a VAT-inclusive amount into (net, VAT), e.g. rate 1000 bp = 10%.

    Rule: net = gross / (1 + rate), rounded half up to the cent; VAT = gross - net.
    Net + VAT always equals the gross exactly. Integer arithmetic only.
    """
    if rate_basis_points < 0:
        raise ValueError("VAT rate must not be negative")
    denominator = 10_000 + rate_basis_points
    sign = -1 if gross_cents < 0 else 1
    net = sign * ((2 * abs(gross_cents) * 10_000 + denominator) // (2 * denominator))
    return net, gross_cents - net


def share_percent(part: int, whole: int) -> str:
    """`part` per 100 of `whole` to one decimal, rounded half away from zero, the
    sign apart (1/3 -> "33.3", -1/3 -> "-33.3", 1/8 -> "12.5"). Integer arithmetic:
    floor division of a negative number would round it the wrong way."""
    if whole <= 0:
        raise ValueError("a share of nothing")
    tenths = (2 * abs(part) * 1000 + whole) // (2 * whole)
    sign = "-" if part < 0 and tenths else ""
    return f"{sign}{tenths // 10}.{tenths % 10}"


# Percent rates (VAT, hotel policy) as basis points: strings only, at most two
# decimals, 0 to 100. One gate for every context, so "1e1", " 10 " or "sNaN" are
# refused everywhere alike (Decimal() would take them).
_PERCENT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,2})(\.[0-9]{1,2})?$")


def parse_percent_bp(text: str, *, field: str) -> int:
    """ "5" or "5.00" -> 500 basis points."""
    if not _PERCENT_PATTERN.fullmatch(text):
        raise ValidationError(field, 'a percentage as a decimal string, e.g. "5" or "5.50"')
    whole, _, fraction = text.partition(".")
    bp = int(whole) * 100 + int((fraction + "00")[:2])
    if bp > 10_000:
        raise ValidationError(field, "must be at most 100")
    return bp

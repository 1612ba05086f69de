"""Calendar months as users type them: "YYYY-MM"."""

from __future__ import annotations

import calendar
import re
from datetime import date

from services.common.errors import ValidationError

# Year 0000 is not in the calendar (date() refuses it): a format error, not a crash.
MONTH_PATTERN = re.compile(r"^(?!0000)([0-9]{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str, *, field: str = "month") -> tuple[int, int]:
    """ "2025-03" -> (2025, 3); anything else is a ValidationError on `field`."""
    match = MONTH_PATTERN.fullmatch(text)
    if match is None:
        raise ValidationError(field, "a month as YYYY-MM, e.g. 2025-03")
    return int(match.group(1)), int(match.group(2))


def month_bounds(text: str, *, field: str = "month") -> tuple[date, date]:
    """The month's first and last days. The last is counted in the month itself:
    December 9999 has no following month to step back from."""
    year, number = parse_month(text, field=field)
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])

"""What every paged query's `after` cursor carries: a position in the event log (with,
for some queries, the date the rows are ordered by first), under the name of the list
it came from. Cursors are opaque to clients but come back from them: whatever they send
is checked here, never trusted."""

from __future__ import annotations

import base64
import binascii
from datetime import date

from services.common.errors import ValidationError

# The log positions and the read models' position columns are BIGINT: a larger number
# reached the database in a cursor and failed there as an internal error.
MAX_POSITION = 2**63 - 1
NOT_A_CURSOR = "not a cursor returned by this query"


def not_a_cursor() -> ValidationError:
    return ValidationError("after", NOT_A_CURSOR)


def position_in_cursor(text: str) -> int:
    """The position a cursor's text holds: ASCII digits within a BIGINT. `str.isdigit`
    alone let "²" through to int(), which refused it as an internal error."""
    # The length first: int() refuses more than 4,300 digits with its own ValueError.
    if len(text) > len(str(MAX_POSITION)) or not (text.isascii() and text.isdigit()):
        raise not_a_cursor()
    position = int(text)
    if position > MAX_POSITION:
        raise not_a_cursor()
    return position


def encode_cursor(listing: str, text: str) -> str:
    """`text` (what the list orders by) under `listing`, the list's name: positions of
    one list mean nothing in another, and a grants cursor given to donations made it
    skip donations without a word."""
    return base64.urlsafe_b64encode(f"{listing}|{text}".encode()).decode()


def cursor_text(listing: str, cursor: str) -> str:
    """The text `encode_cursor` put in a cursor of `listing`; anything else (another
    list's cursor, text that is no cursor) is refused naming `after`."""
    try:
        found, text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
    except (ValueError, binascii.Error, UnicodeError):
        raise not_a_cursor() from None
    if found != listing:
        raise not_a_cursor()
    return text


def position_cursor(listing: str, position: int) -> str:
    return encode_cursor(listing, str(position))


def position_after(listing: str, cursor: str) -> int:
    """The position a `position_cursor` of `listing` holds."""
    return position_in_cursor(cursor_text(listing, cursor))


def dated_cursor(listing: str, day: date, position: int) -> str:
    """For lists ordered by a date, then by position."""
    return encode_cursor(listing, f"{day.isoformat()}|{position}")


def dated_after(listing: str, cursor: str) -> tuple[date, int]:
    """The date and position a `dated_cursor` of `listing` holds."""
    try:
        day, position = cursor_text(listing, cursor).split("|")
        return date.fromisoformat(day), position_in_cursor(position)
    except ValueError:
        raise not_a_cursor() from None

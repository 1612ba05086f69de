"""What every paged query's `after` cursor carries: a position in the event log (with,
for some queries, the date the rows are ordered by first). Cursors are opaque to
clients but come back from them: whatever they send is checked here, never trusted."""

from __future__ import annotations

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

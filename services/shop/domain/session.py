"""Tills and cash sessions.

A `Till` records which session is open on it, so "one open session per till" is an
invariant of one aggregate: two concurrent opens both write the till's next version
and exactly one commits. A `CashSession` numbers its documents (sales and refunds)
per till and day: every ring writes the session's next version, so two concurrent
rings on one session cannot take the same receipt number or leave a gap; the loser
gets Conflict and retries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import ValidationError
from services.common.money import format_cents
from services.shop.domain.config import CashDirection
from services.shop.domain.errors import SessionAlreadyOpen, SessionClosed, WrongTill

TILL_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:shop:till")
_TILL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")


# The euro's coins and notes: a count by denomination names these and no others.
EURO_DENOMINATIONS_CENTS = frozenset(
    (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
)


def count_sheet(counted_cash_cents: int, lines: Sequence[tuple[int, int]]) -> dict[str, int]:
    """A Z close's count by denomination, as (value in cents, how many) lines in the
    order entered, as the close records it: value in cents (a string: the event is
    JSON) to how many, largest first, a value entered twice counted once with both
    counts, values counted none left out. The lines must add up to the counted cash."""
    sheet: dict[int, int] = {}
    for index, (value_cents, count) in enumerate(lines):
        if value_cents not in EURO_DENOMINATIONS_CENTS:
            raise ValidationError(
                f"denominations[{index}].value", "a euro coin or note, 0.01 to 500.00"
            )
        if count < 0:
            raise ValidationError(f"denominations[{index}].count", "must not be negative")
        if count:
            sheet[value_cents] = sheet.get(value_cents, 0) + count
    if sum(value * count for value, count in sheet.items()) != counted_cash_cents:
        raise ValidationError("denominations", "the denominations do not add up to countedCash")
    return {str(value): sheet[value] for value in sorted(sheet, reverse=True)}


def check_till_id(till_id: str, *, field: str = "tillId") -> None:
    if not _TILL_PATTERN.fullmatch(till_id):
        raise ValidationError(field, "a till id is 1 to 50 letters, digits, '.', '_' or '-'")


def till_aggregate_id(till_id: str) -> UUID:
    return uuid5(TILL_NAMESPACE, till_id)


def check_scope(till_scope: str | None, till_id: str) -> None:
    """A caller scoped to a till acts on that till only."""
    if till_scope is not None and till_scope != till_id:
        raise WrongTill(f"your credentials are for till {till_scope!r}, not {till_id!r}")


class Till(Aggregate):
    class Registered(Aggregate.Created):
        till_id: str

    class SessionOpened(Aggregate.Event):
        session_id: UUID
        z_number: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Till)
            aggregate.open_session_id = self.session_id
            aggregate.sessions_opened = self.z_number

    class SessionClosed(Aggregate.Event):
        session_id: UUID
        receipt_day: date | None
        last_receipt_number: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Till)
            aggregate.open_session_id = None
            aggregate.receipt_day = self.receipt_day
            aggregate.last_receipt_number = self.last_receipt_number

    def __init__(self, till_id: str) -> None:
        self.till_id = till_id
        self.open_session_id: UUID | None = None
        self.sessions_opened = 0
        self.receipt_day: date | None = None
        self.last_receipt_number = 0

    @classmethod
    def register(cls, till_id: str) -> Till:
        check_till_id(till_id)
        return cls._create(cls.Registered, id=till_aggregate_id(till_id), till_id=till_id)

    def open_session(
        self,
        *,
        session_id: UUID,
        opening_float_cents: int,
        opened_at: datetime,
        business_date: date,
        opened_by: str,
    ) -> CashSession:
        if self.open_session_id is not None:
            raise SessionAlreadyOpen(
                f"till {self.till_id!r} already has an open session {self.open_session_id}; "
                "close it first"
            )
        z_number = self.sessions_opened + 1
        session = CashSession._create(
            CashSession.Opened,
            id=session_id,
            till_id=self.till_id,
            z_number=z_number,
            opening_float_cents=opening_float_cents,
            opened_at=opened_at,
            business_date=business_date,
            opened_by=opened_by,
            receipt_day=self.receipt_day,
            last_receipt_number=self.last_receipt_number,
        )
        self.trigger_event(self.SessionOpened, session_id=session_id, z_number=z_number)
        return session

    def session_closed(self, session: CashSession) -> None:
        self.trigger_event(
            self.SessionClosed,
            session_id=session.id,
            receipt_day=session.receipt_day,
            last_receipt_number=session.last_receipt_number,
        )


class CashSession(Aggregate):
    class Opened(Aggregate.Created):
        till_id: str
        z_number: int
        opening_float_cents: int
        opened_at: datetime
        business_date: date
        opened_by: str
        # Where the till's receipt numbering stood (numbers run per till and day,
        # across sessions).
        receipt_day: date | None
        last_receipt_number: int

    class DocumentRecorded(Aggregate.Event):
        """A sale or refund took the session's next receipt number."""

        document_id: UUID
        kind: str  # "sale" or "refund"
        receipt_day: date
        receipt_number: int
        cash_cents: int  # kept in the drawer (sale, after change) or paid out (refund)
        card_cents: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, CashSession)
            aggregate.receipt_day = self.receipt_day
            aggregate.last_receipt_number = self.receipt_number
            if self.kind == "sale":
                aggregate.cash_sales_cents += self.cash_cents
                aggregate.card_sales_cents += self.card_cents
            else:
                aggregate.cash_refunds_cents += self.cash_cents
                aggregate.card_refunds_cents += self.card_cents

    class CashMoved(Aggregate.Event):
        movement_id: UUID
        till_id: str
        business_date: date
        direction: str
        amount_cents: int
        reason: str
        note: str
        moved_at: datetime
        actor: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, CashSession)
            if self.direction == CashDirection.IN.value:
                aggregate.cash_in_cents += self.amount_cents
            else:
                aggregate.cash_out_cents += self.amount_cents

    class Closed(Aggregate.Event):
        closed_at: datetime
        closed_by: str
        counted_cash_cents: int
        expected_cash_cents: int
        difference_cents: int  # counted - expected: negative is a shortage
        tolerance_cents: int
        within_tolerance: bool
        terminal_card_cents: int | None
        # The count by denomination (see `count_sheet`); None where the close gave
        # only the total, and in events recorded before the sheet was kept. Not in
        # the aggregate's state (the read model takes it from here): a new attribute
        # would make every snapshot stored before it differ from its events.
        denominations: dict[str, int] | None = None
        # The card terminal's total minus the till's card total, when the terminal's
        # was given; None otherwise and in events recorded before it was kept.
        card_difference_cents: int | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, CashSession)
            aggregate.is_open = False
            aggregate.counted_cash_cents = self.counted_cash_cents
            aggregate.difference_cents = self.difference_cents

    def __init__(
        self,
        till_id: str,
        z_number: int,
        opening_float_cents: int,
        opened_at: datetime,
        business_date: date,
        opened_by: str,
        receipt_day: date | None,
        last_receipt_number: int,
    ) -> None:
        self.till_id = till_id
        self.z_number = z_number
        self.opening_float_cents = opening_float_cents
        self.opened_at = opened_at
        self.business_date = business_date
        self.opened_by = opened_by
        self.receipt_day = receipt_day
        self.last_receipt_number = last_receipt_number
        self.is_open = True
        self.cash_sales_cents = 0
        self.card_sales_cents = 0
        self.cash_refunds_cents = 0
        self.card_refunds_cents = 0
        self.cash_in_cents = 0
        self.cash_out_cents = 0
        self.counted_cash_cents: int | None = None
        self.difference_cents: int | None = None

    @property
    def expected_cash_cents(self) -> int:
        return (
            self.opening_float_cents
            + self.cash_sales_cents
            - self.cash_refunds_cents
            + self.cash_in_cents
            - self.cash_out_cents
        )

    def check_open(self) -> None:
        if not self.is_open:
            raise SessionClosed(f"cash session {self.id} is closed")

    def check_scope(self, till_scope: str | None) -> None:
        check_scope(till_scope, self.till_id)

    def document_day(self, day: date) -> date:
        """The day a document decided on `day` is numbered on: never before the till's
        last document's. Around midnight another device's document may have begun the
        next day while this one was decided; saved after it, this one's receipt is
        issued on that day too (numbering it 1 again on the day before would print a
        second receipt 1 for a day that has one)."""
        return day if self.receipt_day is None else max(day, self.receipt_day)

    def next_receipt(self, day: date) -> int:
        """The number the next document on `day` takes: 1 on a new day."""
        return self.last_receipt_number + 1 if day == self.receipt_day else 1

    def record_document(
        self,
        *,
        document_id: UUID,
        kind: str,
        receipt_day: date,
        receipt_number: int,
        cash_cents: int,
        card_cents: int,
    ) -> None:
        self.check_open()
        if receipt_day != self.document_day(receipt_day):
            raise ValueError("receipt days never go back")  # a bug, not input
        if receipt_number != self.next_receipt(receipt_day):
            raise ValueError("receipt numbers are taken in order")  # a bug, not input
        if kind == "refund" and cash_cents > self.expected_cash_cents:
            # Only a refund pays cash out here: name the refund's input that chooses
            # the method (RefundSaleInput.refundMethod), which has no `payments`.
            raise ValidationError(
                "refundMethod",
                f"the drawer should hold only {format_cents(self.expected_cash_cents)} EUR "
                "in cash; refund by card or bring change first",
            )
        self.trigger_event(
            self.DocumentRecorded,
            document_id=document_id,
            kind=kind,
            receipt_day=receipt_day,
            receipt_number=receipt_number,
            cash_cents=cash_cents,
            card_cents=card_cents,
        )

    def move_cash(
        self,
        *,
        movement_id: UUID,
        direction: CashDirection,
        amount_cents: int,
        reason: str,
        note: str,
        moved_at: datetime,
        business_date: date,
        actor: str,
    ) -> None:
        self.check_open()
        if direction is CashDirection.OUT and amount_cents > self.expected_cash_cents:
            raise ValidationError(
                "amount",
                f"more than the {format_cents(self.expected_cash_cents)} EUR the drawer "
                "should hold",
            )
        self.trigger_event(
            self.CashMoved,
            movement_id=movement_id,
            till_id=self.till_id,
            business_date=business_date,
            direction=direction.value,
            amount_cents=amount_cents,
            reason=reason,
            note=note,
            moved_at=moved_at,
            actor=actor,
        )

    @property
    def card_total_cents(self) -> int:
        """Card sales minus card refunds: what the card terminal should show."""
        return self.card_sales_cents - self.card_refunds_cents

    def close(
        self,
        *,
        counted_cash_cents: int,
        tolerance_cents: int,
        closed_at: datetime,
        closed_by: str,
        terminal_card_cents: int | None,
        ceiling_cents: int,
        denominations: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        """Z close; `denominations` the count by coin and note, if given, as (value in
        cents, how many) lines that add up to the counted cash.

        A counted total is bounded by how far it is from what the till expects, not by
        its size: the drawer (or the card terminal) may rightly hold more than the
        amount ceiling after a busy session, and the true count must close it. A count
        further than the ceiling from the expected figure is refused as a typo (the
        cash difference is posted like any amount, at most the ceiling)."""
        self.check_open()
        expected = self.expected_cash_cents
        difference = counted_cash_cents - expected
        if counted_cash_cents < 0:
            raise ValidationError("countedCash", "must not be negative")
        _check_counted(
            "countedCash", counted_cash_cents, expected, ceiling_cents, "the drawer should hold"
        )
        sheet = None if denominations is None else count_sheet(counted_cash_cents, denominations)
        if terminal_card_cents is not None:
            # Negative only where the till's own card total is: otherwise it is a sign
            # typed by mistake, and would close on a card difference that never was.
            if terminal_card_cents < 0 <= self.card_total_cents:
                raise ValidationError(
                    "cardTerminalTotal",
                    "must not be negative: this session refunded no more to cards than it took",
                )
            _check_counted(
                "cardTerminalTotal",
                terminal_card_cents,
                self.card_total_cents,
                ceiling_cents,
                "the till's card total is",
            )
        self.trigger_event(
            self.Closed,
            closed_at=closed_at,
            closed_by=closed_by,
            counted_cash_cents=counted_cash_cents,
            expected_cash_cents=expected,
            difference_cents=difference,
            tolerance_cents=tolerance_cents,
            within_tolerance=abs(difference) <= tolerance_cents,
            terminal_card_cents=terminal_card_cents,
            denominations=sheet,
            card_difference_cents=None
            if terminal_card_cents is None
            else terminal_card_cents - self.card_total_cents,
        )


def _check_counted(
    field: str, counted_cents: int, expected_cents: int, ceiling_cents: int, what: str
) -> None:
    if abs(counted_cents - expected_cents) > ceiling_cents:
        raise ValidationError(
            field,
            f"differs from the {format_cents(expected_cents)} EUR {what} by more than the "
            f"amount ceiling of {format_cents(ceiling_cents)} EUR; count again",
        )

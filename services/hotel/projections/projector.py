"""Fills the hotel read models from Booking events.

Booking events carry the folio lines they add or replace (priced when the command
ran), so this projector never reads configuration: it mirrors what the events say.
Inserts of a page are batched; folio totals are kept by deltas (a charge adds to the
extras, a payment to what was paid) or set from a repriced stay, never recomputed
with subqueries, so an event costs one or two statements.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Table, delete, func, insert, select, update

from services.common.projections import DomainEvent, Projection
from services.hotel.domain import Booking
from services.hotel.domain.folio import (
    DEPOSIT,
    EXEMPT_AGE,
    EXEMPT_CAP,
    EXEMPT_OTHER,
    EXEMPT_RESIDENT,
    TOURIST_TAX,
    FolioLine,
    Payment,
    TouristTax,
    nights_between,
)
from services.hotel.domain.guests import GuestFacts
from services.hotel.projections.tables import (
    EXTRA,
    HOTEL_TABLES,
    STAY,
    hotel_bookings,
    hotel_folio_lines,
    hotel_guests,
    hotel_payments,
    hotel_room_nights,
    hotel_tourist_tax,
)


def _line_row(booking_id: UUID, section: int, seq: int, state: dict[str, Any]) -> dict[str, Any]:
    line = FolioLine.from_state(state)
    return {
        "booking_id": booking_id,
        "section": section,
        "seq": seq,
        "kind": line.kind,
        "description": line.description,
        "service_date": line.service_date,
        "amount_cents": line.amount_cents,
        "vat_rate_bp": line.vat_rate_bp,
        "net_cents": line.net_cents,
        "vat_cents": line.vat_cents,
    }


def _payment_row(booking_id: UUID, seq: int, state: dict[str, Any]) -> dict[str, Any]:
    payment = Payment.from_state(state)
    return {
        "booking_id": booking_id,
        "seq": seq,
        "kind": payment.kind,
        "method": payment.method,
        "amount_cents": payment.amount_cents,
        "on_date": payment.on,
    }


def _guest_row(booking_id: UUID, position: int, state: dict[str, Any]) -> dict[str, Any]:
    guest = GuestFacts.from_state(state)
    return {
        **guest.as_state(),
        "booking_id": booking_id,
        "position": position,
        "residence": guest.residence,
    }


class _Page:
    """Pending inserts, flushed before any statement that must see them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: dict[Table, list[dict[str, Any]]] = {t: [] for t in HOTEL_TABLES}

    def add(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.rows[table].extend(rows)

    def flush(self) -> None:
        for table in HOTEL_TABLES:  # parents first
            if self.rows[table]:
                self.conn.execute(insert(table), self.rows[table])
                self.rows[table] = []

    def execute(self, statement: Any) -> None:
        self.flush()
        self.conn.execute(statement)


class HotelProjection(Projection):
    name: ClassVar[str] = "hotel"
    tables: ClassVar[tuple[Table, ...]] = HOTEL_TABLES
    topics: ClassVar[frozenset[str]] = frozenset(
        get_topic(cls)
        for cls in (
            Booking.Booked,
            Booking.CheckedIn,
            Booking.CheckInUndone,
            Booking.GuestsChanged,
            Booking.StayChanged,
            Booking.ChargePosted,
            Booking.ChargeVoided,
            Booking.PaymentRecorded,
            Booking.CheckedOut,
            Booking.Cancelled,
            Booking.MarkedNoShow,
            Booking.PenaltyWaived,
            Booking.GuestsReported,
            Booking.GuestDataErased,
        )
    )

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        page = _Page(conn)
        b = hotel_bookings.c
        for position, event in events:
            booking_id = event.originator_id
            this = b.booking_id == booking_id
            if isinstance(event, Booking.Booked):
                self._booked(page, position, event)
            elif isinstance(event, Booking.CheckedIn):
                self._replace_stay(page, booking_id, event.stay_lines)
                if event.guests is not None:  # a late arrival: ages on the day they came
                    self._replace_guests(page, booking_id, event.guests)
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(
                        status="CHECKED_IN",
                        checked_in_on=event.on,
                        checked_in_at=event.timestamp,
                        **_stay_totals(event.stay_lines),
                    )
                )
            elif isinstance(event, Booking.CheckInUndone):
                self._replace_stay(page, booking_id, event.stay_lines)
                if event.guests is not None:
                    self._replace_guests(page, booking_id, event.guests)
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(
                        status="CONFIRMED",
                        checked_in_on=None,
                        checked_in_at=None,
                        **_stay_totals(event.stay_lines),
                    )
                )
            elif isinstance(event, Booking.GuestsChanged):
                self._guests_changed(page, booking_id, event)
            elif isinstance(event, Booking.StayChanged):
                self._stay_changed(page, booking_id, event)
            elif isinstance(event, Booking.ChargePosted | Booking.ChargeVoided):
                page.add(
                    hotel_folio_lines, [_line_row(booking_id, EXTRA, event.number, event.line)]
                )
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(extras_cents=b.extras_cents + int(event.line["cents"]))
                )
            elif isinstance(event, Booking.PaymentRecorded):
                page.add(
                    hotel_payments, [_payment_row(booking_id, event.number - 1, event.payment)]
                )
                payment = Payment.from_state(event.payment)
                # A deposit that came after the booking is a deposit too.
                held = payment.amount_cents if payment.kind == DEPOSIT else 0
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(
                        paid_cents=b.paid_cents + payment.signed_cents,
                        deposit_cents=b.deposit_cents + held,
                    )
                )
            elif isinstance(event, Booking.CheckedOut):
                self._checked_out(page, booking_id, event)
            elif isinstance(event, Booking.Cancelled | Booking.MarkedNoShow):
                status = "CANCELLED" if isinstance(event, Booking.Cancelled) else "NO_SHOW"
                self._replace_stay(page, booking_id, event.closing_lines)
                if event.payments:
                    page.flush()
                    first = int(
                        conn.execute(
                            select(func.count()).where(hotel_payments.c.booking_id == booking_id)
                        ).scalar_one()
                    )
                    page.add(
                        hotel_payments,
                        [
                            _payment_row(booking_id, first + i, state)
                            for i, state in enumerate(event.payments)
                        ],
                    )
                signed = sum(Payment.from_state(p).signed_cents for p in event.payments)
                page.execute(
                    delete(hotel_room_nights).where(hotel_room_nights.c.booking_id == booking_id)
                )
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(
                        status=status,
                        closed_on=event.on,
                        paid_cents=b.paid_cents + signed,
                        **_stay_totals(event.closing_lines),
                    )
                )
            elif isinstance(event, Booking.PenaltyWaived):
                self._replace_stay(page, booking_id, event.closing_lines)
                page.execute(
                    update(hotel_bookings).where(this).values(**_stay_totals(event.closing_lines))
                )
            elif isinstance(event, Booking.GuestsReported):
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(reported_at=_utc_instant(event.reported_at))
                )
            elif isinstance(event, Booking.GuestDataErased):
                # The key is deleted too; drop the unreadable text all the same.
                page.execute(
                    update(hotel_bookings)
                    .where(this)
                    .values(guest_identities_sealed=None, guest_data_erased=True)
                )
        page.flush()

    @staticmethod
    def _checked_out(page: _Page, booking_id: UUID, event: Booking.CheckedOut) -> None:
        HotelProjection._replace_stay(page, booking_id, event.stay_lines)
        released = [date.fromisoformat(n) for n in event.released_nights]
        if released:
            page.execute(
                delete(hotel_room_nights).where(
                    hotel_room_nights.c.booking_id == booking_id,
                    hotel_room_nights.c.night.in_(released),
                )
            )
        page.execute(
            update(hotel_bookings)
            .where(hotel_bookings.c.booking_id == booking_id)
            .values(
                status="CHECKED_OUT",
                checked_out_on=event.on,
                stay_end=_stay_end(event.stay_lines),
                **_stay_totals(event.stay_lines),
            )
        )
        tax = TouristTax.from_state(event.tourist_tax)
        page.add(
            hotel_tourist_tax,
            [
                {
                    "booking_id": booking_id,
                    "collected_on": event.on,
                    "amount_cents": tax.amount_cents,
                    "taxed_guest_nights": tax.taxed_guest_nights,
                    "exempt_age": tax.exempt_guest_nights.get(EXEMPT_AGE, 0),
                    "exempt_resident": tax.exempt_guest_nights.get(EXEMPT_RESIDENT, 0),
                    "exempt_other": tax.exempt_guest_nights.get(EXEMPT_OTHER, 0),
                    "exempt_cap": tax.exempt_guest_nights.get(EXEMPT_CAP, 0),
                }
            ],
        )

    @staticmethod
    def _replace_guests(page: _Page, booking_id: UUID, guests: list[dict[str, Any]]) -> None:
        page.execute(delete(hotel_guests).where(hotel_guests.c.booking_id == booking_id))
        page.add(hotel_guests, [_guest_row(booking_id, i, state) for i, state in enumerate(guests)])

    @staticmethod
    def _guests_changed(page: _Page, booking_id: UUID, event: Booking.GuestsChanged) -> None:
        HotelProjection._replace_stay(page, booking_id, event.stay_lines)
        HotelProjection._replace_guests(page, booking_id, event.guests)
        page.execute(
            update(hotel_room_nights)
            .where(hotel_room_nights.c.booking_id == booking_id)
            .values(guest_count=len(event.guests))
        )
        page.execute(
            update(hotel_bookings)
            .where(hotel_bookings.c.booking_id == booking_id)
            .values(
                party_type=event.party_type,
                guest_count=len(event.guests),
                guest_identities_sealed=event.guest_identities_sealed,
                **_stay_totals(event.stay_lines),
            )
        )

    @staticmethod
    def _stay_changed(page: _Page, booking_id: UUID, event: Booking.StayChanged) -> None:
        HotelProjection._replace_stay(page, booking_id, event.stay_lines)
        HotelProjection._replace_guests(page, booking_id, event.guests)
        page.execute(delete(hotel_room_nights).where(hotel_room_nights.c.booking_id == booking_id))
        page.add(hotel_room_nights, _room_night_rows(booking_id, event))
        page.execute(
            update(hotel_bookings)
            .where(hotel_bookings.c.booking_id == booking_id)
            .values(
                room_number=event.room_number,
                arrival=event.arrival,
                departure=event.departure,
                stay_end=event.departure,
                nightly_rate_cents=event.nightly_rate_cents,
                **_stay_totals(event.stay_lines),
            )
        )

    @staticmethod
    def _booked(page: _Page, position: int, event: Booking.Booked) -> None:
        booking_id = event.originator_id
        deposit = sum(int(p["cents"]) for p in event.payments if p["kind"] == DEPOSIT)
        page.add(
            hotel_bookings,
            [
                {
                    "booking_id": booking_id,
                    "position": position,
                    "room_number": event.room_number,
                    "arrival": event.arrival,
                    "departure": event.departure,
                    "stay_end": event.departure,
                    "status": "CONFIRMED",
                    "party_type": event.party_type,
                    "guest_count": len(event.guests),
                    "nightly_rate_cents": event.nightly_rate_cents,
                    "deposit_cents": deposit,
                    "extras_cents": 0,
                    "paid_cents": deposit,
                    **_stay_totals(event.stay_lines),
                    "booked_on": event.booked_on,
                    "guest_identities_sealed": event.guest_identities_sealed,
                    "guest_identities_legacy": (
                        None
                        if event.guest_identities_legacy is None
                        else json.dumps(event.guest_identities_legacy)
                    ),
                    "guest_data_erased": False,
                }
            ],
        )
        page.add(
            hotel_guests,
            [_guest_row(booking_id, i, state) for i, state in enumerate(event.guests)],
        )
        page.add(
            hotel_folio_lines,
            [_line_row(booking_id, STAY, i, s) for i, s in enumerate(event.stay_lines)],
        )
        page.add(
            hotel_payments,
            [_payment_row(booking_id, i, s) for i, s in enumerate(event.payments)],
        )
        page.add(hotel_room_nights, _room_night_rows(booking_id, event))

    @staticmethod
    def _replace_stay(page: _Page, booking_id: UUID, states: list[dict[str, Any]]) -> None:
        page.execute(
            delete(hotel_folio_lines).where(
                hotel_folio_lines.c.booking_id == booking_id,
                hotel_folio_lines.c.section == STAY,
            )
        )
        page.add(
            hotel_folio_lines,
            [_line_row(booking_id, STAY, i, s) for i, s in enumerate(states)],
        )


def _room_night_rows(
    booking_id: UUID, event: Booking.Booked | Booking.StayChanged
) -> list[dict[str, Any]]:
    return [
        {
            "room_number": event.room_number,
            "night": night,
            "booking_id": booking_id,
            "guest_count": len(event.guests),
        }
        for night in nights_between(event.arrival, event.departure)
    ]


def _stay_totals(states: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "stay_cents": sum(int(s["cents"]) for s in states),
        "tourist_tax_cents": sum(int(s["cents"]) for s in states if s["kind"] == TOURIST_TAX),
    }


def _stay_end(stay_lines: list[dict[str, Any]]) -> date:
    """The day after the last night charged (a check-out charges at least one night)."""
    last_night = max(date.fromisoformat(s["date"]) for s in stay_lines if s["kind"] == "ROOM")
    return last_night + timedelta(days=1)


def _utc_instant(text: str) -> datetime:
    """An ISO instant with its offset, in UTC: SQLite's DateTime keeps no offset (it
    drops it without converting) and the read side takes what it stores as UTC, so
    18:00+01:00 must be stored as 17:00. PostgreSQL's timestamptz gets the same."""
    return datetime.fromisoformat(text).astimezone(UTC)

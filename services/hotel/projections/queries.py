"""Read-side queries over the hotel read models (async; asyncpg / aiosqlite)."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.errors import ValidationError
from services.common.sealing import read_keys, unseal
from services.hotel.domain.folio import FolioLine, Payment
from services.hotel.domain.guests import Guest, GuestFacts
from services.hotel.keys import hotel_guest_keys
from services.hotel.projections.tables import (
    EXTRA,
    hotel_bookings,
    hotel_folio_lines,
    hotel_guests,
    hotel_payments,
    hotel_room_nights,
    hotel_tourist_tax,
)

ACTIVE_STAY = ("CHECKED_IN", "CHECKED_OUT")
ERASABLE_STATUSES = ("CHECKED_OUT", "CANCELLED", "NO_SHOW")


@dataclass(frozen=True)
class BookingView:
    booking_id: UUID
    position: int
    room_number: str
    arrival: date
    departure: date
    stay_end: date
    status: str
    party_type: str
    guest_count: int
    nightly_rate_cents: int
    deposit_cents: int
    total_cents: int
    paid_cents: int
    tourist_tax_cents: int
    booked_on: date
    checked_in_on: date | None
    checked_in_at: datetime | None
    checked_out_on: date | None
    closed_on: date | None
    reported_at: datetime | None
    guest_data_erased: bool
    # The guests' identities as stored (sealed, or legacy clear JSON): opened by
    # _with_details, never shown.
    stored_identities: str | None = field(default=None, repr=False)
    identities_sealed: bool = field(default=True, repr=False)
    # Not erased, yet its identities could not be opened (its key is missing, e.g. a
    # key table restored from an older backup): `guests` is empty for another reason.
    guest_data_unreadable: bool = False
    lines: list[FolioLine] = field(default_factory=list)
    # Parallel to `lines`: an extra charge's number (what voidCharge takes), None for
    # the stay's own lines.
    charge_numbers: list[int | None] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)

    @property
    def balance_cents(self) -> int:
        return self.total_cents - self.paid_cents


@dataclass(frozen=True)
class BookingPage:
    bookings: list[BookingView]
    has_next_page: bool
    end_cursor: str | None


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite keeps no offset; we store UTC
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value


def _view(row: Any) -> BookingView:
    return BookingView(
        booking_id=row["booking_id"],
        position=int(row["position"]),
        room_number=row["room_number"],
        arrival=row["arrival"],
        departure=row["departure"],
        stay_end=row["stay_end"],
        status=row["status"],
        party_type=row["party_type"],
        guest_count=int(row["guest_count"]),
        nightly_rate_cents=int(row["nightly_rate_cents"]),
        deposit_cents=int(row["deposit_cents"]),
        total_cents=int(row["stay_cents"]) + int(row["extras_cents"]),
        paid_cents=int(row["paid_cents"]),
        tourist_tax_cents=int(row["tourist_tax_cents"]),
        booked_on=row["booked_on"],
        checked_in_on=row["checked_in_on"],
        checked_in_at=_utc(row["checked_in_at"]),
        checked_out_on=row["checked_out_on"],
        closed_on=row["closed_on"],
        reported_at=_utc(row["reported_at"]),
        guest_data_erased=bool(row["guest_data_erased"]),
        stored_identities=row["guest_identities_sealed"] or row["guest_identities_legacy"],
        identities_sealed=row["guest_identities_legacy"] is None,
    )


def _guest_facts(row: Any) -> GuestFacts:
    return GuestFacts(
        age_on_arrival=int(row["age_on_arrival"]),
        residence_country_code=row["residence_country_code"],
        residence_municipality_code=row["residence_municipality_code"],
        residence_province=row["residence_province"],
        has_exemption_reason=bool(row["has_exemption_reason"]),
    )


async def _identities(
    conn: AsyncConnection, views: list[BookingView]
) -> dict[UUID, list[dict[str, Any]]]:
    """Each booking's guest identities, opened with its key; none for a booking whose
    key is gone (erased, or lost)."""
    sealed = [v for v in views if v.stored_identities is not None and v.identities_sealed]
    keys = await read_keys(conn, hotel_guest_keys, [v.booking_id for v in sealed])
    out: dict[UUID, list[dict[str, Any]]] = {}
    for view in views:
        text = view.stored_identities
        if text is None:
            continue
        if view.identities_sealed:
            key = keys.get(view.booking_id)
            text = None if key is None else unseal(key, view.booking_id, text)
        if text is not None:
            out[view.booking_id] = json.loads(text)
    return out


async def _with_details(conn: AsyncConnection, views: list[BookingView]) -> list[BookingView]:
    if not views:
        return views
    ids = [v.booking_id for v in views]
    lines: dict[UUID, list[FolioLine]] = defaultdict(list)
    charge_numbers: dict[UUID, list[int | None]] = defaultdict(list)
    payments: dict[UUID, list[Payment]] = defaultdict(list)
    guests: dict[UUID, list[Guest]] = defaultdict(list)
    fl = hotel_folio_lines.c
    for row in (
        await conn.execute(
            select(hotel_folio_lines)
            .where(fl.booking_id.in_(ids))
            .order_by(fl.booking_id, fl.section, fl.seq)
        )
    ).mappings():
        lines[row["booking_id"]].append(
            FolioLine(
                row["kind"],
                row["description"],
                row["service_date"],
                int(row["amount_cents"]),
                None if row["vat_rate_bp"] is None else int(row["vat_rate_bp"]),
                int(row["net_cents"]),
                int(row["vat_cents"]),
            )
        )
        charge_numbers[row["booking_id"]].append(
            int(row["seq"]) if row["section"] == EXTRA else None
        )
    p = hotel_payments.c
    for row in (
        await conn.execute(
            select(hotel_payments).where(p.booking_id.in_(ids)).order_by(p.booking_id, p.seq)
        )
    ).mappings():
        payments[row["booking_id"]].append(
            Payment(row["kind"], row["method"], int(row["amount_cents"]), row["on_date"])
        )
    identities = await _identities(conn, views)
    g = hotel_guests.c
    for row in (
        await conn.execute(
            select(hotel_guests).where(g.booking_id.in_(ids)).order_by(g.booking_id, g.position)
        )
    ).mappings():
        booking_identities = identities.get(row["booking_id"])
        if booking_identities is not None:
            guests[row["booking_id"]].append(
                Guest.from_parts(booking_identities[row["position"]], _guest_facts(row))
            )
    out = []
    for view in views:
        view.lines.extend(lines[view.booking_id])
        view.charge_numbers.extend(charge_numbers[view.booking_id])
        view.payments.extend(payments[view.booking_id])
        view.guests.extend(guests[view.booking_id])
        if view.stored_identities is not None and view.booking_id not in identities:
            view = replace(view, guest_data_unreadable=True)
        out.append(view)
    return out


async def booking_by_id(conn: AsyncConnection, booking_id: UUID) -> BookingView | None:
    row = (
        (
            await conn.execute(
                select(hotel_bookings).where(hotel_bookings.c.booking_id == booking_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return (await _with_details(conn, [_view(row)]))[0]


def encode_cursor(arrival: date, position: int) -> str:
    return base64.urlsafe_b64encode(f"{arrival.isoformat()}|{position}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[date, int]:
    try:
        day, position = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return date.fromisoformat(day), int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("after", "not a cursor returned by this query") from None


async def bookings_page(
    conn: AsyncConnection,
    *,
    status: str | None,
    from_date: date | None,
    to_date: date | None,
    first: int,
    after: str | None,
) -> BookingPage:
    """Bookings whose stay overlaps [from, to] (nights), by arrival; keyset pagination."""
    b = hotel_bookings.c
    query = select(hotel_bookings)
    if status is not None:
        query = query.where(b.status == status)
    if from_date is not None:
        query = query.where(b.departure > from_date)
    if to_date is not None:
        query = query.where(b.arrival <= to_date)
    if after is not None:
        after_arrival, after_position = decode_cursor(after)
        query = query.where(
            (b.arrival > after_arrival)
            | and_(b.arrival == after_arrival, b.position > after_position)
        )
    rows = (
        (await conn.execute(query.order_by(b.arrival, b.position).limit(first + 1)))
        .mappings()
        .all()
    )
    has_next = len(rows) > first
    views = await _with_details(conn, [_view(row) for row in rows[:first]])
    end_cursor = encode_cursor(views[-1].arrival, views[-1].position) if views else None
    return BookingPage(views, has_next, end_cursor)


@dataclass(frozen=True)
class NightOccupancy:
    night: date
    rooms_sold: int
    guests: int


async def occupancy(conn: AsyncConnection, from_date: date, to_date: date) -> list[NightOccupancy]:
    n = hotel_room_nights.c
    rows = await conn.execute(
        select(n.night, func.count(), func.sum(n.guest_count))
        .where(n.night >= from_date, n.night <= to_date)
        .group_by(n.night)
    )
    sold = {night: (int(count), int(guests or 0)) for night, count, guests in rows}
    days = (to_date - from_date).days + 1
    out = []
    for i in range(days):
        night = from_date + timedelta(days=i)
        count, guests = sold.get(night, (0, 0))
        out.append(NightOccupancy(night, count, guests))
    return out


async def arrivals_on(conn: AsyncConnection, day: date) -> list[BookingView]:
    """Bookings whose guests arrived (checked in) on `day`, with their guests."""
    b = hotel_bookings.c
    rows = (
        (
            await conn.execute(
                select(hotel_bookings)
                .where(b.checked_in_on == day, b.status.in_(ACTIVE_STAY))
                .order_by(b.position)
            )
        )
        .mappings()
        .all()
    )
    return await _with_details(conn, [_view(row) for row in rows])


@dataclass(frozen=True)
class ErasableBooking:
    booking_id: UUID
    status: str
    ended_on: date
    position: int  # with ended_on, the cursor of the next page


async def erasable(
    conn: AsyncConnection,
    ended_before: date,
    limit: int,
    after: tuple[date, int] | None = None,
) -> list[ErasableBooking]:
    """Bookings whose guest identities may be erased (Booking.erase_guest_data's rules)
    and whose stay ended before `ended_before`, by end day then booking order, from
    after the (ended_on, position) cursor `after`."""
    b = hotel_bookings.c
    ended = func.coalesce(b.checked_out_on, b.closed_on)
    query = select(b.booking_id, b.status, ended, b.position).where(
        b.status.in_(ERASABLE_STATUSES),
        ended < ended_before,
        b.guest_data_erased.is_(False),
        b.guest_identities_sealed.is_not(None),
        or_(b.checked_in_on.is_(None), b.reported_at.is_not(None)),
    )
    if after is not None:
        after_day, after_position = after
        query = query.where(
            or_(ended > after_day, and_(ended == after_day, b.position > after_position))
        )
    rows = await conn.execute(query.order_by(ended, b.position).limit(limit))
    return [
        ErasableBooking(booking_id, status, ended_on, int(position))
        for booking_id, status, ended_on, position in rows
    ]


async def erased_with_keys(conn: AsyncConnection) -> list[UUID]:
    """Erased bookings whose key still exists: an erasure interrupted between its
    event and its key delete, or a key created again by a retried booking request."""
    b, k = hotel_bookings.c, hotel_guest_keys.c
    rows = await conn.execute(
        select(b.booking_id)
        .select_from(hotel_bookings.join(hotel_guest_keys, k.booking_id == b.booking_id))
        .where(b.guest_data_erased.is_(True))
    )
    return [booking_id for (booking_id,) in rows]


async def unreported(conn: AsyncConnection, limit: int) -> list[BookingView]:
    """Checked-in bookings whose guests were not reported yet, oldest check-in first."""
    b = hotel_bookings.c
    rows = (
        (
            await conn.execute(
                select(hotel_bookings)
                .where(b.status.in_(ACTIVE_STAY), b.reported_at.is_(None))
                .order_by(b.checked_in_at, b.position)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return [_view(row) for row in rows]


@dataclass(frozen=True)
class ResidenceCount:
    residence: str
    arrivals: int
    nights: int


async def istat_month(
    conn: AsyncConnection, first_day: date, last_day: date
) -> list[ResidenceCount]:
    """Arrivals (check-ins in the month) and guest-nights spent in it, by residence."""
    b, g = hotel_bookings.c, hotel_guests.c
    rows = await conn.execute(
        select(b.checked_in_on, b.stay_end, g.residence)
        .select_from(hotel_bookings.join(hotel_guests, g.booking_id == b.booking_id))
        .where(
            b.status.in_(ACTIVE_STAY),
            b.checked_in_on <= last_day,
            b.stay_end > first_day,
        )
    )
    arrivals: dict[str, int] = defaultdict(int)
    nights: dict[str, int] = defaultdict(int)
    for checked_in_on, stay_end, residence in rows:
        if first_day <= checked_in_on <= last_day:
            arrivals[residence] += 1
        start = max(checked_in_on, first_day)
        # Nights up to the month's last one (no day after December 9999 to count to).
        end = min(stay_end - timedelta(days=1), last_day)
        nights[residence] += max((end - start).days + 1, 0)
    return [
        ResidenceCount(residence, arrivals[residence], nights[residence])
        for residence in sorted(set(arrivals) | set(nights))
    ]


@dataclass(frozen=True)
class TouristTaxTotals:
    stays: int
    amount_cents: int
    taxed_guest_nights: int
    exempt: dict[str, int]


async def tourist_tax_totals(
    conn: AsyncConnection, from_date: date, to_date: date
) -> list[tuple[str, TouristTaxTotals]]:
    """Tax collected (on check-out) per month of the period, for the municipality."""
    t = hotel_tourist_tax.c
    rows = await conn.execute(
        select(
            t.collected_on,
            t.amount_cents,
            t.taxed_guest_nights,
            t.exempt_age,
            t.exempt_resident,
            t.exempt_other,
            t.exempt_cap,
        ).where(t.collected_on >= from_date, t.collected_on <= to_date)
    )
    months: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    for collected_on, *values in rows:
        totals = months[f"{collected_on.year:04d}-{collected_on.month:02d}"]
        totals[0] += 1
        for i, value in enumerate(values, start=1):
            totals[i] += int(value)
    return [
        (
            month,
            TouristTaxTotals(
                stays=v[0],
                amount_cents=v[1],
                taxed_guest_nights=v[2],
                exempt={"age": v[3], "resident": v[4], "other": v[5], "cap": v[6]},
            ),
        )
        for month, v in sorted(months.items())
    ]

"""Read-side queries over the hotel read models (async; asyncpg / aiosqlite)."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.cursors import dated_after, dated_cursor, not_a_cursor, position_in_cursor
from services.common.sealing import read_keys, unseal
from services.hotel.domain.alloggiati import (
    DEADLINE,
    SHORT_STAY_DEADLINE,
    arrived_at,
    deadline_for,
    nights_reported,
)
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
    return None if value is None else _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    # SQLite keeps no offset; we store UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
        after_arrival, after_position = dated_after("bookings", after)
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
    end_cursor = dated_cursor("bookings", views[-1].arrival, views[-1].position) if views else None
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
        b.stay_cents + b.extras_cents == b.paid_cents,  # nothing owed either way
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


async def keys_without_booking(conn: AsyncConnection, created_before: datetime) -> list[UUID]:
    """Keys created before `created_before` whose booking the read model does not
    have: a createBooking seals its guests (creating the key) before the checks that
    may still refuse it (the room taken meanwhile, the idempotency key reused). The
    caller checks the event store too: the read model may lag behind a save."""
    b, k = hotel_bookings.c, hotel_guest_keys.c
    rows = await conn.execute(
        select(k.booking_id)
        .select_from(hotel_guest_keys.outerjoin(hotel_bookings, b.booking_id == k.booking_id))
        .where(b.booking_id.is_(None), k.created_at < created_before)
    )
    return [booking_id for (booking_id,) in rows]


# A stay's place in its deadline class: check-in day, check-in instant, booking order.
# Within one class this is the order of the arrivals, hence of the deadlines (a check-in
# is recorded on or after its day, so its arrival lies within that day).
PendingKey = tuple[date, datetime, int]


@dataclass(frozen=True)
class PendingStay:
    """A checked-in booking whose guests are not reported yet, with its deadline."""

    view: BookingView
    key: PendingKey  # where the next page of its deadline class starts
    nights: int  # from the check-in day, as the Alloggiati record counts them
    arrived: datetime
    deadline: datetime


@dataclass(frozen=True)
class PendingPage:
    stays: list[PendingStay]
    total: int  # every stay due by the horizon, over all pages
    has_next_page: bool
    end_cursor: str | None


# The two deadline classes: reported 6 h after the arrival (a one-night stay) or 24 h.
# Each is read in its arrival order; merged, they give every stay by its deadline.
_SHORT, _LONG = "short", "long"


def _days_from_check_in(conn: AsyncConnection) -> Any:
    """The days from the check-in day to the end of the stay, in SQL (`nights_reported`
    before its floor of one): SQLite keeps dates as ISO text, PostgreSQL subtracts them."""
    b = hotel_bookings.c
    if conn.dialect.name == "sqlite":
        return func.julianday(b.stay_end) - func.julianday(b.checked_in_on)
    return b.stay_end - b.checked_in_on


def _arrived_by(instant: datetime, zone: tzinfo) -> Any:
    """`arrived_at(checked_in_at, checked_in_on) <= instant` in SQL: recorded by then,
    or its day ended by then (the end of day d is the start of d + 1, local time)."""
    b = hotel_bookings.c
    return or_(
        b.checked_in_at <= instant.astimezone(UTC),  # SQLite stores UTC without offset
        b.checked_in_on <= instant.astimezone(zone).date() - timedelta(days=1),
    )


def _after_key(key: PendingKey) -> Any:
    b = hotel_bookings.c
    day, at, position = key
    return or_(
        b.checked_in_on > day,
        and_(
            b.checked_in_on == day,
            or_(
                b.checked_in_at > at.astimezone(UTC),
                and_(b.checked_in_at == at.astimezone(UTC), b.position > position),
            ),
        ),
    )


def encode_pending_cursor(keys: dict[str, PendingKey | None]) -> str:
    state = {
        name: None if key is None else [key[0].isoformat(), key[1].isoformat(), key[2]]
        for name, key in keys.items()
    }
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()


def decode_pending_cursor(cursor: str) -> dict[str, PendingKey | None]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
        keys: dict[str, PendingKey | None] = {}
        for name in (_SHORT, _LONG):
            value = state[name]
            if value is None:
                keys[name] = None
                continue
            day, at_text, position = value
            at = datetime.fromisoformat(at_text)
            if at.tzinfo is None or type(position) is not int:
                raise ValueError("not a key of this query")
            keys[name] = (date.fromisoformat(day), at, position_in_cursor(str(position)))
        return keys
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise not_a_cursor() from None


def _pending_stay(row: Any, zone: tzinfo) -> PendingStay:
    view = _view(row)
    checked_in_on: date = row["checked_in_on"]  # both not null: filtered in SQL
    checked_in_at: datetime = _as_utc(row["checked_in_at"])
    # From the check-in, as the record's days of stay: the deadline follows the stay
    # the guests actually have, not the one they booked.
    nights = nights_reported(checked_in_on, view.stay_end)
    arrived = arrived_at(checked_in_at, checked_in_on, zone)
    key = (checked_in_on, checked_in_at, view.position)
    return PendingStay(view, key, nights, arrived, deadline_for(arrived, nights))


async def pending_reports(
    conn: AsyncConnection,
    *,
    horizon: datetime,
    zone: tzinfo,
    first: int,
    after: str | None,
) -> PendingPage:
    """Checked-in bookings whose guests were not reported yet and whose deadline is by
    `horizon` (overdue ones included), the soonest deadline first; keyset pagination.

    The deadline window is applied in SQL before the limit, so stays due later or
    reported already never take a place on the page. A page merges the two deadline
    classes (6 h for a one-night stay, 24 h otherwise), each read in arrival order, so
    a one-night stay that came in after a longer one still comes first when it is due
    first. `total` counts every stay in the window, so a cut list says so."""
    b = hotel_bookings.c
    short = _days_from_check_in(conn) <= 1
    pending = and_(
        b.status.in_(ACTIVE_STAY),
        b.reported_at.is_(None),
        b.checked_in_at.is_not(None),
        b.checked_in_on.is_not(None),
    )
    # deadline = arrival + D <= horizon  <=>  arrival <= horizon - D, per class; in
    # real hours, as deadline_for counts them (UTC arithmetic, never the wall clock).
    horizon = horizon.astimezone(UTC)
    in_class = {
        _SHORT: and_(pending, short, _arrived_by(horizon - SHORT_STAY_DEADLINE, zone)),
        _LONG: and_(pending, ~short, _arrived_by(horizon - DEADLINE, zone)),
    }
    total = (await conn.execute(select(func.count()).where(or_(*in_class.values())))).scalar_one()
    cursor = decode_pending_cursor(after) if after is not None else dict.fromkeys(in_class)
    fetched: dict[str, list[PendingStay]] = {}
    for name, condition in in_class.items():
        query = select(hotel_bookings).where(condition)
        key = cursor[name]
        if key is not None:
            query = query.where(_after_key(key))
        # first + 1 of each class: a page takes at most `first` from either.
        rows = await conn.execute(
            query.order_by(b.checked_in_on, b.checked_in_at, b.position).limit(first + 1)
        )
        fetched[name] = [_pending_stay(row, zone) for row in rows.mappings()]
    stays: list[PendingStay] = []
    taken = dict.fromkeys(in_class, 0)
    while len(stays) < first:
        heads = [
            (fetched[name][taken[name]], name)
            for name in in_class
            if taken[name] < len(fetched[name])
        ]
        if not heads:
            break
        # Each class is consumed in its own (SQL) order, so every stay of it is on
        # exactly one page whatever the merge picks.
        stay, name = min(heads, key=lambda h: (h[0].deadline, h[0].view.position))
        stays.append(stay)
        taken[name] += 1
    has_next = any(taken[name] < len(fetched[name]) for name in in_class)
    keys = {
        name: fetched[name][taken[name] - 1].key if taken[name] else cursor[name]
        for name in in_class
    }
    return PendingPage(stays, int(total), has_next, encode_pending_cursor(keys) if stays else None)


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

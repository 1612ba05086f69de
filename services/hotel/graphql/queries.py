"""Hotel queries: bookings, occupancy, police and ISTAT reports, tourist tax, configuration."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated
from uuid import UUID

import strawberry

from gateway.context import Info
from gateway.permissions import allow
from services.common.auth import Role
from services.common.cursors import dated_after, dated_cursor
from services.common.errors import Conflict, ValidationError
from services.common.graphql import PageInfo, check_page_size, money
from services.common.months import month_bounds
from services.hotel.domain import BookingStatus
from services.hotel.domain.alloggiati import (
    StayGuest,
    build_records,
    file_bytes,
    file_content,
    nights_reported,
)
from services.hotel.graphql.types import (
    AlloggiatiFile,
    Booking,
    BookingConnection,
    ErasableBooking,
    ErasableBookingConnection,
    HotelConfigurationView,
    HotelPolicyType,
    IstatMonth,
    NightOccupancy,
    PendingReport,
    PendingReportConnection,
    ResidenceLine,
    RoomType,
    TouristTaxMonth,
    TouristTaxReport,
)
from services.hotel.projections import queries

# Auditors read everything except beneficiary data (docs/auth.md), bookings included.
READS = allow(Role.FRONT_DESK, Role.ADMIN, Role.AUDITOR)
ADMIN = allow(Role.ADMIN)
MAX_RANGE_DAYS = 366  # occupancy and tax reports cover at most a year per call
# One answer of alloggiatiPending lists at most this many (alloggiatiPendingPage pages).
MAX_PENDING = 500


def parse_booking_id(value: str, field: str = "bookingId") -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(field, "not a booking id") from None


def _check_range(from_date: date, to_date: date) -> None:
    if to_date < from_date:
        raise ValidationError("to", "must not be before from")
    if (to_date - from_date).days >= MAX_RANGE_DAYS:
        raise ValidationError("to", f"a range covers at most {MAX_RANGE_DAYS} days")


@strawberry.type
class HotelQuery:
    @strawberry.field(permission_classes=READS, description="One booking with its folio.")
    async def booking(self, info: Info, id: strawberry.ID) -> Booking | None:
        booking_id = parse_booking_id(id, "id")
        async with info.context.runtime.read_engine.connect() as conn:
            view = await queries.booking_by_id(conn, booking_id)
        return None if view is None else Booking.from_view(view)

    @strawberry.field(
        permission_classes=READS,
        description="Bookings whose nights overlap [from, to], by arrival, paginated.",
    )
    async def bookings(
        self,
        info: Info,
        status: BookingStatus | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> BookingConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            page = await queries.bookings_page(
                conn,
                status=status.value if status else None,
                from_date=from_,
                to_date=to,
                first=first,
                after=after,
            )
        return BookingConnection(
            nodes=[Booking.from_view(v) for v in page.bookings],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(permission_classes=READS, description="Rooms sold per night.")
    async def occupancy(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> list[NightOccupancy]:
        _check_range(from_, to)
        runtime = info.context.runtime
        config = await runtime.run_sync(runtime.hotel.configuration)
        async with runtime.read_engine.connect() as conn:
            nights = await queries.occupancy(conn, from_, to)
        out = []
        for night in nights:
            rooms = len(config.rooms_on(night.night))
            share = (
                (Decimal(night.rooms_sold * 100) / rooms).quantize(
                    Decimal("0.1"), rounding=ROUND_HALF_UP
                )
                if rooms
                else Decimal("0.0")
            )
            out.append(
                NightOccupancy(
                    night=night.night,
                    rooms_sold=night.rooms_sold,
                    rooms_available=rooms,
                    guests=night.guests,
                    occupancy_percent=f"{share:f}",
                )
            )
        return out

    @strawberry.field(
        permission_classes=READS,
        description="Alloggiati Web records of the guests who arrived on `date` and are not "
        "reported yet (markGuestsReported), validated; `includeReported` adds those already "
        "reported, which uploaded again would be reported twice.",
    )
    async def alloggiati_records(
        self, info: Info, date: date, include_reported: bool = False
    ) -> AlloggiatiFile:
        async with info.context.runtime.read_engine.connect() as conn:
            arrivals = await queries.arrivals_on(conn, date)
        if not include_reported:
            # A second upload of the day, after the morning's arrivals were accepted,
            # must hold only the afternoon's.
            arrivals = [view for view in arrivals if view.reported_at is None]
        unreadable = [str(v.booking_id) for v in arrivals if v.guest_data_unreadable]
        if unreadable:
            # A file missing guests would be an incomplete police report: refuse it.
            raise Conflict(
                f"the guest data of booking(s) {', '.join(unreadable)} cannot be opened: "
                "their key is missing from hotel_guest_keys (restore it from its backup)"
            )
        stays = [
            StayGuest(
                booking_id=view.booking_id,
                position=position,
                party_type=view.party_type,
                party_size=view.guest_count,
                arrival=date,
                nights=nights_reported(date, view.stay_end),
                guest=guest,
            )
            for view in arrivals
            for position, guest in enumerate(view.guests)
        ]
        records = build_records(stays)
        return AlloggiatiFile(
            date=date,
            # An erased booking has no guests left to report: not named.
            booking_ids=[strawberry.ID(str(view.booking_id)) for view in arrivals if view.guests],
            count=len(records),
            records=records,
            content=file_content(records),
            content_latin1_base64=base64.b64encode(file_bytes(records)).decode("ascii"),
        )

    @strawberry.field(
        permission_classes=READS,
        description="Checked-in bookings not reported to Alloggiati Web whose deadline is "
        "past or within `withinHours`, the soonest deadline first. All of them or none: "
        f"more than {MAX_PENDING} is a Conflict (page them with alloggiatiPendingPage).",
    )
    async def alloggiati_pending(self, info: Info, within_hours: int = 6) -> list[PendingReport]:
        page = await _pending_page(info, within_hours, first=MAX_PENDING, after=None)
        if page.page_info.has_next_page:
            # A police report left off the list would be missed without anyone
            # knowing: refuse rather than answer with part of it.
            raise Conflict(
                f"{page.total_count} stays are waiting to be reported, more than the "
                f"{MAX_PENDING} this list shows: page through them with alloggiatiPendingPage"
            )
        return page.nodes

    @strawberry.field(
        permission_classes=READS,
        description="Checked-in bookings not reported to Alloggiati Web whose deadline is "
        "past or within `withinHours`, the soonest deadline first (the overdue first), "
        "paginated; `totalCount` counts them all.",
    )
    async def alloggiati_pending_page(
        self, info: Info, within_hours: int = 6, first: int = 50, after: str | None = None
    ) -> PendingReportConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        return await _pending_page(info, within_hours, first=first, after=after)

    @strawberry.field(
        permission_classes=ADMIN,
        description="Closed bookings whose stay ended before `endedBefore` and whose guest "
        "data may be erased (eraseGuestData): reported to the police if they arrived, "
        "nothing owed (a no-show's penalty), not erased yet. The earliest first. For the "
        "hotel's retention policy.",
    )
    async def guest_data_erasable(
        self, info: Info, ended_before: date, first: int = 100, after: str | None = None
    ) -> ErasableBookingConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        start = dated_after("guestDataErasable", after) if after is not None else None
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.erasable(conn, ended_before, first + 1, start)
        shown = rows[:first]
        return ErasableBookingConnection(
            nodes=[
                ErasableBooking(
                    booking_id=strawberry.ID(str(r.booking_id)),
                    status=BookingStatus(r.status),
                    ended_on=r.ended_on,
                )
                for r in shown
            ],
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=dated_cursor("guestDataErasable", shown[-1].ended_on, shown[-1].position)
                if shown
                else None,
            ),
        )

    @strawberry.field(
        permission_classes=READS,
        description="ISTAT monthly survey: arrivals and nights by residence (zero months too).",
    )
    async def istat_monthly(self, info: Info, month: str) -> IstatMonth:
        first_day, last_day = month_bounds(month)
        async with info.context.runtime.read_engine.connect() as conn:
            lines = await queries.istat_month(conn, first_day, last_day)
        return IstatMonth(
            month=month,
            arrivals=sum(line.arrivals for line in lines),
            nights=sum(line.nights for line in lines),
            by_residence=[
                ResidenceLine(residence=r.residence, arrivals=r.arrivals, nights=r.nights)
                for r in lines
            ],
        )

    @strawberry.field(
        permission_classes=READS,
        description="Tourist tax collected on check-outs in [from, to], for the municipality.",
    )
    async def tourist_tax_report(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> TouristTaxReport:
        _check_range(from_, to)
        async with info.context.runtime.read_engine.connect() as conn:
            months = await queries.tourist_tax_totals(conn, from_, to)
        return TouristTaxReport(
            from_=from_,
            to=to,
            amount=money(sum(t.amount_cents for _, t in months)),
            stays=sum(t.stays for _, t in months),
            taxed_guest_nights=sum(t.taxed_guest_nights for _, t in months),
            exempt_guest_nights=sum(sum(t.exempt.values()) for _, t in months),
            by_month=[
                TouristTaxMonth(
                    month=month,
                    stays=t.stays,
                    amount=money(t.amount_cents),
                    taxed_guest_nights=t.taxed_guest_nights,
                    exempt_age=t.exempt["age"],
                    exempt_resident=t.exempt["resident"],
                    exempt_other=t.exempt["other"],
                    exempt_cap=t.exempt["cap"],
                )
                for month, t in months
            ],
        )

    @strawberry.field(
        permission_classes=READS,
        description="Rooms and policy in force on a day (default: today), and every version.",
    )
    async def hotel_configuration(
        self, info: Info, on: date | None = None
    ) -> HotelConfigurationView:
        runtime = info.context.runtime
        day = on or runtime.hotel.today()
        config = await runtime.run_sync(runtime.hotel.configuration)
        return HotelConfigurationView(
            on=day,
            policy=HotelPolicyType.from_policy(config.policy_on(day)),
            rooms=[RoomType.from_room(room) for room in config.rooms_on(day)],
            policies=[HotelPolicyType.from_policy(p) for p in config.policies],
        )


async def _pending_page(
    info: Info, within_hours: int, *, first: int, after: str | None
) -> PendingReportConnection:
    if not 0 <= within_hours <= 48:
        raise ValidationError("withinHours", "must be between 0 and 48")
    now = datetime.now(UTC)
    zone = info.context.runtime.settings.zone
    async with info.context.runtime.read_engine.connect() as conn:
        page = await queries.pending_reports(
            conn, horizon=now + timedelta(hours=within_hours), zone=zone, first=first, after=after
        )
    return PendingReportConnection(
        nodes=[
            PendingReport(
                booking_id=strawberry.ID(str(stay.view.booking_id)),
                room_number=stay.view.room_number,
                arrival=stay.view.arrival,
                nights=stay.nights,
                guest_count=stay.view.guest_count,
                checked_in_at=stay.arrived,
                deadline=stay.deadline,
                overdue=stay.deadline <= now,
            )
            for stay in page.stays
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total,
    )

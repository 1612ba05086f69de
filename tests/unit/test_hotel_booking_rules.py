"""Booking rules in memory that need the real calendar day (`today`, which the
application passes from its clock) or a store's older events."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from services.common.errors import ValidationError
from services.hotel.domain import (
    DEFAULT_POLICIES,
    DEFAULT_ROOMS,
    Booking,
    BookingStatus,
    HotelConfiguration,
    IllegalTransition,
    PartyType,
    make_guest,
)
from services.hotel.domain.guests import ITALY_CODE, Guest

CEILING = 1_000_000_000
MILANO = "403015146"
ARRIVAL = date(2025, 7, 1)


def config() -> HotelConfiguration:
    c = HotelConfiguration.start()
    for policy in DEFAULT_POLICIES:
        c.set_policy(policy)
    for room in DEFAULT_ROOMS:
        c.define_room(room, ceiling_cents=CEILING)
    return c


def guest() -> Guest:
    return make_guest(
        index=0,
        is_leader=True,
        arrival=ARRIVAL,
        surname="Verdi",
        given_name="Luca",
        sex="M",
        birth_date=date(1980, 1, 1),
        birth_country_code=ITALY_CODE,
        birth_municipality_code=MILANO,
        birth_province="MI",
        citizenship_code=ITALY_CODE,
        residence_country_code=ITALY_CODE,
        residence_municipality_code=MILANO,
        residence_province="MI",
        document_type="IDENT",
        document_number="AB123",
        document_issue_place_code=MILANO,
        tax_exemption_reason=None,
    )


def booking(c: HotelConfiguration, *, deposit: int | None = None) -> Booking:
    """Room 105, 1 to 4 July 2025 at EUR 90.00, booked on 1 June."""
    return Booking.create(
        c,
        booking_id=uuid4(),
        room_number="105",
        arrival=ARRIVAL,
        departure=date(2025, 7, 4),
        guests=[guest()],
        seal_identities=lambda identities: "sealed",
        party_type=PartyType.FAMILY,
        nightly_rate_cents=9000,
        deposit_cents=deposit,
        deposit_method="CARD",
        booked_on=date(2025, 6, 1),
        ceiling_cents=CEILING,
    )


def change_departure(
    b: Booking, c: HotelConfiguration, departure: date, *, on: date, today: date
) -> None:
    b.change_stay(
        c,
        arrival=b.arrival,
        departure=departure,
        room_number=b.room_number,
        nightly_rate_cents=b.nightly_rate_cents,
        guests=b.guests,
        on=on,
        today=today,
        ceiling_cents=CEILING,
    )


def test_a_check_in_is_undone_only_until_the_real_day_after_it() -> None:
    """Dated the day after the check-in, an undo typed in later than that was taken:
    the overdue police report vanished and a guest who stayed could be a no-show."""
    c = config()
    late = booking(c)
    late.check_in(c, on=ARRIVAL)
    with pytest.raises(IllegalTransition, match="undone by 2025-07-02 at the latest"):
        late.undo_check_in(c, on=date(2025, 7, 2), today=date(2025, 11, 25))
    assert late.status is BookingStatus.CHECKED_IN
    assert late.checked_in_on == ARRIVAL

    # Late at night, the next morning: still the real day after.
    in_time = booking(c)
    in_time.check_in(c, on=ARRIVAL)
    in_time.undo_check_in(c, on=date(2025, 7, 2), today=date(2025, 7, 2))
    assert in_time.status is BookingStatus.CONFIRMED


def test_a_departure_in_house_is_after_the_real_day() -> None:
    """A back-dated shortening to a day already past freed the room while the guests
    were sleeping in it."""
    c = config()
    b = booking(c)
    b.check_in(c, on=ARRIVAL)
    with pytest.raises(ValidationError, match="after the day of the change and today") as error:
        change_departure(b, c, date(2025, 7, 2), on=ARRIVAL, today=date(2025, 7, 3))
    assert error.value.field == "departure"
    assert b.departure == date(2025, 7, 4)
    change_departure(b, c, date(2025, 7, 6), on=ARRIVAL, today=date(2025, 7, 3))
    assert b.departure == date(2025, 7, 6)


def test_nights_held_stay_the_bookings_and_new_ones_need_the_room_in_service() -> None:
    """Room 105 out of service from 3 July, after the booking: the guests' data can
    still be corrected (the nights are theirs), an extension to 6 July is refused."""
    c = config()
    b = booking(c)
    b.check_in(c, on=ARRIVAL)
    room_105 = next(room for room in DEFAULT_ROOMS if room.number == "105")
    off = replace(room_105, active=False, effective_from=date(2025, 7, 3))
    c.define_room(off, ceiling_cents=CEILING)
    b.change_guests(
        c,
        guests=[guest()],
        party_type=PartyType.FAMILY,
        seal_identities=lambda identities: "sealed again",
        on=date(2025, 7, 2),
        ceiling_cents=CEILING,
    )
    with pytest.raises(ValidationError, match="room 105 is not in service on the night of "):
        change_departure(b, c, date(2025, 7, 6), on=date(2025, 7, 2), today=date(2025, 7, 2))
    assert b.departure == date(2025, 7, 4)


def test_bookings_stored_before_their_terms_were_recorded_read_them_from_the_policy() -> None:
    """Booked v2 events have no terms: the policy in force on the booking day stands
    in for them. Bookings made since carry their own, whatever is set later."""
    state: dict[str, Any] = {}
    Booking.Booked.upcast_v2_v3(state)
    assert state == {"cancellation_free_days": None, "no_show_penalty_nights": None}

    c = config()
    recorded = booking(c, deposit=5000)
    old = booking(c, deposit=5000)
    old.cancellation_free_days = old.no_show_penalty_nights = None
    stricter = replace(DEFAULT_POLICIES[-1], cancellation_free_days=60, no_show_penalty_nights=3)
    c.set_policy(stricter)  # from 1 June 2025, the day both were booked
    assert recorded.booked_terms(c) == (7, 1)
    assert old.booked_terms(c) == (60, 3)
    recorded.cancel(c, on=date(2025, 6, 11))  # 20 days ahead: free under 7 days
    assert [p.kind for p in recorded.payments] == ["DEPOSIT", "DEPOSIT_REFUND"]

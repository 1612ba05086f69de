"""A booking and its folio, from confirmation to check-out, cancellation or no-show.

    CONFIRMED --checkIn--> CHECKED_IN --checkOut--> CHECKED_OUT
        ^------undoCheckIn-----'
        |--cancelBooking--> CANCELLED
        |--markNoShow----> NO_SHOW
    changeStay: CONFIRMED (room, dates, rate) and CHECKED_IN (departure) stay as they are
    changeGuests: CONFIRMED and CHECKED_IN, until the guests are reported

Every event that changes the folio carries the lines it adds or replaces, priced with
the configuration in force, so the folio (and the read model) never depends on
configuration read later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.common.money import check_positive_amount, format_cents
from services.common.text import collapsed_text
from services.hotel.domain.config import (
    CHARGE_KINDS,
    PAYMENT_METHODS,
    HotelConfiguration,
    Room,
)
from services.hotel.domain.errors import BalanceDue, IllegalTransition, RoomUnavailable
from services.hotel.domain.folio import (
    DEPOSIT,
    DEPOSIT_REFUND,
    NO_SHOW_PENALTY,
    PAYMENT,
    REFUND,
    RETAINED_DEPOSIT,
    FolioLine,
    Payment,
    TouristTax,
    nights_between,
    price_stay,
)
from services.hotel.domain.guests import MAX_GUESTS, Guest, GuestFacts

BOOKING_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:hotel:booking")
ROOM_NIGHT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:hotel:room-night")
MAX_CHARGE_DESCRIPTION_LENGTH = 200
MAX_CHARGES = 500  # per booking: bounds the folio


class BookingStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    CHECKED_IN = "CHECKED_IN"
    CHECKED_OUT = "CHECKED_OUT"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


class PartyType(StrEnum):
    FAMILY = "FAMILY"
    GROUP = "GROUP"


def booking_id_for_key(idempotency_key: str) -> UUID:
    """The booking created by a request: a retried key names the same booking."""
    return uuid5(BOOKING_NAMESPACE, idempotency_key)


def room_night_id(room_number: str, night: date) -> UUID:
    return uuid5(ROOM_NIGHT_NAMESPACE, f"{room_number}|{night.isoformat()}")


def _lines(states: Sequence[dict[str, Any]]) -> list[FolioLine]:
    return [FolioLine.from_state(s) for s in states]


def _check_horizon(config: HotelConfiguration, arrival: date, on: date) -> None:
    """An arrival further ahead than the policy's horizon (in force on the day the
    booking is made or moved) is a mistyped year, not a booking."""
    horizon_days = config.policy_on(on).booking_horizon_days
    if (arrival - on).days > horizon_days:
        raise ValidationError(
            "arrival", f"is more than {horizon_days} days after the day of the booking"
        )


def _room_version(config: HotelConfiguration, number: str, night: date) -> Room | None:
    """The version of the room in force that night, in service or not."""
    current: Room | None = None
    for room in config.rooms.get(number, []):
        if room.effective_from <= night:
            current = room
    return current


def _room_as_sold(config: HotelConfiguration, number: str, arrival: date) -> Room:
    """The room's latest version in service on or before the arrival: the one a
    booking holding that night was sold (later versions may have retired it)."""
    sold: Room | None = None
    for room in config.rooms.get(number, []):
        if room.effective_from <= arrival and room.active:
            sold = room
    return config.room_on(number, arrival) if sold is None else sold


def _quote(
    config: HotelConfiguration,
    *,
    room_number: str,
    arrival: date,
    departure: date,
    guests: Sequence[GuestFacts],
    nightly_rate_cents: int | None,
    ceiling_cents: int,
    present_from: date | None = None,
    claims_from: date | None = None,
) -> tuple[Room, int, list[FolioLine], TouristTax]:
    """The checks every stay passes (dates, length, room, capacity, rate, total) and
    its price: the room in service, the nightly rate, the stay's lines and tax.

    `claims_from`: the first night the command takes anew (default: the arrival, the
    whole stay). Each of those nights the room must be in service; the nights a
    booking already holds (in house, up to its old departure) are the booking's, so a
    room taken out of service later does not block a correction of them."""
    if departure <= arrival:
        raise ValidationError("departure", "must be after the arrival")
    policy = config.policy_on(arrival)
    if (departure - arrival).days > policy.max_stay_nights:
        raise ValidationError("departure", f"a stay is at most {policy.max_stay_nights} nights")
    first_claimed = arrival if claims_from is None else max(arrival, claims_from)
    if first_claimed > arrival:
        # The arrival night is the booking's already: the room as it was sold, even
        # if it was taken out of service from that night since.
        room = _room_as_sold(config, room_number, arrival)
    else:
        room = config.room_on(room_number, arrival)
    # Each night has its own version of the room: one out of service (or smaller)
    # from the second night on was sold for all of them when only the arrival counted.
    capacity = room.capacity
    for night in nights_between(arrival, departure):
        version = _room_version(config, room.number, night)
        if version is not None and version.active:
            capacity = min(capacity, version.capacity)
        elif night >= first_claimed:
            raise ValidationError(
                "roomNumber",
                f"room {room.number} is not in service on the night of {night.isoformat()}",
            )
    if len(guests) > min(capacity, MAX_GUESTS):
        raise ValidationError("guests", f"room {room.number} holds at most {capacity} guest(s)")
    rate = room.nightly_rate_cents if nightly_rate_cents is None else nightly_rate_cents
    check_positive_amount(rate, field="nightlyRate", ceiling_cents=ceiling_cents)
    lines, tax = price_stay(
        config,
        room_number=room.number,
        arrival=arrival,
        end=departure,
        nightly_rate_cents=rate,
        guests=guests,
        present_from=present_from,
    )
    quoted = sum(line.amount_cents for line in lines)
    if quoted > ceiling_cents:
        # Check-out posts the stay as one journal entry, whose amounts the ledger
        # bounds: a stay above it could be booked and paid but never checked out.
        raise ValidationError(
            "nightlyRate",
            f"the stay's total of {format_cents(quoted)} EUR exceeds the amount "
            f"ceiling of {format_cents(ceiling_cents)} EUR",
        )
    return room, rate, lines, tax


class Booking(Aggregate):
    class Booked(Aggregate.Created):
        # v2: `guests` holds each guest's GuestFacts facts; the identities are sealed
        # under the booking's key (`guest_identities_sealed`). v1 events held whole
        # guests in clear: upcast to facts, their identities kept aside as legacy.
        # v3: the cancellation terms the guest booked under, so that a policy set
        # later (even one dated back to the booking day) does not change them.
        class_version = 3
        room_number: str
        arrival: date
        departure: date
        nightly_rate_cents: int
        party_type: str
        guests: list[dict[str, Any]]
        guest_identities_sealed: str | None
        guest_identities_legacy: list[dict[str, Any]] | None
        booked_on: date
        stay_lines: list[dict[str, Any]]  # the quote: room nights and tourist tax
        tourist_tax: dict[str, Any]
        payments: list[dict[str, Any]]  # the deposit, if any
        # None on bookings recorded before v3: the policy in force on the booking day
        # as the configuration reads now, the best left to go by.
        cancellation_free_days: int | None
        no_show_penalty_nights: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            guests = [Guest.from_state(g) for g in state["guests"]]
            state["guests"] = [g.facts(state["arrival"]).as_state() for g in guests]
            state["guest_identities_sealed"] = None
            state["guest_identities_legacy"] = [g.identity_state() for g in guests]

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["cancellation_free_days"] = None
            state["no_show_penalty_nights"] = None

    class CheckedIn(Aggregate.Event):
        on: date
        stay_lines: list[dict[str, Any]]
        tourist_tax: dict[str, Any]
        # The guests' facts on the day they really came, when a late arrival changed
        # them (a child who turned the exemption age meanwhile); None otherwise and in
        # events recorded before they were kept.
        guests: list[dict[str, Any]] | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.status = BookingStatus.CHECKED_IN
            aggregate.checked_in_on = self.on
            aggregate.stay_lines = _lines(self.stay_lines)
            aggregate.tourist_tax = TouristTax.from_state(self.tourist_tax)
            if self.guests is not None:
                aggregate.guests = [GuestFacts.from_state(g) for g in self.guests]

    class CheckInUndone(Aggregate.Event):
        """A check-in made by mistake (the wrong booking) taken back: the booking is
        confirmed again, its stay priced as before arrival."""

        on: date
        stay_lines: list[dict[str, Any]]
        tourist_tax: dict[str, Any]
        # The guests' facts on the booked arrival again, when the check-in had changed
        # them (see CheckedIn.guests); None otherwise.
        guests: list[dict[str, Any]] | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.status = BookingStatus.CONFIRMED
            aggregate.checked_in_on = None
            aggregate.stay_lines = _lines(self.stay_lines)
            aggregate.tourist_tax = TouristTax.from_state(self.tourist_tax)
            if self.guests is not None:
                aggregate.guests = [GuestFacts.from_state(g) for g in self.guests]

    class GuestsChanged(Aggregate.Event):
        """The party as it really is (data typed wrong at booking, a child who came
        after all): the guests' facts, their identities sealed again under the
        booking's key, the stay priced for them."""

        on: date
        party_type: str
        guests: list[dict[str, Any]]
        guest_identities_sealed: str
        stay_lines: list[dict[str, Any]]
        tourist_tax: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.party_type = PartyType(self.party_type)
            aggregate.guests = [GuestFacts.from_state(g) for g in self.guests]
            aggregate.sealed_identities = self.guest_identities_sealed
            aggregate.stay_lines = _lines(self.stay_lines)
            aggregate.tourist_tax = TouristTax.from_state(self.tourist_tax)

    class StayChanged(Aggregate.Event):
        """The stay moved, lengthened or shortened: its room, dates, rate and price."""

        on: date
        room_number: str
        arrival: date
        departure: date
        nightly_rate_cents: int
        guests: list[dict[str, Any]]  # the facts, ages on the (new) arrival
        stay_lines: list[dict[str, Any]]
        tourist_tax: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.room_number = self.room_number
            aggregate.arrival = self.arrival
            aggregate.departure = self.departure
            aggregate.nightly_rate_cents = self.nightly_rate_cents
            aggregate.guests = [GuestFacts.from_state(g) for g in self.guests]
            aggregate.stay_lines = _lines(self.stay_lines)
            aggregate.tourist_tax = TouristTax.from_state(self.tourist_tax)

    class ChargePosted(Aggregate.Event):
        number: int  # 1, 2, ... in the folio's extra charges
        line: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.extra_lines.append(FolioLine.from_state(self.line))

    class ChargeVoided(Aggregate.Event):
        """A mistaken charge is corrected by a negative line, never by an edit."""

        number: int  # the new (negative) line's number in the folio's extra charges
        voids: int  # the number of the charge it cancels
        line: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.extra_lines.append(FolioLine.from_state(self.line))
            aggregate.voided_charges[self.voids] = self.number

    class PaymentRecorded(Aggregate.Event):
        number: int  # 1, 2, ... in the booking's payments (the deposit is number 1)
        payment: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.payments.append(Payment.from_state(self.payment))

    class CheckedOut(Aggregate.Event):
        on: date
        stay_lines: list[dict[str, Any]]  # the nights actually stayed
        tourist_tax: dict[str, Any]
        released_nights: list[str]  # unstayed nights of an early departure

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.status = BookingStatus.CHECKED_OUT
            aggregate.checked_out_on = self.on
            aggregate.stay_lines = _lines(self.stay_lines)
            aggregate.tourist_tax = TouristTax.from_state(self.tourist_tax)

    class Cancelled(Aggregate.Event):
        on: date
        closing_lines: list[dict[str, Any]]  # a retained deposit, or nothing
        payments: list[dict[str, Any]]  # a refunded deposit, or nothing

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate._close(BookingStatus.CANCELLED, self.on, self.closing_lines, self.payments)

    class MarkedNoShow(Aggregate.Event):
        on: date
        closing_lines: list[dict[str, Any]]  # the penalty
        payments: list[dict[str, Any]]  # the part of the deposit above the penalty

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate._close(BookingStatus.NO_SHOW, self.on, self.closing_lines, self.payments)

    class PenaltyWaived(Aggregate.Event):
        on: date
        closing_lines: list[dict[str, Any]]  # the penalty and the waiver that offsets it

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.stay_lines = _lines(self.closing_lines)

    class GuestDataErased(Aggregate.Event):
        on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.guest_data_erased = True

    class GuestsReported(Aggregate.Event):
        reported_at: str  # ISO instant the records were accepted by Alloggiati Web

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Booking)
            aggregate.reported_at = self.reported_at

    def __init__(
        self,
        room_number: str,
        arrival: date,
        departure: date,
        nightly_rate_cents: int,
        party_type: str,
        guests: list[dict[str, Any]],
        guest_identities_sealed: str | None,
        guest_identities_legacy: list[dict[str, Any]] | None,
        booked_on: date,
        stay_lines: list[dict[str, Any]],
        tourist_tax: dict[str, Any],
        payments: list[dict[str, Any]],
        cancellation_free_days: int | None,
        no_show_penalty_nights: int | None,
    ) -> None:
        self.room_number = room_number
        self.arrival = arrival
        self.departure = departure
        self.nightly_rate_cents = nightly_rate_cents
        self.party_type = PartyType(party_type)
        self.guests = [GuestFacts.from_state(g) for g in guests]
        # Kept to age the guests again when the arrival moves (changeStay); opened
        # only with the booking's key, which an erasure deletes.
        self.sealed_identities = guest_identities_sealed
        self.legacy_identities = guest_identities_legacy
        self.guest_data_sealed = guest_identities_sealed is not None
        self.guest_data_erased = False
        self.booked_on = booked_on
        self.cancellation_free_days = cancellation_free_days
        self.no_show_penalty_nights = no_show_penalty_nights
        self.status = BookingStatus.CONFIRMED
        self.stay_lines = _lines(stay_lines)
        self.tourist_tax = TouristTax.from_state(tourist_tax)
        self.extra_lines: list[FolioLine] = []
        # charge number -> the number of the line that voids it
        self.voided_charges: dict[int, int] = {}
        self.payments = [Payment.from_state(p) for p in payments]
        self.checked_in_on: date | None = None
        self.checked_out_on: date | None = None
        self.closed_on: date | None = None
        self.reported_at: str | None = None

    def _close(
        self,
        status: BookingStatus,
        on: date,
        closing_lines: list[dict[str, Any]],
        payments: list[dict[str, Any]],
    ) -> None:
        self.status = status
        self.closed_on = on
        self.stay_lines = _lines(closing_lines)
        self.tourist_tax = TouristTax()
        self.payments.extend(Payment.from_state(p) for p in payments)

    # -- the folio -------------------------------------------------------------

    @property
    def lines(self) -> list[FolioLine]:
        return [*self.stay_lines, *self.extra_lines]

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def paid_cents(self) -> int:
        return sum(p.signed_cents for p in self.payments)

    @property
    def balance_cents(self) -> int:
        return self.total_cents - self.paid_cents

    @property
    def deposit_cents(self) -> int:
        return sum(p.amount_cents for p in self.payments if p.kind == DEPOSIT)

    @property
    def deposit_method(self) -> str | None:
        return next((p.method for p in self.payments if p.kind == DEPOSIT), None)

    @property
    def nights(self) -> list[date]:
        return nights_between(self.arrival, self.departure)

    @property
    def label(self) -> str:
        """How messages and ledger descriptions name the booking: its id, no names."""
        return f"booking {self.id}"

    def booked_terms(self, config: HotelConfiguration) -> tuple[int, int]:
        """(cancellation free days, no-show penalty nights) the guest booked under: as
        recorded at booking; for bookings recorded before that, the policy in force on
        the booking day as the configuration reads now."""
        if self.cancellation_free_days is None or self.no_show_penalty_nights is None:
            policy = config.policy_on(self.booked_on)
            return policy.cancellation_free_days, policy.no_show_penalty_nights
        return self.cancellation_free_days, self.no_show_penalty_nights

    def _check_deposit_within(self, lines: Sequence[FolioLine]) -> None:
        """Before arrival there is no refund: a deposit above a repriced stay would be
        held for nothing, and a late cancellation would keep more than the stay was
        worth. In house the excess is given back by recordRefund before check-out."""
        if self.status is not BookingStatus.CONFIRMED:
            return
        total = sum(line.amount_cents for line in lines)
        if self.deposit_cents > total:
            raise ValidationError(
                "deposit",
                f"the deposit of {format_cents(self.deposit_cents)} EUR would exceed the "
                f"stay's new total of {format_cents(total)} EUR, and a deposit is not "
                "refunded before arrival",
            )

    # -- commands --------------------------------------------------------------

    @classmethod
    def create(
        cls,
        config: HotelConfiguration,
        *,
        booking_id: UUID,
        room_number: str,
        arrival: date,
        departure: date,
        guests: Sequence[Guest],
        seal_identities: Callable[[list[dict[str, Any]]], str],
        party_type: PartyType,
        nightly_rate_cents: int | None,
        deposit_cents: int | None,
        deposit_method: str,
        booked_on: date,
        ceiling_cents: int,
    ) -> Booking:
        # A booking entered late is dated the day it was made (businessDate); one whose
        # arrival came before that day was a stay booked after it began.
        if arrival < booked_on:
            raise ValidationError(
                "arrival", "cannot precede the day the booking is made (its businessDate)"
            )
        _check_horizon(config, arrival, booked_on)
        if not guests:
            raise ValidationError("guests", "a booking needs at least one guest")
        facts = [g.facts(arrival) for g in guests]
        room, rate, lines, tax = _quote(
            config,
            room_number=room_number,
            arrival=arrival,
            departure=departure,
            guests=facts,
            nightly_rate_cents=nightly_rate_cents,
            ceiling_cents=ceiling_cents,
        )
        quoted = sum(line.amount_cents for line in lines)
        terms = config.policy_on(booked_on)
        payments: list[dict[str, Any]] = []
        if deposit_cents is not None:
            check_positive_amount(deposit_cents, field="deposit", ceiling_cents=ceiling_cents)
            if deposit_cents > quoted:
                raise ValidationError(
                    "deposit", f"must not exceed the stay's total of {format_cents(quoted)} EUR"
                )
            if deposit_method not in PAYMENT_METHODS:
                raise ValidationError("depositMethod", "CASH, CARD or TRANSFER")
            payments.append(Payment(DEPOSIT, deposit_method, deposit_cents, booked_on).as_state())
        return cls._create(
            cls.Booked,
            id=booking_id,
            room_number=room.number,
            arrival=arrival,
            departure=departure,
            nightly_rate_cents=rate,
            party_type=party_type.value,
            guests=[f.as_state() for f in facts],
            # Sealed last, once everything else was accepted: a refused booking leaves
            # no key behind.
            guest_identities_sealed=seal_identities([g.identity_state() for g in guests]),
            guest_identities_legacy=None,
            booked_on=booked_on,
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
            payments=payments,
            # The terms the guest agreed to, kept with the booking (changeStay too).
            cancellation_free_days=terms.cancellation_free_days,
            no_show_penalty_nights=terms.no_show_penalty_nights,
        )

    def _require(self, *allowed: BookingStatus, action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"{self.label} is {self.status.value}: cannot {action}", self.status.value
            )

    def check_in(
        self,
        config: HotelConfiguration,
        *,
        on: date,
        guests_on_arrival: Sequence[GuestFacts] | None = None,
    ) -> None:
        """`guests_on_arrival`: for a late arrival, the guests' facts on `on` (their
        ages then: the tourist tax's exemption is by age on arrival, the day they came,
        as the police report counts it); None for the booked arrival day."""
        self._require(BookingStatus.CONFIRMED, action="check in")
        if on < self.arrival:
            raise ValidationError("businessDate", "check-in is on or after the arrival day")
        if on >= self.departure:
            raise ValidationError("businessDate", "check-in is before the departure day")
        guests = list(self.guests if guests_on_arrival is None else guests_on_arrival)
        # Priced again with the configuration in force now; a late arrival still pays
        # the nights the room was held for, but the tourist tax only from tonight.
        lines, tax = price_stay(
            config,
            room_number=self.room_number,
            arrival=self.arrival,
            end=self.departure,
            nightly_rate_cents=self.nightly_rate_cents,
            guests=guests,
            present_from=on,
        )
        self.trigger_event(
            self.CheckedIn,
            on=on,
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
            guests=None if guests == self.guests else [g.as_state() for g in guests],
        )

    def undo_check_in(
        self,
        config: HotelConfiguration,
        *,
        on: date,
        today: date,
        guests_on_arrival: Sequence[GuestFacts] | None = None,
    ) -> None:
        """Take back a check-in made by mistake (the wrong booking, two guests of the
        same name), while nothing has followed it: no charge, no payment, no report
        to the police. It posted nothing, so nothing is reversed; the booking is
        confirmed again and its stay priced as before arrival (a late arrival's
        tax counted from the arrival day again). On the check-in's business day or
        the next (a check-in late at night): after that the guests have stayed, and
        a stay that happened is checked out, not undone.

        `today`: the real calendar day (the application's clock). The business date
        is the desk's to choose, so judged on it alone a check-in of months ago could
        be undone by dating the undo the day after it, taking an overdue police
        report off the list and letting a guest who stayed be marked a no-show.

        `guests_on_arrival`: after a late check-in, the guests' facts on the booked
        arrival day again (see check_in); None when the check-in was on that day."""
        self._require(BookingStatus.CHECKED_IN, action="undo its check-in")
        assert self.checked_in_on is not None
        if self.reported_at is not None:
            raise IllegalTransition(
                f"{self.label}: its guests were reported to Alloggiati Web, and an accepted "
                "report cannot be withdrawn: the stay happened; check it out instead",
                self.status.value,
            )
        if self.extra_lines or any(p.kind != DEPOSIT for p in self.payments):
            raise IllegalTransition(
                f"{self.label} has charges or payments since its check-in: only a check-in "
                "with nothing after it can be undone (void the charges and refund the "
                "payments first, or check the stay out)",
                self.status.value,
            )
        last_day = self.checked_in_on + timedelta(days=1)
        if today > last_day:
            # Nothing the desk can date the undo fixes this: a Conflict, not a field.
            raise IllegalTransition(
                f"{self.label} was checked in on {self.checked_in_on.isoformat()}: a check-in "
                f"is undone by {last_day.isoformat()} at the latest, and that day is past; "
                "the guests stayed: check them out",
                self.status.value,
            )
        if on < self.checked_in_on:
            raise ValidationError("businessDate", "cannot precede the check-in it undoes")
        if on > last_day:
            raise ValidationError(
                "businessDate",
                f"a check-in is undone on its day or the next ({self.checked_in_on.isoformat()} "
                "or the day after); after that the guests stayed: check them out",
            )
        guests = list(self.guests if guests_on_arrival is None else guests_on_arrival)
        if min(g.age_on_arrival for g in guests) < 0:
            # A guest added in house after a late arrival, born after the booked day:
            # the booking as it was before the check-in cannot hold her.
            raise IllegalTransition(
                f"{self.label}: a guest was born after the booked arrival "
                f"({self.arrival.isoformat()}), so the booking cannot go back to before "
                "its check-in; check the stay out instead",
                self.status.value,
            )
        lines, tax = price_stay(
            config,
            room_number=self.room_number,
            arrival=self.arrival,
            end=self.departure,
            nightly_rate_cents=self.nightly_rate_cents,
            guests=guests,
        )
        self.trigger_event(
            self.CheckInUndone,
            on=on,
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
            guests=None if guests == self.guests else [g.as_state() for g in guests],
        )

    def change_guests(
        self,
        config: HotelConfiguration,
        *,
        guests: Sequence[Guest],
        party_type: PartyType,
        seal_identities: Callable[[list[dict[str, Any]]], str],
        on: date,
        ceiling_cents: int,
    ) -> None:
        """Replace the guest list: the data a booking was taken with is often partial
        or wrong (a document number is read at the desk), and a party comes with one
        child more or less. Before arrival, or in house as a correction of the
        check-in's data (every guest counted from the check-in; a guest joining or
        leaving mid-stay is not modelled). Not once the guests were reported to
        Alloggiati Web: an accepted report cannot be corrected through the service,
        and the book must say what was reported. The stay is priced again for the
        new party (the tourist tax by age and residence), the room's capacity checked."""
        self._require(BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, action="change its guests")
        if self.reported_at is not None:
            raise IllegalTransition(
                f"{self.label}: its guests were reported to Alloggiati Web, and an accepted "
                "report cannot be corrected through the service",
                self.status.value,
            )
        if not self.guest_data_sealed:
            # Booked v1: the old identities stay in the log in clear. Sealed new ones
            # would make the booking look erasable when it is not.
            raise IllegalTransition(
                f"{self.label}: its guests' data predates sealing and cannot be changed "
                "(book the stay again)",
                self.status.value,
            )
        if on < (self.checked_in_on or self.booked_on):
            raise ValidationError(
                "businessDate", "a change of guests cannot precede the booking or its check-in"
            )
        if not guests:
            raise ValidationError("guests", "a booking needs at least one guest")
        # In house the guests' facts are those of the day they came (see check_in).
        facts_day = self.arrival if self.checked_in_on is None else self.checked_in_on
        facts = [g.facts(facts_day) for g in guests]
        for index, guest in enumerate(facts):
            if guest.age_on_arrival < 0:
                raise ValidationError(f"guests[{index}].birthDate", "must not be after the arrival")
        _, _, lines, tax = _quote(
            config,
            room_number=self.room_number,
            arrival=self.arrival,
            departure=self.departure,
            guests=facts,
            nightly_rate_cents=self.nightly_rate_cents,
            ceiling_cents=ceiling_cents,
            present_from=self.checked_in_on,
            # The nights are the booking's already: capacity is checked, not service.
            claims_from=self.departure,
        )
        self._check_deposit_within(lines)
        self.trigger_event(
            self.GuestsChanged,
            on=on,
            party_type=party_type.value,
            guests=[f.as_state() for f in facts],
            # Sealed last, once everything else was accepted.
            guest_identities_sealed=seal_identities([g.identity_state() for g in guests]),
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
        )

    def change_stay(
        self,
        config: HotelConfiguration,
        *,
        arrival: date,
        departure: date,
        room_number: str,
        nightly_rate_cents: int,
        guests: Sequence[GuestFacts],
        on: date,
        ceiling_cents: int,
        today: date,
    ) -> None:
        """Move a booking (dates, room, rate) before arrival; in house, change only the
        departure (stay longer, or plan to leave earlier). The stay is priced again, as
        at booking or check-in; the deposit stays and is applied at check-out (before
        arrival it may not exceed the new total: there is no refund until then).
        The booking keeps the cancellation terms it was made under.

        `today`: the real calendar day (the application's clock). The business date
        is the desk's to choose, so judged on it alone a back-dated change in house
        could end the stay on a day already past and free nights the guests slept in."""
        self._require(BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, action="change its stay")
        if on < self.booked_on:
            raise ValidationError("businessDate", "a change cannot precede the booking")
        if self.checked_in_on is not None:
            if arrival != self.arrival:
                raise ValidationError("arrival", "the guests have arrived: the arrival stays")
            if room_number != self.room_number:
                raise ValidationError(
                    "roomNumber",
                    "a stay in house keeps its room (moving rooms mid-stay is not supported)",
                )
            check_positive_amount(
                nightly_rate_cents, field="nightlyRate", ceiling_cents=ceiling_cents
            )
            if nightly_rate_cents != self.nightly_rate_cents:
                # The nights already stayed were sold at the agreed rate; a new rate
                # would re-price them behind the guest's back.
                raise ValidationError(
                    "nightlyRate", "the guests are in house: the agreed rate stays"
                )
            if on < self.checked_in_on:
                raise ValidationError(
                    "businessDate", "a change in house cannot precede the check-in"
                )
            # Judged on the real day too: a back-dated shortening to a day already
            # past freed nights the guests were sleeping in, for another booking.
            if departure <= max(on, today):
                raise ValidationError(
                    "departure",
                    "must be after the day of the change and today (leaving today is a check-out)",
                )
        elif arrival != self.arrival:
            if arrival < on:
                raise ValidationError("arrival", "cannot be moved before the day of the change")
            _check_horizon(config, arrival, on)
        if min(g.age_on_arrival for g in guests) < 0:
            raise ValidationError("arrival", "cannot precede a guest's birth date")
        unchanged = (self.arrival, self.departure, self.room_number, self.nightly_rate_cents)
        if (arrival, departure, room_number, nightly_rate_cents) == unchanged:
            raise ValidationError("departure", "the same room, dates and rate: nothing to change")
        room, rate, lines, tax = _quote(
            config,
            room_number=room_number,
            arrival=arrival,
            departure=departure,
            guests=guests,
            nightly_rate_cents=nightly_rate_cents,
            ceiling_cents=ceiling_cents,
            present_from=self.checked_in_on,
            # In house the nights up to the old departure are the booking's already;
            # before arrival the whole stay is booked again.
            claims_from=None if self.checked_in_on is None else self.departure,
        )
        self._check_deposit_within(lines)
        self.trigger_event(
            self.StayChanged,
            on=on,
            room_number=room.number,
            arrival=arrival,
            departure=departure,
            nightly_rate_cents=rate,
            guests=[g.as_state() for g in guests],
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
        )

    def post_charge(
        self,
        config: HotelConfiguration,
        *,
        kind: str,
        description: str,
        amount_cents: int,
        on: date,
        ceiling_cents: int,
    ) -> FolioLine:
        if kind not in CHARGE_KINDS:
            raise ValidationError("kind", "ROOM, FOOD, BEVERAGE or OTHER")
        description = collapsed_text(
            description, field="description", max_length=MAX_CHARGE_DESCRIPTION_LENGTH
        )
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        self._require(BookingStatus.CHECKED_IN, action="post a charge")
        if len(self.extra_lines) >= MAX_CHARGES:
            raise ValidationError("bookingId", f"a folio holds at most {MAX_CHARGES} charges")
        assert self.checked_in_on is not None  # CHECKED_IN
        if on < self.checked_in_on:
            raise ValidationError("businessDate", "a charge is on or after the check-in day")
        rate = config.policy_on(on).vat_bp(kind)
        line = FolioLine.priced(kind, description, on, amount_cents, rate)
        self.trigger_event(
            self.ChargePosted, number=len(self.extra_lines) + 1, line=line.as_state()
        )
        return line

    def void_charge(
        self, *, number: int, reason: str, on: date, refund_method: str | None = None
    ) -> tuple[FolioLine, Payment | None]:
        """Cancel extra charge `number` with a negative copy of its line (same kind and
        VAT rate, so the VAT summary nets out).

        In house, the void lowers what the guest owes. After check-out the folio was
        settled, so the void is a credit note: the amount goes back to the guest by
        `refund_method` in the same command, and the folio stays settled.
        """
        reason = collapsed_text(reason, field="reason", max_length=MAX_CHARGE_DESCRIPTION_LENGTH)
        self._require(BookingStatus.CHECKED_IN, BookingStatus.CHECKED_OUT, action="void a charge")
        if self.status is BookingStatus.CHECKED_OUT:
            if refund_method not in PAYMENT_METHODS:
                raise ValidationError(
                    "refundMethod",
                    "after check-out the voided amount is refunded: CASH, CARD or TRANSFER",
                )
        elif refund_method is not None:
            raise ValidationError(
                "refundMethod", "only after check-out: in house a void lowers what is owed"
            )
        if not 1 <= number <= len(self.extra_lines):
            raise NotFound(f"{self.label} has no charge number {number}")
        original = self.extra_lines[number - 1]
        if original.amount_cents < 0:
            raise Conflict(f"line {number} of {self.label} voids a charge; it cannot be voided")
        if number in self.voided_charges:
            raise Conflict(
                f"charge {number} of {self.label} was already voided "
                f"(line {self.voided_charges[number]})"
            )
        # No cap here: one void per charge bounds the folio at twice MAX_CHARGES lines,
        # and a full folio must still be correctable.
        if on < original.service_date:
            raise ValidationError("businessDate", "a void cannot precede the charge it voids")
        if refund_method is not None:
            self._check_refund_method(refund_method, original.amount_cents, field="refundMethod")
            # A credit note on a settled folio: the money goes back after the folio was
            # settled, never before the payments it returns or the check-out.
            assert self.checked_out_on is not None
            if on < self.checked_out_on:
                raise ValidationError(
                    "businessDate",
                    f"after check-out, a void that refunds cannot precede the check-out "
                    f"({self.checked_out_on.isoformat()})",
                )
            self._check_refund_date(on)
        line = FolioLine(
            kind=original.kind,
            description=f"Void of charge {number}: {reason}",
            service_date=on,
            amount_cents=-original.amount_cents,
            vat_rate_bp=original.vat_rate_bp,
            net_cents=-original.net_cents,
            vat_cents=-original.vat_cents,
        )
        self.trigger_event(
            self.ChargeVoided,
            number=len(self.extra_lines) + 1,
            voids=number,
            line=line.as_state(),
        )
        if refund_method is None:
            return line, None
        refund = Payment(REFUND, refund_method, original.amount_cents, on)
        self.trigger_event(
            self.PaymentRecorded, number=len(self.payments) + 1, payment=refund.as_state()
        )
        return line, refund

    def record_payment(
        self, *, method: str, amount_cents: int, on: date, ceiling_cents: int
    ) -> Payment:
        if method not in PAYMENT_METHODS:
            raise ValidationError("method", "CASH, CARD or TRANSFER")
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        if self.status is BookingStatus.CONFIRMED:
            return self._record_deposit(method=method, amount_cents=amount_cents, on=on)
        owed = self.balance_cents
        if self.status is not BookingStatus.CHECKED_IN and owed <= 0:
            raise IllegalTransition(
                f"{self.label} is {self.status.value} and settled: no payment is due",
                self.status.value,
            )
        if amount_cents > owed:
            raise ValidationError(
                "amount", f"exceeds the balance due of {format_cents(max(owed, 0))} EUR"
            )
        self._check_not_before_first_payment(on)
        # Payments come with the guest (or, after a no-show, after it was recorded): a
        # year typed wrong on the first one was otherwise accepted.
        opened = self.checked_in_on or self.closed_on or self.booked_on
        if on < opened:
            raise ValidationError(
                "businessDate", f"a payment cannot precede {opened.isoformat()} for this stay"
            )
        payment = Payment(PAYMENT, method, amount_cents, on)
        self.trigger_event(
            self.PaymentRecorded, number=len(self.payments) + 1, payment=payment.as_state()
        )
        return payment

    def _check_refund_method(self, method: str, amount_cents: int, *, field: str) -> None:
        """Back the way it came: a refund only by a method that took at least that much
        of this stay's payments (a card refund of cash never taken by card left the
        card clearing account negative for the booking)."""
        by_method = sum(p.signed_cents for p in self.payments if p.method == method)
        if amount_cents > by_method:
            raise ValidationError(
                field,
                f"{method} took {format_cents(max(by_method, 0))} EUR of this stay's payments",
            )

    def _check_refund_date(self, on: date) -> None:
        """Money goes back no earlier than it came in: dated before the latest payment,
        the ledger shows the cash (or the card's clearing) out before it was in."""
        latest = max((p.on for p in self.payments if p.signed_cents > 0), default=None)
        if latest is not None and on < latest:
            raise ValidationError(
                "businessDate",
                f"a refund cannot precede the payment it returns ({latest.isoformat()})",
            )

    def _check_not_before_first_payment(self, on: date) -> None:
        if self.payments and on < min(p.on for p in self.payments):
            raise ValidationError(
                "businessDate", "a payment cannot precede the booking's first payment"
            )

    def _record_deposit(self, *, method: str, amount_cents: int, on: date) -> Payment:
        """Money before arrival is deposit (a bank transfer that comes days after the
        booking): held on the deposits account until check-out, refunded or retained
        on cancellation as the rules say. One method per booking, because a
        cancellation gives the deposit back the way it came."""
        held = self.deposit_method
        if held is not None and method != held:
            raise ValidationError("method", f"this booking's deposit was paid by {held}")
        if amount_cents > self.balance_cents:
            raise ValidationError(
                "amount",
                f"a deposit is at most the stay's {format_cents(max(self.balance_cents, 0))} EUR"
                " still open",
            )
        if on < self.booked_on:
            raise ValidationError("businessDate", "a deposit cannot precede the booking")
        self._check_not_before_first_payment(on)
        deposit = Payment(DEPOSIT, method, amount_cents, on)
        self.trigger_event(
            self.PaymentRecorded, number=len(self.payments) + 1, payment=deposit.as_state()
        )
        return deposit

    def record_refund(
        self, *, method: str, amount_cents: int, on: date, ceiling_cents: int
    ) -> Payment:
        """Money back to the guest, e.g. after an early departure; at most what was
        paid, the deposit included (a deposit above a shortened stay is given back
        this way before check-out, which then applies the whole deposit)."""
        if method not in PAYMENT_METHODS:
            raise ValidationError("method", "CASH, CARD or TRANSFER")
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        self._require(BookingStatus.CHECKED_IN, action="refund a payment")
        received = self.paid_cents
        if amount_cents > received:
            raise ValidationError(
                "amount",
                f"exceeds the {format_cents(received)} EUR paid, the deposit included",
            )
        self._check_refund_method(method, amount_cents, field="method")
        assert self.checked_in_on is not None
        # In house: a deposit given back before the arrival is a cancellation's refund.
        if on < self.checked_in_on:
            raise ValidationError("businessDate", "a refund in house cannot precede the check-in")
        self._check_refund_date(on)
        payment = Payment(REFUND, method, amount_cents, on)
        self.trigger_event(
            self.PaymentRecorded, number=len(self.payments) + 1, payment=payment.as_state()
        )
        return payment

    def check_out(self, config: HotelConfiguration, *, on: date) -> list[date]:
        """Close the folio on the nights actually stayed; returns the nights released."""
        if self.status is BookingStatus.CONFIRMED:
            raise IllegalTransition(
                f"{self.label} was never checked in: cannot check out", self.status.value
            )
        self._require(BookingStatus.CHECKED_IN, action="check out")
        assert self.checked_in_on is not None
        if on < self.checked_in_on:
            raise ValidationError("businessDate", "check-out cannot precede the check-in")
        latest = max((line.service_date for line in self.extra_lines), default=self.checked_in_on)
        if on < latest:
            raise ValidationError(
                "businessDate",
                f"check-out cannot precede the folio's last charge ({latest.isoformat()})",
            )
        # A same-day departure still pays one night, the night of its check-in (a late
        # arrival who leaves the day it came had the room that night); a late
        # departure pays the booked nights.
        end = min(max(on, self.checked_in_on + timedelta(days=1)), self.departure)
        lines, tax = price_stay(
            config,
            room_number=self.room_number,
            arrival=self.arrival,
            end=end,
            nightly_rate_cents=self.nightly_rate_cents,
            guests=self.guests,
            present_from=self.checked_in_on,
        )
        total = sum(line.amount_cents for line in [*lines, *self.extra_lines])
        balance = total - self.paid_cents
        if balance != 0:
            raise BalanceDue(str(self.id), balance)
        released = nights_between(end, self.departure)
        self.trigger_event(
            self.CheckedOut,
            on=on,
            stay_lines=[line.as_state() for line in lines],
            tourist_tax=tax.as_state(),
            released_nights=[night.isoformat() for night in released],
        )
        return released

    def cancel(self, config: HotelConfiguration, *, on: date) -> None:
        """Before arrival: the deposit is refunded if early enough, otherwise retained."""
        self._require(BookingStatus.CONFIRMED, action="cancel")
        # Dated before the booking, a late cancellation read as an early one and
        # refunded a deposit the rules retain; after the arrival day the guest who never
        # came is a no-show (its penalty), not a cancellation.
        if on < max([self.booked_on, *(p.on for p in self.payments)]):
            raise ValidationError(
                "businessDate", "a cancellation cannot precede the booking or its deposit"
            )
        if on > self.arrival:
            raise ValidationError(
                "businessDate", "after the arrival day a guest who never came is a no-show"
            )
        # The terms the guest booked under (a later policy is for new business).
        free_days, _ = self.booked_terms(config)
        deposit = self.deposit_cents
        method = self.deposit_method or "TRANSFER"
        closing: list[dict[str, Any]] = []
        refunds: list[dict[str, Any]] = []
        if deposit:
            if (self.arrival - on).days >= free_days:
                refunds.append(Payment(DEPOSIT_REFUND, method, deposit, on).as_state())
            else:
                # At most what the stay was worth: a deposit above it (a stay shortened
                # in house, then its check-in undone) gives the rest back.
                retained = min(deposit, self.total_cents)
                if retained:
                    closing.append(
                        FolioLine.outside_vat(
                            RETAINED_DEPOSIT, "Deposit retained on late cancellation", on, retained
                        ).as_state()
                    )
                if deposit > retained:
                    refunds.append(
                        Payment(DEPOSIT_REFUND, method, deposit - retained, on).as_state()
                    )
        self.trigger_event(self.Cancelled, on=on, closing_lines=closing, payments=refunds)

    def mark_no_show(self, config: HotelConfiguration, *, on: date) -> None:
        """The guest never came: the penalty is taken from the deposit; any rest is due."""
        self._require(BookingStatus.CONFIRMED, action="mark as no-show")
        if on < max([self.arrival, *(p.on for p in self.payments)]):
            raise ValidationError(
                "businessDate", "a no-show is recorded from the arrival day and its deposit"
            )
        # The terms the guest booked under, as for a cancellation.
        _, penalty_nights = self.booked_terms(config)
        nights = min(penalty_nights, len(self.nights))
        penalty = nights * self.nightly_rate_cents
        deposit = self.deposit_cents
        closing: list[dict[str, Any]] = []
        refunds: list[dict[str, Any]] = []
        if penalty:
            closing.append(
                FolioLine.outside_vat(
                    NO_SHOW_PENALTY, f"No-show penalty: {nights} night(s)", on, penalty
                ).as_state()
            )
        if deposit > penalty:
            method = self.deposit_method or "TRANSFER"
            refunds.append(Payment(DEPOSIT_REFUND, method, deposit - penalty, on).as_state())
        self.trigger_event(self.MarkedNoShow, on=on, closing_lines=closing, payments=refunds)

    def waive_penalty(self, *, reason: str, on: date) -> FolioLine:
        """The hotel gives up a no-show penalty it will not collect: a negative line
        takes what is still due off the folio, so the receivable and the penalty
        revenue go back by as much. What was paid, or kept from the deposit, stays."""
        reason = collapsed_text(reason, field="reason", max_length=MAX_CHARGE_DESCRIPTION_LENGTH)
        self._require(BookingStatus.NO_SHOW, action="waive its penalty")
        due = self.balance_cents
        if due <= 0:
            raise IllegalTransition(
                f"{self.label} is {self.status.value} and settled: no penalty is due",
                self.status.value,
            )
        assert self.closed_on is not None
        if on < max([self.closed_on, *(p.on for p in self.payments)]):
            raise ValidationError(
                "businessDate", "a waiver cannot precede the no-show or a payment of its penalty"
            )
        waiver = FolioLine.outside_vat(NO_SHOW_PENALTY, f"Penalty waived: {reason}", on, -due)
        closing = [line.as_state() for line in [*self.stay_lines, waiver]]
        self.trigger_event(self.PenaltyWaived, on=on, closing_lines=closing)
        return waiver

    def mark_reported(self, *, reported_at: datetime, now: datetime, zone: tzinfo) -> None:
        """Once only (the portal's acceptance is a fact), so it must be plausible: not
        after now, not before the check-in day."""
        self._require(
            BookingStatus.CHECKED_IN, BookingStatus.CHECKED_OUT, action="report its guests"
        )
        if self.reported_at is not None:
            raise IllegalTransition(
                f"{self.label}: its guests were already reported", self.status.value
            )
        if reported_at > now:
            raise ValidationError("reportedAt", "cannot be in the future")
        assert self.checked_in_on is not None
        if reported_at.astimezone(zone).date() < self.checked_in_on:
            raise ValidationError("reportedAt", "cannot precede the check-in day")
        self.trigger_event(self.GuestsReported, reported_at=reported_at.isoformat())

    def erase_guest_data(self, *, on: date) -> None:
        """Shred the guests' identities (the application deletes the booking's key);
        the stay's facts and its accounts stay. Only once the stay is over, and, if the
        guests arrived, once the police report was accepted: it needs the identities."""
        self._require(
            BookingStatus.CHECKED_OUT,
            BookingStatus.CANCELLED,
            BookingStatus.NO_SHOW,
            action="erase its guests' data",
        )
        if self.guest_data_erased:
            raise IllegalTransition(
                f"{self.label}: its guests' data was already erased", self.status.value
            )
        if not self.guest_data_sealed:
            # Recorded before identities were sealed (Booked v1): they are in the event
            # log in clear, which cannot be shredded by deleting a key.
            raise IllegalTransition(
                f"{self.label}: its guests' data predates sealing and cannot be erased",
                self.status.value,
            )
        if self.checked_in_on is not None and self.reported_at is None:
            raise IllegalTransition(
                f"{self.label}: its guests were not reported to the police yet",
                self.status.value,
            )
        if self.balance_cents != 0:
            # A no-show's penalty still owed: whom to ask for it is in the identities
            # (the GDPR keeps data needed for a legal claim, art. 17(3)(e)). Collected
            # or waived, the booking may be erased.
            raise BalanceDue(
                str(self.id),
                self.balance_cents,
                "cannot have its guests' data erased",
                " (collect it with recordPayment or give it up with waiveNoShowPenalty first)",
            )
        self.trigger_event(self.GuestDataErased, on=on)


class RoomNight(Aggregate):
    """One room on one night: held by at most one booking.

    Its id is derived from (room, night), so two bookings that claim the same night
    both write this aggregate: the store lets exactly one of them commit. A release
    (cancellation, no-show, early departure) and a later claim are further events on
    the same aggregate, so they too are ordered by its version.
    """

    class Claimed(Aggregate.Created):
        room_number: str
        night: date
        booking_id: UUID

    class Reclaimed(Aggregate.Event):
        booking_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, RoomNight)
            aggregate.booking_id = self.booking_id

    class Released(Aggregate.Event):
        booking_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, RoomNight)
            aggregate.booking_id = None

    def __init__(self, room_number: str, night: date, booking_id: UUID) -> None:
        self.room_number = room_number
        self.night = night
        self.booking_id: UUID | None = booking_id

    @classmethod
    def claim(
        cls, existing: RoomNight | None, *, room_number: str, night: date, booking_id: UUID
    ) -> RoomNight:
        if existing is None:
            return cls._create(
                cls.Claimed,
                id=room_night_id(room_number, night),
                room_number=room_number,
                night=night,
                booking_id=booking_id,
            )
        if existing.booking_id is not None and existing.booking_id != booking_id:
            raise RoomUnavailable(
                f"room {room_number} is already booked for the night of {night.isoformat()}"
            )
        if existing.booking_id is None:
            existing.trigger_event(cls.Reclaimed, booking_id=booking_id)
        return existing

    def release(self, booking_id: UUID) -> None:
        if self.booking_id != booking_id:
            return  # not ours (never happens while bookings release only their nights)
        self.trigger_event(self.Released, booking_id=booking_id)

"""Demo year of Hotel Giardino, driven through the hotel service: bookings (some with
a deposit), check-ins, dinners and drinks, payments, check-outs, a few cancellations
and no-shows, and the daily police report.

Rooms are allocated here, before anything runs, so no two stays ever claim the same
room-night (cancelled and no-show stays keep theirs): every step succeeds, in any
backend, and a second load replays every key and changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from gateway.demo.steps import DEMO_ACTOR, DemoStep, days_of
from services.common.idempotency import claim_id_for
from services.hotel.domain import DEFAULT_ROOMS, Guest, PartyType, booking_id_for_key
from services.hotel.domain.guests import ITALY_CODE

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# Arrivals per day by month. Val Camonica: busy in summer and at Christmas, quiet in
# November; about 1,200 stays a year (the e2e demo test loads a whole year twice).
ARRIVALS_BY_MONTH = {1: 2, 2: 3, 3: 3, 4: 4, 5: 4, 6: 5, 7: 6, 8: 7, 9: 4, 10: 3, 11: 1, 12: 4}
CANCEL_SHARE = 0.05
NO_SHOW_SHARE = 0.02
DEPOSIT_SHARE = 0.3

# Fictitious guests. Italian places: (municipality code, province).
ITALIAN_PLACES = (
    ("403015146", "MI"),
    ("403017029", "BS"),
    ("403016024", "BG"),
    ("405023091", "VR"),
    ("412058091", "RM"),
    ("401001272", "TO"),
)
FOREIGN = ("100000216", "100000215", "100000219", "100000232", "100000241", "100000203")
SURNAMES = (
    "Rossi", "Bianchi", "Colombo", "Ferrari", "Bonetti", "Gatti", "Müller", "Dupont",
    "Smith", "Jansen", "Huber", "Moretti", "Fontana", "Rinaldi", "Baresi", "Zanetti",
)  # fmt: skip
GIVEN = ("Anna", "Marco", "Giulia", "Luca", "Sara", "Paolo", "Elena", "Hans", "Claire", "John")
CHARGES = (
    ("FOOD", "Dinner", (2500, 3200, 4800)),
    ("BEVERAGE", "Drinks at the bar", (600, 900, 1500)),
    ("OTHER", "Meeting room", (5000,)),
)


@dataclass(frozen=True)
class Stay:
    key: str
    room: str
    arrival: date
    nights: int
    guests: tuple[Guest, ...]
    booked_on: date
    deposit_cents: int | None
    fate: str  # "stay", "cancel", "no-show"

    @property
    def booking_id(self) -> UUID:
        return booking_id_for_key(self.key)

    @property
    def departure(self) -> date:
        return self.arrival + timedelta(days=self.nights)


def _guest(rng: random.Random, arrival: date, leader: bool, child: bool, home: str) -> Guest:
    surname = rng.choice(SURNAMES)
    years = rng.randint(3, 12) if child else rng.randint(20, 75)
    birth = arrival - timedelta(days=365 * years + rng.randint(0, 300))
    italian = home == ITALY_CODE
    place = rng.choice(ITALIAN_PLACES)
    return Guest(
        surname=surname,
        given_name=rng.choice(GIVEN),
        sex=rng.choice(("M", "F")),
        birth_date=birth,
        birth_country_code=home,
        birth_municipality_code=place[0] if italian else None,
        birth_province=place[1] if italian else None,
        citizenship_code=home,
        residence_country_code=home,
        residence_municipality_code=place[0] if italian else None,
        residence_province=place[1] if italian else None,
        document_type=("IDENT" if italian else "PASOR") if leader else None,
        document_number=f"DM{rng.randint(100000, 999999)}" if leader else None,
        document_issue_place_code=(place[0] if italian else home) if leader else None,
        tax_exemption_reason=None,
    )


def plan_stays(year: int, rng: random.Random) -> list[Stay]:
    taken: set[tuple[str, date]] = set()
    stays: list[Stay] = []
    for today in days_of(year):
        for n in range(rng.randint(0, ARRIVALS_BY_MONTH[today.month])):
            nights = rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5, 7))
            party = rng.choice((1, 2, 2, 2, 3, 4))
            rooms = [
                r
                for r in DEFAULT_ROOMS
                if r.capacity >= party
                and all((r.number, today + timedelta(days=i)) not in taken for i in range(nights))
            ]
            if not rooms:
                continue  # full house
            room = min(rooms, key=lambda r: (r.capacity, rng.random()))
            for i in range(nights):
                taken.add((room.number, today + timedelta(days=i)))
            home = ITALY_CODE if rng.random() < 0.7 else rng.choice(FOREIGN)
            guests = tuple(
                _guest(rng, today, i == 0, child=i >= 2 and rng.random() < 0.6, home=home)
                for i in range(party)
            )
            roll = rng.random()
            fate = "cancel" if roll < CANCEL_SHARE else "stay"
            if CANCEL_SHARE <= roll < CANCEL_SHARE + NO_SHOW_SHARE:
                fate = "no-show"
            deposit = room.nightly_rate_cents if rng.random() < DEPOSIT_SHARE else None
            lead_days = rng.choice((0, 1, 3, 7, 14, 30, 60))
            stays.append(
                Stay(
                    key=f"demo:{today}:stay:{n}",
                    room=room.number,
                    arrival=today,
                    nights=nights,
                    guests=guests,
                    booked_on=max(today - timedelta(days=lead_days), date(year, 1, 1)),
                    deposit_cents=deposit,
                    fate="stay" if fate == "cancel" and lead_days == 0 else fate,
                )
            )
    return stays


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    stays = plan_stays(year, rng)
    arrivals: dict[date, list[UUID]] = {}
    for stay in stays:
        yield from _stay_steps(stay, rng)
        if stay.fate == "stay":
            arrivals.setdefault(stay.arrival, []).append(stay.booking_id)
    # After the day's check-ins (same-day steps keep their order): the police report.
    for day, booking_ids in sorted(arrivals.items()):
        yield _report_step(day, booking_ids)


def _stay_steps(stay: Stay, rng: random.Random) -> Iterator[DemoStep]:
    booking_id = stay.booking_id

    def create(runtime: Runtime) -> bool:
        if _done(runtime, stay.key):
            return False
        outcome = runtime.hotel.create_booking(
            key=stay.key,
            actor=DEMO_ACTOR,
            room_number=stay.room,
            arrival=stay.arrival,
            departure=stay.departure,
            guests=stay.guests,
            party_type=PartyType.FAMILY,
            deposit_cents=stay.deposit_cents,
            deposit_method=rng_method(stay.key, deposit=True),
            on=stay.booked_on,
        )
        return not outcome.replayed

    yield DemoStep(stay.booked_on, create)
    if stay.fate == "cancel":
        cancel_on = stay.booked_on + (stay.arrival - stay.booked_on) // 2

        def cancel(runtime: Runtime) -> bool:
            if _done(runtime, f"{stay.key}:cancel"):
                return False
            outcome = runtime.hotel.cancel_booking(
                key=f"{stay.key}:cancel", actor=DEMO_ACTOR, booking_id=booking_id, on=cancel_on
            )
            return not outcome.replayed

        yield DemoStep(cancel_on, cancel)
        return
    if stay.fate == "no-show":

        def no_show(runtime: Runtime) -> bool:
            if _done(runtime, f"{stay.key}:no-show"):
                return False
            outcome = runtime.hotel.mark_no_show(
                key=f"{stay.key}:no-show",
                actor=DEMO_ACTOR,
                booking_id=booking_id,
                on=stay.arrival,
            )
            return not outcome.replayed

        yield DemoStep(stay.arrival, no_show)
        return

    def check_in(runtime: Runtime) -> bool:
        if _done(runtime, f"{stay.key}:in"):
            return False
        outcome = runtime.hotel.check_in(
            key=f"{stay.key}:in", actor=DEMO_ACTOR, booking_id=booking_id, on=stay.arrival
        )
        return not outcome.replayed

    yield DemoStep(stay.arrival, check_in)
    for i in range(rng.choice((0, 0, 1, 1, 2))):
        kind, description, amounts = rng.choice(CHARGES[:2] if rng.random() < 0.95 else CHARGES)
        amount = rng.choice(amounts) * (len(stay.guests) if kind == "FOOD" else 1)
        day = stay.arrival + timedelta(days=rng.randrange(stay.nights))

        def charge(
            runtime: Runtime, i: int = i, kind: str = kind, desc: str = description,
            amount: int = amount, day: date = day,
        ) -> bool:  # fmt: skip
            if _done(runtime, f"{stay.key}:charge:{i}"):
                return False
            outcome = runtime.hotel.post_charge(
                key=f"{stay.key}:charge:{i}",
                actor=DEMO_ACTOR,
                booking_id=booking_id,
                kind=kind,
                description=desc,
                amount_cents=amount,
                on=day,
            )
            return not outcome.replayed

        yield DemoStep(day, charge)

    method = rng_method(stay.key)

    def settle_and_check_out(runtime: Runtime) -> bool:
        if _done(runtime, f"{stay.key}:out"):
            return False
        booking = runtime.hotel.get_booking(booking_id)
        if booking.balance_cents > 0:
            runtime.hotel.record_payment(
                key=f"{stay.key}:pay",
                actor=DEMO_ACTOR,
                booking_id=booking_id,
                method=method,
                amount_cents=booking.balance_cents,
                on=stay.departure,
            )
        runtime.hotel.check_out(
            key=f"{stay.key}:out", actor=DEMO_ACTOR, booking_id=booking_id, on=stay.departure
        )
        return True

    yield DemoStep(stay.departure, settle_and_check_out)


def _done(runtime: Runtime, key: str) -> bool:
    """Whether the command with this idempotency key already ran. Loading the demo a
    second time then costs one indexed read per step instead of a replayed command."""
    return bool(runtime.hotel.recorder.select_events(claim_id_for(key), limit=1))


def rng_method(key: str, *, deposit: bool = False) -> str:
    # Derived from the key (not the shared generator) so the plan does not depend on
    # when a step's closure is called.
    roll = random.Random(f"{key}:{deposit}").random()
    if deposit:
        return "CARD" if roll < 0.6 else "TRANSFER"
    return "CARD" if roll < 0.7 else ("CASH" if roll < 0.95 else "TRANSFER")


def _report_step(day: date, booking_ids: list[UUID]) -> DemoStep:
    def report(runtime: Runtime) -> bool:
        if _done(runtime, f"demo:{day}:alloggiati"):
            return False
        outcome = runtime.hotel.mark_reported(
            key=f"demo:{day}:alloggiati",
            actor=DEMO_ACTOR,
            booking_ids=booking_ids,
            reported_at=datetime.combine(day, time(21, 0), tzinfo=runtime.settings.zone),
        )
        return not outcome.replayed

    return DemoStep(day, report)

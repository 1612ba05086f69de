"""The hotel application on real stores: read models, rebuild, ledger = folio."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from gateway.runtime import Runtime
from services.hotel.domain import Guest, make_guest
from services.hotel.projections.tables import HOTEL_TABLES, hotel_guests
from services.ledger.domain.errors import AccountKeptOpen
from services.ledger.projections.tables import ledger_entries, ledger_lines

ITALY = "100000100"


def guests(count: int, arrival: date, births: list[date] | None = None) -> list[Guest]:
    return [
        make_guest(
            index=i,
            is_leader=i == 0,
            arrival=arrival,
            surname="Neri",
            given_name="Ada",
            sex="F",
            birth_date=date(1990 + 10 * i, 3, 3) if births is None else births[i],
            birth_country_code=ITALY,
            birth_municipality_code="403015146",
            birth_province="MI",
            citizenship_code=ITALY,
            residence_country_code=ITALY,
            residence_municipality_code="403015146",
            residence_province="MI",
            document_type="IDENT" if i == 0 else None,
            document_number="XY99" if i == 0 else None,
            document_issue_place_code="403015146" if i == 0 else None,
            tax_exemption_reason=None,
        )
        for i in range(count)
    ]


def run_a_small_season(runtime: Runtime) -> list[Any]:
    hotel = runtime.hotel
    ids = []
    for n in range(12):
        arrival = date(2025, 7, 1 + n)
        booking = hotel.create_booking(
            key=f"b{n}",
            actor="t",
            room_number="105",
            arrival=arrival,
            departure=date(2025, 7, 2 + n),
            guests=guests(1 + n % 3, arrival),
            deposit_cents=5000 if n % 2 else None,
            on=date(2025, 6, 1),
        ).result
        ids.append(booking.id)
        if n % 4 == 3:
            hotel.cancel_booking(key=f"c{n}", actor="t", booking_id=booking.id, on=date(2025, 6, 2))
            continue
        hotel.check_in(key=f"i{n}", actor="t", booking_id=booking.id, on=arrival)
        hotel.post_charge(
            key=f"f{n}",
            actor="t",
            booking_id=booking.id,
            kind="BEVERAGE",
            description="Wine",
            amount_cents=1234 + n,
            on=arrival,
        )
        due = hotel.get_booking(booking.id).balance_cents
        if due > 0:
            hotel.record_payment(
                key=f"p{n}", actor="t", booking_id=booking.id, method="CASH",
                amount_cents=due, on=arrival,
            )  # fmt: skip
        hotel.check_out(key=f"o{n}", actor="t", booking_id=booking.id, on=date(2025, 7, 2 + n))
    return ids


def test_ledger_equals_folios_and_rebuild_reproduces_the_read_models(runtime: Runtime) -> None:
    ids = run_a_small_season(runtime)
    runtime.projector.run_until_caught_up()

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        with runtime.sync_engine.connect() as conn:
            return {
                t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(select(t)))
                for t in HOTEL_TABLES
            }

    before = snapshot()
    runtime.projector.rebuild()
    assert snapshot() == before

    folio_total = sum(runtime.hotel.get_booking(i).total_cents for i in ids)
    with runtime.sync_engine.connect() as conn:
        rows = conn.execute(
            select(
                ledger_lines.c.account_code, ledger_lines.c.debit_cents, ledger_lines.c.credit_cents
            )
            .join(ledger_entries, ledger_entries.c.position == ledger_lines.c.position)
            .where(ledger_entries.c.cause_id.like("hotel:%"))
        ).all()
    net: dict[str, int] = {}
    for account, debit, credit in rows:
        net[account] = net.get(account, 0) + int(debit) - int(credit)
    # Revenue, VAT and tourist tax credited = every folio's total; nothing left owed;
    # deposits held are all applied, refunded or retained.
    credited = -sum(v for a, v in net.items() if a[0] == "4" or a in ("2000", "2010", "2100"))
    assert credited == folio_total
    assert net.get("1100", 0) == 0
    assert net.get("2200", 0) == 0
    assert sum(net.values()) == 0
    assert asyncio.run(_occupied(runtime)) == 9  # 12 nights booked, 3 cancelled


async def _occupied(runtime: Runtime) -> int:
    from services.hotel.projections import queries

    try:
        async with runtime.read_engine.connect() as conn:
            nights = await queries.occupancy(conn, date(2025, 7, 1), date(2025, 7, 31))
        return sum(n.rooms_sold for n in nights)
    finally:
        await runtime.read_engine.dispose()


def test_a_booking_recorded_before_sealing_still_reads_and_cannot_be_erased(
    runtime: Runtime,
) -> None:
    """A store written before guests were sealed holds Booked v1 events (whole guests
    in clear, no class_version). They upcast on read, the read model shows their
    guests, and erasure is refused: deleting a key cannot shred clear text."""
    from uuid import uuid4

    from eventsourcing.persistence import StoredEvent
    from eventsourcing.utils import get_topic

    from services.common.errors import Conflict
    from services.hotel.domain import Booking, PartyType
    from services.hotel.projections import queries

    arrival = date(2025, 8, 1)
    party = guests(2, arrival)
    current = Booking.create(
        runtime.hotel.configuration(),
        booking_id=uuid4(),
        room_number="105",
        arrival=arrival,
        departure=date(2025, 8, 3),
        guests=party,
        seal_identities=lambda identities: "unused",
        party_type=PartyType.FAMILY,
        nightly_rate_cents=None,
        deposit_cents=None,
        deposit_method="CARD",
        booked_on=date(2025, 7, 1),
        ceiling_cents=10**9,
    )
    (booked,) = current.collect_events()
    v1_state = dict(booked.__dict__)
    del v1_state["guest_identities_sealed"], v1_state["guest_identities_legacy"]
    v1_state["guests"] = [g.as_state() for g in party]
    runtime.hotel.recorder.insert_events(
        [
            StoredEvent(
                originator_id=current.id,
                originator_version=1,
                topic=get_topic(Booking.Booked),
                state=runtime.hotel.mapper.transcoder.encode(v1_state),
            )
        ]
    )
    runtime.projector.run_until_caught_up()

    booking = runtime.hotel.get_booking(current.id)
    assert [g.age_on_arrival for g in booking.guests] == [35, 25]
    assert not booking.guest_data_sealed

    async def read() -> queries.BookingView | None:
        try:
            async with runtime.read_engine.connect() as conn:
                return await queries.booking_by_id(conn, current.id)
        finally:
            await runtime.read_engine.dispose()

    view = asyncio.run(read())
    assert view is not None
    assert [(g.surname, g.document_number) for g in view.guests] == [
        ("Neri", "XY99"),
        ("Neri", None),
    ]
    # Sealed new identities would make it look erasable while the old ones stay in clear.
    with pytest.raises(Conflict, match="predates sealing"):
        runtime.hotel.change_guests(
            key="guests-v1", actor="t", booking_id=current.id, guests=party, on=date(2025, 7, 2)
        )
    runtime.hotel.cancel_booking(
        key="cancel-v1", actor="t", booking_id=current.id, on=date(2025, 7, 2)
    )
    with pytest.raises(Conflict, match="predates sealing"):
        runtime.hotel.erase_guest_data(key="erase-v1", actor="t", booking_id=current.id)


@pytest.mark.parametrize("code", ["2200", "1100", "4030", "2100"])
def test_the_hotel_s_role_accounts_cannot_be_closed_under_it(runtime: Runtime, code: str) -> None:
    """The role accounts cannot be changed through the API, so closing one (for good)
    would refuse every later deposit refund, check-out or no-show: refused, saying why."""
    arrival = date(2025, 6, 20)
    booking = runtime.hotel.create_booking(
        key="with-deposit",
        actor="t",
        room_number="101",
        arrival=arrival,
        departure=date(2025, 6, 22),
        guests=guests(1, arrival),
        deposit_cents=5000,
        deposit_method="CARD",
        on=date(2025, 6, 1),
    ).result
    with pytest.raises(AccountKeptOpen) as refused:
        runtime.ledger.close_account(key=f"close-{code}", actor="admin", code=code)
    assert refused.value.field == "code"
    assert "the hotel posts to it" in refused.value.message
    # Cancelled three weeks ahead: the deposit goes back, through 2200.
    cancelled = runtime.hotel.cancel_booking(
        key="cancel", actor="t", booking_id=booking.id, on=date(2025, 6, 2)
    ).result
    assert cancelled.balance_cents == 0


def test_a_late_arrival_s_ages_are_taken_on_the_day_the_guests_came(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tourist tax exempts guests under the age on arrival (Breno: 14). Booked for
    1 July, a mother and a daughter who turns 14 on 2 July come on 3 July: the daughter
    arrived at 14 and pays, as the police report counts her arrival. Undoing that
    check-in prices the stay as booked again."""
    hotel = runtime.hotel
    booked = date(2025, 7, 1)
    party = guests(2, booked, births=[date(1980, 1, 1), date(2011, 7, 2)])
    booking = hotel.create_booking(
        key="late-family",
        actor="t",
        room_number="102",
        arrival=booked,
        departure=date(2025, 7, 6),
        guests=party,
        on=date(2025, 6, 1),
    ).result
    as_booked = booking.tourist_tax
    assert as_booked.exempt_guest_nights == {"age": 5}, as_booked

    hotel.check_in(key="in", actor="t", booking_id=booking.id, on=date(2025, 7, 3))
    in_house = hotel.get_booking(booking.id)
    # The nights of 3, 4 and 5 July, both guests taxed.
    assert (in_house.tourist_tax.taxed_guest_nights, in_house.tourist_tax.exempt_guest_nights) == (
        6,
        {},
    )
    assert [g.age_on_arrival for g in in_house.guests] == [45, 14]
    runtime.projector.run_until_caught_up()
    with runtime.sync_engine.connect() as conn:
        ages = conn.execute(
            select(hotel_guests.c.age_on_arrival)
            .where(hotel_guests.c.booking_id == booking.id)
            .order_by(hotel_guests.c.position)
        ).scalars()
        assert list(ages) == [45, 14]

    monkeypatch.setattr(hotel, "today", lambda: date(2025, 7, 3))  # an undo is same-day
    hotel.undo_check_in(key="undo", actor="t", booking_id=booking.id, on=date(2025, 7, 3))
    again = hotel.get_booking(booking.id)
    assert [g.age_on_arrival for g in again.guests] == [45, 13]
    assert again.tourist_tax == as_booked

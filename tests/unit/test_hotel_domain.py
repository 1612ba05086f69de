"""Hotel domain in memory: pricing, tourist tax, postings, police records."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ValidationError
from services.hotel.domain import (
    DEFAULT_POLICIES,
    DEFAULT_ROOMS,
    Booking,
    BookingStatus,
    HotelConfiguration,
    IllegalTransition,
    PartyType,
    RoomNight,
    RoomUnavailable,
    make_guest,
)
from services.hotel.domain.accounting import (
    charge_postings,
    checkout_postings,
    closing_postings,
)
from services.hotel.domain.alloggiati import (
    RECORD_LENGTH,
    StayGuest,
    build_records,
    format_record,
    validate_records,
)
from services.hotel.domain.folio import DEPOSIT_REFUND, FolioLine, Payment, price_stay
from services.hotel.domain.guests import ITALY_CODE, Guest
from services.ledger.domain import Side

CEILING = 1_000_000_000
MILANO = "403015146"
BRENO = "403017028"


def config() -> HotelConfiguration:
    c = HotelConfiguration.start()
    for policy in DEFAULT_POLICIES:
        c.set_policy(policy)
    for room in DEFAULT_ROOMS:
        c.define_room(room, ceiling_cents=CEILING)
    return c


def guest(
    index: int = 0, birth: date = date(1980, 1, 1), residence: str = MILANO, **kw: object
) -> Guest:
    leader = index == 0
    values: dict[str, object] = {
        "index": index,
        "is_leader": leader,
        "arrival": date(2025, 7, 1),
        "surname": "Verdi",
        "given_name": "Luca",
        "sex": "M",
        "birth_date": birth,
        "birth_country_code": ITALY_CODE,
        "birth_municipality_code": MILANO,
        "birth_province": "MI",
        "citizenship_code": ITALY_CODE,
        "residence_country_code": ITALY_CODE,
        "residence_municipality_code": residence,
        "residence_province": "BS" if residence == BRENO else "MI",
        "document_type": "IDENT" if leader else None,
        "document_number": "AB123" if leader else None,
        "document_issue_place_code": MILANO if leader else None,
        "tax_exemption_reason": None,
    }
    values.update(kw)
    return make_guest(**values)  # type: ignore[arg-type]


def test_tourist_tax_exemptions_and_the_cap_on_nights() -> None:
    guests = [
        guest(0),
        guest(1, birth=date(2012, 7, 2)),  # 12 on arrival: under 14, exempt
        guest(2, residence=BRENO),  # resident of the municipality
        guest(3, tax_exemption_reason="Bus driver of a school group"),
    ]
    lines, tax = price_stay(
        config(),
        room_number="109",
        arrival=date(2025, 7, 1),
        end=date(2025, 7, 8),  # 7 nights; only the first 5 are taxed
        nightly_rate_cents=11000,
        guests=[g.facts(date(2025, 7, 1)) for g in guests],
    )
    assert [line.kind for line in lines].count("ROOM") == 7
    assert tax.amount_cents == 500
    assert tax.taxed_guest_nights == 5
    assert tax.exempt_guest_nights == {"age": 7, "resident": 7, "other": 7, "cap": 2}


def test_no_tax_before_it_was_introduced() -> None:
    lines, tax = price_stay(
        config(),
        room_number="102",
        arrival=date(2025, 5, 30),
        end=date(2025, 6, 2),
        nightly_rate_cents=7500,
        guests=[guest(0).facts(date(2025, 5, 30))],
    )
    # 30 and 31 May untaxed (no rate in force, not counted as exempt); 1 June taxed.
    assert tax.amount_cents == 100
    assert tax.exempt_guest_nights == {}
    assert lines[-1].description == "Tourist tax: 1 guest-night(s) at 1.00 EUR"


def test_room_night_claims_exactly_one_holder() -> None:
    first, second = uuid4(), uuid4()
    claim = RoomNight.claim(None, room_number="101", night=date(2025, 7, 1), booking_id=first)
    with pytest.raises(RoomUnavailable):
        RoomNight.claim(claim, room_number="101", night=date(2025, 7, 1), booking_id=second)
    claim.release(first)
    again = RoomNight.claim(claim, room_number="101", night=date(2025, 7, 1), booking_id=second)
    assert again.booking_id == second
    assert [type(e).__name__ for e in again.collect_events()] == [
        "Claimed",
        "Released",
        "Reclaimed",
    ]


def make_booking(deposit: int | None = None) -> Booking:
    return Booking.create(
        config(),
        booking_id=uuid4(),
        room_number="105",
        arrival=date(2025, 7, 1),
        departure=date(2025, 7, 4),
        guests=[guest(0), guest(1)],
        seal_identities=lambda identities: "v1:sealed-by-the-application",
        party_type=PartyType.GROUP,
        nightly_rate_cents=9000,
        deposit_cents=deposit,
        deposit_method="CARD",
        booked_on=date(2025, 6, 1),
        ceiling_cents=CEILING,
    )


def test_lifecycle_refuses_illegal_transitions() -> None:
    booking = make_booking()
    with pytest.raises(IllegalTransition):
        booking.post_charge(
            config(),
            kind="FOOD",
            description="Dinner",
            amount_cents=100,
            on=date(2025, 7, 1),
            ceiling_cents=CEILING,
        )
    with pytest.raises(IllegalTransition):
        booking.record_refund(
            method="CASH", amount_cents=100, on=date(2025, 7, 1), ceiling_cents=CEILING
        )
    booking.check_in(config(), on=date(2025, 7, 1))
    with pytest.raises(IllegalTransition):
        booking.check_in(config(), on=date(2025, 7, 1))
    with pytest.raises(IllegalTransition):
        booking.cancel(config(), on=date(2025, 7, 1))
    assert booking.status is BookingStatus.CHECKED_IN


def test_front_desk_facts_keep_the_order_of_the_stay() -> None:
    """A tired clerk's dates: each fact of a booking follows the ones it depends on,
    so a mistyped day is refused, not booked (a cancellation dated before the booking
    refunded a deposit the rules retain; a payment dated 2020 was accepted)."""
    with pytest.raises(ValidationError, match="businessDate"):
        Booking.create(
            config(), booking_id=uuid4(), room_number="105", arrival=date(2025, 5, 30),
            departure=date(2025, 6, 2), guests=[guest(0)],
            seal_identities=lambda identities: "sealed", party_type=PartyType.FAMILY,
            nightly_rate_cents=9000, deposit_cents=None, deposit_method="CARD",
            booked_on=date(2025, 6, 1), ceiling_cents=CEILING,
        )  # fmt: skip
    booking = make_booking(deposit=6000)  # booked 2025-06-01 for 07-01
    with pytest.raises(ValidationError, match="precede the booking"):
        booking.cancel(config(), on=date(2025, 5, 1))
    with pytest.raises(ValidationError, match="no-show"):
        booking.cancel(config(), on=date(2025, 7, 2))

    booking.check_in(config(), on=date(2025, 7, 2))  # arrived a day late
    for wrong_day in (date(2020, 1, 1), date(2025, 7, 1)):  # a year typo; before check-in
        with pytest.raises(ValidationError, match="precede"):
            booking.record_payment(
                method="CASH", amount_cents=1000, on=wrong_day, ceiling_cents=CEILING
            )
    with pytest.raises(ValidationError, match="check-in day"):
        booking.post_charge(
            config(), kind="FOOD", description="Dinner", amount_cents=1500,
            on=date(2025, 7, 1), ceiling_cents=CEILING,
        )  # fmt: skip
    booking.post_charge(
        config(), kind="FOOD", description="Dinner", amount_cents=1500,
        on=date(2025, 7, 3), ceiling_cents=CEILING,
    )  # fmt: skip
    booking.record_payment(method="CASH", amount_cents=1000, on=date(2025, 7, 3),
                           ceiling_cents=CEILING)  # fmt: skip
    with pytest.raises(ValidationError, match="precede the payment"):
        booking.record_refund(
            method="CASH", amount_cents=500, on=date(2025, 7, 2), ceiling_cents=CEILING
        )
    # The deposit came by card and 10.00 in cash: no 70.00 back in cash.
    with pytest.raises(ValidationError, match=r"CASH took 10\.00"):
        booking.record_refund(
            method="CASH", amount_cents=7000, on=date(2025, 7, 3), ceiling_cents=CEILING
        )
    booking.record_refund(method="CARD", amount_cents=6000, on=date(2025, 7, 3),
                          ceiling_cents=CEILING)  # fmt: skip
    with pytest.raises(ValidationError, match="last charge"):
        booking.check_out(config(), on=date(2025, 7, 2))


def test_guest_data_is_erased_only_after_the_stay_and_its_police_report() -> None:
    booking = make_booking()
    with pytest.raises(IllegalTransition, match="cannot erase"):
        booking.erase_guest_data(on=date(2025, 6, 2))  # the stay is ahead
    booking.check_in(config(), on=date(2025, 7, 1))
    booking.record_payment(
        method="CARD", amount_cents=booking.balance_cents, on=date(2025, 7, 1),
        ceiling_cents=CEILING,
    )  # fmt: skip
    booking.check_out(config(), on=date(2025, 7, 4))
    with pytest.raises(IllegalTransition, match="not reported"):
        booking.erase_guest_data(on=date(2025, 7, 5))
    reported = datetime(2025, 7, 1, 18, tzinfo=UTC)
    with pytest.raises(ValidationError, match="future"):
        booking.mark_reported(reported_at=reported, now=reported - timedelta(hours=1), zone=UTC)
    with pytest.raises(ValidationError, match="check-in"):
        booking.mark_reported(reported_at=reported - timedelta(days=2), now=reported, zone=UTC)
    booking.mark_reported(reported_at=reported, now=reported, zone=UTC)
    booking.erase_guest_data(on=date(2025, 7, 5))
    assert booking.guest_data_erased
    with pytest.raises(IllegalTransition, match="already erased"):
        booking.erase_guest_data(on=date(2025, 7, 6))
    # The facts that priced the stay are untouched.
    assert [g.age_on_arrival for g in booking.guests] == [45, 45]


def test_a_v1_booking_is_upcast_to_facts_and_keeps_its_legacy_identities() -> None:
    arrival = date(2025, 7, 1)
    child = guest(1, birth=date(2012, 7, 2), residence=BRENO)
    state: dict[str, Any] = {
        "arrival": arrival,
        "guests": [guest(0).as_state(), child.as_state()],
    }
    Booking.Booked.upcast_v1_v2(state)
    assert state["guests"] == [guest(0).facts(arrival).as_state(), child.facts(arrival).as_state()]
    assert state["guests"][1]["age_on_arrival"] == 12
    assert state["guest_identities_sealed"] is None
    legacy = state["guest_identities_legacy"]
    assert legacy == [guest(0).identity_state(), child.identity_state()]
    assert "surname" not in str(state["guests"])
    # Their identities are in the log in clear: no key to delete, so no erasure.
    booking = make_booking()
    booking.guest_data_sealed = False
    booking.cancel(config(), on=date(2025, 6, 2))
    with pytest.raises(IllegalTransition, match="predates sealing"):
        booking.erase_guest_data(on=date(2025, 6, 3))


@given(
    nights=st.integers(1, 10),
    rate=st.integers(1, 50_000),
    charges=st.lists(
        st.tuples(st.sampled_from(["ROOM", "FOOD", "BEVERAGE", "OTHER"]), st.integers(1, 99_999)),
        max_size=5,
    ),
    deposit_share=st.integers(0, 100),
)
def test_every_posting_balances_and_the_ledger_equals_the_folio(
    nights: int, rate: int, charges: list[tuple[str, int]], deposit_share: int
) -> None:
    c = config()
    policy = c.policy_on(date(2025, 7, 1))
    stay, _tax = price_stay(
        c,
        room_number="105",
        arrival=date(2025, 7, 1),
        end=date(2025, 7, 1 + nights),
        nightly_rate_cents=rate,
        guests=[guest(0).facts(date(2025, 7, 1))],
    )
    stay_total = sum(line.amount_cents for line in stay)
    deposit = stay_total * deposit_share // 100
    extras = [
        FolioLine.priced(kind, "x", date(2025, 7, 1), amount, policy.vat_bp(kind))
        for kind, amount in charges
    ]
    entries = [charge_postings(policy, line) for line in extras]
    entries.append(checkout_postings(policy, stay, deposit))
    revenue_vat_tax = 0
    receivable = 0
    for postings in entries:
        debit = sum(p.amount_cents for p in postings if p.side is Side.DEBIT)
        credit = sum(p.amount_cents for p in postings if p.side is Side.CREDIT)
        assert debit == credit
        assert all(p.amount_cents > 0 for p in postings)
        for p in postings:
            sign = 1 if p.side is Side.DEBIT else -1
            if p.account_code == "1100":
                receivable += sign * p.amount_cents
            elif p.account_code[0] in "24" and p.account_code != "2200":
                revenue_vat_tax -= sign * p.amount_cents
    folio_total = stay_total + sum(line.amount_cents for line in extras)
    assert revenue_vat_tax == folio_total
    # What the guest still owes after the deposit: paid at the desk to settle.
    assert receivable == folio_total - deposit


def test_cancellation_and_no_show_postings_balance() -> None:
    policy = DEFAULT_POLICIES[-1]
    penalty = FolioLine.outside_vat("NO_SHOW_PENALTY", "p", date(2025, 7, 1), 9000)
    refund = Payment(DEPOSIT_REFUND, "CARD", 6000, date(2025, 7, 1))
    postings = closing_postings(
        policy, deposit_cents=15000, closing_lines=[penalty], refunds=[refund]
    )
    assert {(p.account_code, p.side, p.amount_cents) for p in postings} == {
        ("2200", Side.DEBIT, 15000),
        ("4030", Side.CREDIT, 9000),
        ("1020", Side.CREDIT, 6000),
    }
    short = closing_postings(policy, deposit_cents=5000, closing_lines=[penalty], refunds=[])
    assert {(p.account_code, p.side, p.amount_cents) for p in short} == {
        ("2200", Side.DEBIT, 5000),
        ("1100", Side.DEBIT, 4000),
        ("4030", Side.CREDIT, 9000),
    }


def stay_guests(party: list[Guest], booking_id: object = None) -> list[StayGuest]:
    bid = booking_id or uuid4()
    return [
        StayGuest(bid, i, "FAMILY", len(party), date(2025, 7, 1), 3, g)  # type: ignore[arg-type]
        for i, g in enumerate(party)
    ]


def test_alloggiati_records_are_fixed_width_with_members_after_their_leader() -> None:
    records = build_records(stay_guests([guest(0), guest(1, sex="F"), guest(2)]))
    assert [len(r) for r in records] == [RECORD_LENGTH] * 3
    assert [r[:2] for r in records] == ["17", "19", "19"]
    assert records[0][:14] == "1701/07/202503"
    assert records[1][64:94].rstrip() == "Luca"
    assert records[1][94] == "2"
    single = build_records(stay_guests([guest(0)]))
    assert single[0][:2] == "16"
    foreign = guest(
        0,
        birth_country_code="100000216",
        birth_municipality_code=None,
        birth_province=None,
    )
    line = format_record(stay_guests([foreign])[0])
    assert line[105:116] == " " * 11  # no municipality or province for a foreign birth
    assert line[116:125] == "100000216"


def test_alloggiati_validation_refuses_bad_files_without_echoing_them() -> None:
    party = stay_guests([guest(0), guest(1)])
    good = [(s.booking_id, format_record(s)) for s in party]
    validate_records(good)
    with pytest.raises(ValidationError) as members_first:
        validate_records(list(reversed(good)))
    assert members_first.value.field == "records[0].type"
    with pytest.raises(ValidationError) as short:
        validate_records([(good[0][0], good[0][1][:-1])])
    assert short.value.field == "records[0].length"
    no_document = good[0][1][:134] + " " * 34
    with pytest.raises(ValidationError) as missing:
        validate_records([(good[0][0], no_document)])
    assert missing.value.field == "records[0].documentType"
    assert "Verdi" not in str(missing.value)
    other_booking = [good[0], (uuid4(), good[1][1])]
    with pytest.raises(ValidationError):
        validate_records(other_booking)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"surname": "  "}, "guests[0].surname"),
        ({"surname": "x" * 51}, "guests[0].surname"),
        ({"given_name": "Lu1ca"}, "guests[0].givenName"),
        ({"sex": "X"}, "guests[0].sex"),
        ({"citizenship_code": "IT"}, "guests[0].citizenshipCode"),
        ({"document_type": "XY"}, "guests[0].documentType"),
        ({"residence_province": None}, "guests[0].residenceProvince"),
    ],
)
def test_guest_validation_names_the_field_never_the_value(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        guest(0, **overrides)  # type: ignore[arg-type]
    assert error.value.field == field
    for value in overrides.values():
        if isinstance(value, str) and value.strip():
            assert value not in str(error.value)


def test_policy_versions_apply_from_their_date() -> None:
    c = config()
    assert c.policy_on(date(2025, 5, 31)).tourist_tax_cents == 0
    assert c.policy_on(date(2025, 6, 1)).tourist_tax_cents == 100
    c.set_policy(replace(DEFAULT_POLICIES[-1], effective_from=date(2026, 1, 1), hotel_stars=4))
    assert c.policy_on(date(2026, 1, 1)).tourist_tax_cents == 150
    with pytest.raises(ValidationError):
        c.set_policy(replace(DEFAULT_POLICIES[-1], hotel_stars=6))
    with pytest.raises(ValidationError):
        c.room_on("999", date(2025, 1, 1))


@pytest.mark.parametrize(
    ("arrival", "end", "present_from", "cents", "cap"),
    [
        # Review: 10 nights from 28 May; the tax came in on 1 June. 1-5 June taxed, 6 June
        # exempt under the cap of 5: the three untaxed May nights do not use it up.
        (date(2025, 5, 28), date(2025, 6, 7), None, 500, 1),
        # The demo year's stay: 2 nights in June, both taxed (none was).
        (date(2025, 5, 27), date(2025, 6, 3), None, 200, 0),
        # A late arrival's held nights do not count either.
        (date(2025, 7, 1), date(2025, 7, 10), date(2025, 7, 3), 500, 2),
    ],
)
def test_the_cap_counts_only_taxable_nights(
    arrival: date, end: date, present_from: date | None, cents: int, cap: int
) -> None:
    _lines, tax = price_stay(
        config(),
        room_number="101",
        arrival=arrival,
        end=end,
        nightly_rate_cents=6500,
        guests=[guest(0).facts(arrival)],
        present_from=present_from,
    )
    assert tax.amount_cents == cents
    assert tax.taxed_guest_nights == cents // 100
    assert tax.exempt_guest_nights == ({"cap": cap} if cap else {})


def checked_out(method: str = "CASH") -> Booking:
    """Checked in 2025-07-01 with a 40.00 dinner, paid in full by `method`, out 07-04."""
    booking = make_booking()
    booking.check_in(config(), on=date(2025, 7, 1))
    booking.post_charge(
        config(), kind="FOOD", description="Dinner", amount_cents=4000,
        on=date(2025, 7, 1), ceiling_cents=CEILING,
    )  # fmt: skip
    booking.record_payment(
        method=method, amount_cents=booking.balance_cents, on=date(2025, 7, 4),
        ceiling_cents=CEILING,
    )  # fmt: skip
    booking.check_out(config(), on=date(2025, 7, 4))
    return booking


def test_a_void_after_check_out_refunds_only_by_a_method_that_took_the_money() -> None:
    booking = checked_out("CASH")
    for method in ("CARD", "TRANSFER"):
        with pytest.raises(ValidationError) as refused:
            booking.void_charge(
                number=1, reason="not eaten", on=date(2025, 7, 5), refund_method=method
            )
        assert refused.value.field == "refundMethod"
        assert f"{method} took 0.00 EUR" in str(refused.value)
    assert booking.voided_charges == {}
    _line, refund = booking.void_charge(
        number=1, reason="not eaten", on=date(2025, 7, 5), refund_method="CASH"
    )
    assert refund is not None
    assert (refund.method, refund.amount_cents) == ("CASH", 4000)
    assert booking.balance_cents == 0


def test_cancellation_and_no_show_keep_the_terms_of_the_booking_day() -> None:
    """Booked 2025-06-01 under 7 days' free cancellation and a one-night no-show
    penalty; the hotel tightens both from 2025-06-10 for new business."""
    c = config()
    c.set_policy(
        replace(
            DEFAULT_POLICIES[-1],
            effective_from=date(2025, 6, 10),
            cancellation_free_days=30,
            no_show_penalty_nights=2,
        )
    )
    early = make_booking(deposit=5000)
    early.cancel(c, on=date(2025, 6, 20))  # 11 days ahead: free under the booked terms
    assert [p.kind for p in early.payments] == ["DEPOSIT", "DEPOSIT_REFUND"]
    assert early.stay_lines == []

    late = make_booking(deposit=5000)
    late.cancel(c, on=date(2025, 6, 25))  # 6 days ahead: retained under the booked terms
    assert [line.kind for line in late.stay_lines] == ["RETAINED_DEPOSIT"]

    absent = make_booking(deposit=20000)
    absent.mark_no_show(c, on=date(2025, 7, 1))
    assert [(line.kind, line.amount_cents) for line in absent.stay_lines] == [
        ("NO_SHOW_PENALTY", 9000)
    ]
    assert absent.payments[-1].amount_cents == 11000  # the rest of the deposit back


def test_a_late_arrival_who_leaves_the_day_it_came_pays_that_night() -> None:
    booking = make_booking()  # 2025-07-01 to 07-04, two adults
    booking.check_in(config(), on=date(2025, 7, 3))
    booking.record_payment(
        method="CARD", amount_cents=27200, on=date(2025, 7, 3), ceiling_cents=CEILING
    )
    booking.check_out(config(), on=date(2025, 7, 3))
    assert [line.service_date for line in booking.stay_lines if line.kind == "ROOM"] == [
        date(2025, 7, 1),
        date(2025, 7, 2),
        date(2025, 7, 3),
    ]
    assert booking.tourist_tax.taxed_guest_nights == 2  # two guests, the night of 07-03


def test_the_police_deadline_counts_the_nights_from_the_check_in() -> None:
    from services.hotel.domain.alloggiati import deadline_for, nights_reported

    arrived = datetime(2026, 11, 24, 21, 28, tzinfo=UTC)
    # Booked 22-25 November, arrived on the 24th: one night, a short stay.
    nights = nights_reported(date(2026, 11, 24), date(2026, 11, 25))
    assert nights == 1
    assert deadline_for(arrived, nights) == arrived + timedelta(hours=6)
    assert nights_reported(date(2026, 11, 22), date(2026, 11, 25)) == 3


@pytest.mark.parametrize(
    ("business_day", "nights", "real_hours"),
    [
        (date(2025, 10, 25), 3, 24),  # summer time ends in the night that follows
        (date(2025, 10, 25), 1, 6),
        (date(2025, 3, 29), 3, 24),  # summer time begins in the night that follows
    ],
)
def test_the_police_deadline_is_real_hours_across_a_clock_change(
    business_day: date, nights: int, real_hours: int
) -> None:
    from zoneinfo import ZoneInfo

    from services.hotel.domain.alloggiati import arrived_at, deadline_for

    rome = ZoneInfo("Europe/Rome")
    # Typed in a day late: deemed to have arrived at the end of the business day,
    # local midnight, an instant carrying the Rome zone.
    arrived = arrived_at(datetime(2026, 1, 5, 9, tzinfo=UTC), business_day, rome)
    deadline = deadline_for(arrived, nights)
    assert deadline.astimezone(UTC) - arrived.astimezone(UTC) == timedelta(hours=real_hours)
    assert deadline.tzinfo is arrived.tzinfo  # shown in the arrival's zone


def test_a_new_vat_rate_names_its_account() -> None:
    c = config()
    new_rate = replace(
        DEFAULT_POLICIES[-1],
        effective_from=date(2028, 1, 1),
        vat_bp_by_kind={**DEFAULT_POLICIES[-1].vat_bp_by_kind, "ROOM": 1200},
    )
    with pytest.raises(ValidationError) as refused:
        c.set_policy(new_rate)
    assert refused.value.field == "vatAccounts"
    assert "ROOM rate of 12%" in str(refused.value)
    assert "vatAccounts" in str(refused.value)
    c.set_policy(
        replace(new_rate, vat_account_by_bp={**new_rate.vat_account_by_bp, "1200": "2030"})
    )
    assert c.policy_on(date(2028, 1, 1)).vat_account(1200) == "2030"

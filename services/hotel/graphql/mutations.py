"""Hotel mutations: the front desk's day (bookings, check-in, charges, payments,
check-out, cancellations, no-shows, police reporting) and the admin's configuration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Protocol

import strawberry

from gateway.context import Info, run_mutation
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import CoopError, NotFound, ValidationError
from services.common.graphql import (
    ConflictResult,
    IdempotencyKeyReusedResult,
    Money,
    NotFoundResult,
    ValidationErrorResult,
    money,
)
from services.common.idempotency import Outcome
from services.common.money import decimal_to_cents, parse_percent_bp
from services.hotel.domain import (
    BalanceDue,
    Guest,
    HotelPolicy,
    HotelPolicyChange,
    PartyType,
    Room,
    make_guest,
)
from services.hotel.domain import Booking as BookingModel
from services.hotel.domain.guests import MAX_GUESTS
from services.hotel.graphql.queries import parse_booking_id
from services.hotel.graphql.types import (
    BalanceDueResult,
    Booking,
    ChargeKind,
    HotelPolicyType,
    PaymentMethod,
    RoomType,
    Sex,
)
from services.hotel.projections import queries

HOTEL = allow(Role.FRONT_DESK, Role.ADMIN)
ADMIN = allow(Role.ADMIN)

BookingResult = Annotated[
    Booking
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult
    | BalanceDueResult,
    strawberry.union("BookingResult"),
]


@strawberry.type
class BookingList:
    bookings: list[Booking]


BookingListResult = Annotated[
    BookingList
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("BookingListResult"),
]
HotelPolicyResult = Annotated[
    HotelPolicyType
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("HotelPolicyResult"),
]
RoomResult = Annotated[
    RoomType | ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult,
    strawberry.union("RoomResult"),
]


@strawberry.input
class GuestInput:
    surname: str
    given_name: str
    sex: Sex
    birth_date: date
    birth_country_code: str = strawberry.field(description="Alloggiati code, 9 digits.")
    citizenship_code: str
    residence_country_code: str
    birth_municipality_code: str | None = strawberry.field(
        default=None, description="Born in Italy: the municipality's Alloggiati code."
    )
    birth_province: str | None = None
    residence_municipality_code: str | None = None
    residence_province: str | None = None
    document_type: str | None = strawberry.field(
        default=None, description="Leader only, e.g. IDENT, PASOR, PATEN."
    )
    document_number: str | None = None
    document_issue_place_code: str | None = None
    tax_exemption_reason: str | None = strawberry.field(
        default=None, description="Another recorded reason for tourist-tax exemption."
    )


@strawberry.input
class CreateBookingInput:
    idempotency_key: str
    room_number: str
    arrival: date
    departure: date
    guests: list[GuestInput] = strawberry.field(description="The head of family/group first.")
    nightly_rate: Money | None = strawberry.field(
        default=None, description="VAT-inclusive; default: the room's rate."
    )
    deposit: Money | None = None
    deposit_method: PaymentMethod = PaymentMethod.CARD
    party_type: PartyType = PartyType.FAMILY
    business_date: date | None = strawberry.field(
        default=None, description="The day it happened (default: today; never after today)."
    )


@strawberry.input
class CheckInInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class ChangeGuestsInput:
    idempotency_key: str
    booking_id: strawberry.ID
    guests: list[GuestInput] = strawberry.field(
        description="The whole party as it is, the head of family/group first."
    )
    party_type: PartyType | None = strawberry.field(default=None, description="Default: unchanged.")
    business_date: date | None = None


@strawberry.input
class UndoCheckInInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class ChangeStayInput:
    idempotency_key: str
    booking_id: strawberry.ID
    arrival: date | None = strawberry.field(
        default=None, description="Before check-in only. Default: unchanged."
    )
    departure: date | None = strawberry.field(
        default=None, description="Stay longer or leave earlier. Default: unchanged."
    )
    room_number: str | None = strawberry.field(
        default=None, description="Before check-in only. Default: unchanged."
    )
    nightly_rate: Money | None = strawberry.field(
        default=None,
        description="VAT-inclusive. Default: the rate agreed at booking, in any room.",
    )
    business_date: date | None = None


@strawberry.input
class PostChargeInput:
    idempotency_key: str
    booking_id: strawberry.ID
    kind: ChargeKind
    description: str
    amount: Money = strawberry.field(description="VAT-inclusive.")
    business_date: date | None = None


@strawberry.input
class VoidChargeInput:
    idempotency_key: str
    booking_id: strawberry.ID
    charge_number: int = strawberry.field(description="The folio line's chargeNumber.")
    reason: str
    business_date: date | None = None
    refund_method: PaymentMethod | None = strawberry.field(
        default=None,
        description="After check-out only, and then required: how the amount goes back.",
    )


@strawberry.input
class RecordPaymentInput:
    idempotency_key: str
    booking_id: strawberry.ID
    method: PaymentMethod
    amount: Money
    business_date: date | None = None


@strawberry.input
class RecordRefundInput:
    idempotency_key: str
    booking_id: strawberry.ID
    method: PaymentMethod
    amount: Money
    business_date: date | None = None


@strawberry.input
class CheckOutInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class CancelBookingInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class MarkNoShowInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class WaiveNoShowPenaltyInput:
    idempotency_key: str
    booking_id: strawberry.ID
    reason: str = strawberry.field(description="Why it is waived (1-200 characters).")
    business_date: date | None = None


@strawberry.input
class EraseGuestDataInput:
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None = None


@strawberry.input
class MarkGuestsReportedInput:
    idempotency_key: str
    booking_ids: list[strawberry.ID]
    reported_at: datetime = strawberry.field(description="When Alloggiati Web accepted them.")


@strawberry.input
class TouristTaxRateInput:
    stars: int
    amount: Money


@strawberry.input
class VatAccountInput:
    rate: str = strawberry.field(description='Percent, e.g. "12".')
    account: str = strawberry.field(
        description="An open liability account of the ledger's chart (openAccount first)."
    )


# A policy names four VAT rates; a few more entries cover rates kept for old versions.
MAX_VAT_ACCOUNTS = 10


@strawberry.input
class SetHotelPolicyInput:
    idempotency_key: str
    effective_from: date
    hotel_stars: int
    municipality_code: str
    tourist_tax_by_stars: list[TouristTaxRateInput]
    tourist_tax_exempt_under_age: int
    tourist_tax_max_nights: int
    max_stay_nights: int
    cancellation_free_days: int
    no_show_penalty_nights: int
    vat_room: str = strawberry.field(description='Percent, e.g. "10".')
    vat_food: str
    vat_beverage: str
    vat_other: str
    vat_accounts: list[VatAccountInput] | None = strawberry.field(
        default=None,
        description="VAT payable account per rate, added to (or replacing) those of the "
        "version in force; a new VAT rate needs one.",
    )
    booking_horizon_days: int | None = strawberry.field(
        default=None,
        description="How many days ahead a stay may be booked, 1 to 3650 (default: as the "
        "version in force).",
    )


@strawberry.input
class DefineRoomInput:
    idempotency_key: str
    number: str
    room_type: str
    capacity: int
    nightly_rate: Money
    active: bool = True
    effective_from: date


def _balance_due(exc: CoopError) -> BalanceDueResult | None:
    """The hotel's own union member: check-out refused with the amount due."""
    if isinstance(exc, BalanceDue):
        return BalanceDueResult(message=exc.message, amount_due=money(exc.balance_cents))
    return None


async def _booking_result(info: Info, outcome: Outcome[BookingModel]) -> Booking:
    async with info.context.runtime.read_engine.connect() as conn:
        view = await queries.booking_by_id(conn, outcome.result.id)
    if view is None:  # the wait above guarantees the projection has it
        raise NotFound(f"booking {outcome.result.id} is not projected yet")
    return Booking.from_view(view)


def _guests(inputs: list[GuestInput], arrival: date) -> list[Guest]:
    if len(inputs) > MAX_GUESTS:
        raise ValidationError("guests", f"at most {MAX_GUESTS} guests per booking")
    return [
        make_guest(
            index=index,
            is_leader=index == 0,
            arrival=arrival,
            surname=g.surname,
            given_name=g.given_name,
            sex=g.sex.value,
            birth_date=g.birth_date,
            birth_country_code=g.birth_country_code,
            birth_municipality_code=g.birth_municipality_code,
            birth_province=g.birth_province,
            citizenship_code=g.citizenship_code,
            residence_country_code=g.residence_country_code,
            residence_municipality_code=g.residence_municipality_code,
            residence_province=g.residence_province,
            document_type=g.document_type,
            document_number=g.document_number,
            document_issue_place_code=g.document_issue_place_code,
            tax_exemption_reason=g.tax_exemption_reason,
        )
        for index, g in enumerate(inputs)
    ]


def _vat_accounts(given: list[VatAccountInput] | None) -> dict[str, str]:
    accounts: dict[str, str] = {}
    if given is None:
        return accounts
    if len(given) > MAX_VAT_ACCOUNTS:
        raise ValidationError("vatAccounts", f"at most {MAX_VAT_ACCOUNTS} entries")
    seen: set[int] = set()
    for i, entry in enumerate(given):
        bp = parse_percent_bp(entry.rate, field=f"vatAccounts[{i}].rate")
        if bp in seen:
            raise ValidationError(f"vatAccounts[{i}].rate", "names a rate already given")
        seen.add(bp)
        accounts[str(bp)] = entry.account.strip()
    return accounts


def _tourist_tax_rates(given: list[TouristTaxRateInput]) -> dict[str, int]:
    """The rates by category. A category given twice is refused: the second rate
    silently replaced the first (a 0.00 typed under a category already rated stopped
    collecting the tax the municipality is owed)."""
    rates: dict[str, int] = {}
    for i, rate in enumerate(given):
        if str(rate.stars) in rates:
            raise ValidationError(f"touristTaxByStars[{i}].stars", "names a category already given")
        rates[str(rate.stars)] = decimal_to_cents(rate.amount, field=f"touristTaxByStars[{i}]")
    return rates


async def _booking_mutation(
    info: Info, command: Callable[[], Outcome[BookingModel]]
) -> BookingResult:
    return await run_mutation(info, command, lambda o: _booking_result(info, o), _balance_due)


class _BookingStepInput(Protocol):
    idempotency_key: str
    booking_id: strawberry.ID
    business_date: date | None


async def _booking_step(
    info: Info, input: _BookingStepInput, step: Callable[..., Outcome[BookingModel]]
) -> BookingResult:
    """A lifecycle step that needs only the booking and the business day."""
    actor = info.context.actor

    def command() -> Outcome[BookingModel]:
        return step(
            key=input.idempotency_key,
            actor=actor,
            booking_id=parse_booking_id(input.booking_id),
            on=input.business_date,
        )

    return await _booking_mutation(info, command)


@strawberry.type
class HotelMutation:
    @strawberry.mutation(permission_classes=HOTEL, description="Book a room (optional deposit).")
    async def create_booking(self, info: Info, input: CreateBookingInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.create_booking(
                key=input.idempotency_key,
                actor=actor,
                room_number=input.room_number,
                arrival=input.arrival,
                departure=input.departure,
                guests=_guests(input.guests, input.arrival),
                party_type=input.party_type,
                nightly_rate_cents=None
                if input.nightly_rate is None
                else decimal_to_cents(input.nightly_rate, field="nightlyRate"),
                deposit_cents=None
                if input.deposit is None
                else decimal_to_cents(input.deposit, field="deposit"),
                deposit_method=input.deposit_method.value,
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(permission_classes=HOTEL, description="The guests have arrived.")
    async def check_in(self, info: Info, input: CheckInInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.check_in)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Replace a booking's guests (data typed wrong or missing at booking, one "
        "guest more or less): before arrival, or in house as a correction of the check-in's "
        "data. The stay is priced again for them. Not once they were reported to Alloggiati "
        "Web (Conflict).",
    )
    async def change_guests(self, info: Info, input: ChangeGuestsInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            booking_id = parse_booking_id(input.booking_id)
            booking = hotel.get_booking(booking_id)
            # In house the guests came on the check-in day (a late arrival's baby may
            # be born after the booked arrival): their facts are taken on that day.
            arrived_on = booking.checked_in_on or booking.arrival
            return hotel.change_guests(
                key=input.idempotency_key,
                actor=actor,
                booking_id=booking_id,
                guests=_guests(input.guests, arrived_on),
                party_type=input.party_type,
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Take back a check-in made by mistake (the wrong booking): the booking "
        "is confirmed again, priced as before arrival. Only with nothing after it (no "
        "charge, payment or Alloggiati report: Conflict) and on the check-in's "
        "business day or the next (ValidationError on businessDate).",
    )
    async def undo_check_in(self, info: Info, input: UndoCheckInInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.undo_check_in)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Change a stay: before check-in its dates, room and rate; in house its "
        "departure (stay longer, or plan to leave earlier). The stay is priced again and "
        "its nights claimed or freed; another booking holding a night is a Conflict.",
    )
    async def change_stay(self, info: Info, input: ChangeStayInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.change_stay(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                arrival=input.arrival,
                departure=input.departure,
                room_number=input.room_number,
                nightly_rate_cents=None
                if input.nightly_rate is None
                else decimal_to_cents(input.nightly_rate, field="nightlyRate"),
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL, description="Add a charge (VAT-inclusive) to the folio."
    )
    async def post_charge(self, info: Info, input: PostChargeInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.post_charge(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                kind=input.kind.value,
                description=input.description,
                amount_cents=decimal_to_cents(input.amount, field="amount"),
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Void a mistaken charge: a negative folio line and the charge's journal "
        "entry reversed. After check-out it is a credit note: the amount is refunded by "
        "refundMethod in the same step. A charge is voided at most once.",
    )
    async def void_charge(self, info: Info, input: VoidChargeInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.void_charge(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                number=input.charge_number,
                reason=input.reason,
                on=input.business_date,
                refund_method=None if input.refund_method is None else input.refund_method.value,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Take a payment on the folio; before check-in it is a deposit.",
    )
    async def record_payment(self, info: Info, input: RecordPaymentInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.record_payment(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                method=input.method.value,
                amount_cents=decimal_to_cents(input.amount, field="amount"),
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Give money back (e.g. after an early departure); at most what was paid.",
    )
    async def record_refund(self, info: Info, input: RecordRefundInput) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.record_payment(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                method=input.method.value,
                amount_cents=decimal_to_cents(input.amount, field="amount"),
                on=input.business_date,
                refund=True,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Close the folio (refused with BalanceDue unless the balance is zero).",
    )
    async def check_out(self, info: Info, input: CheckOutInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.check_out)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Cancel before arrival: the deposit is refunded or retained per policy.",
    )
    async def cancel_booking(self, info: Info, input: CancelBookingInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.cancel_booking)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="The guest never came: the no-show penalty per policy; the room is freed.",
    )
    async def mark_no_show(self, info: Info, input: MarkNoShowInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.mark_no_show)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Give up what is still due of a no-show penalty (uncollectable, or "
        "waived as a courtesy): a negative folio line settles the folio, and the penalty "
        "revenue and the guest receivable go back by as much. What was paid stays.",
    )
    async def waive_no_show_penalty(
        self, info: Info, input: WaiveNoShowPenaltyInput
    ) -> BookingResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[BookingModel]:
            return hotel.waive_penalty(
                key=input.idempotency_key,
                actor=actor,
                booking_id=parse_booking_id(input.booking_id),
                reason=input.reason,
                on=input.business_date,
            )

        return await _booking_mutation(info, command)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Erase a closed booking's guest identities (names, birth, document): "
        "their key is deleted, so no copy can be read again. Age on arrival, residence "
        "and the accounts stay. After check-out, cancellation or no-show, once the "
        "guests were reported to Alloggiati Web, and while nothing is owed (a no-show's "
        "penalty: BalanceDue).",
    )
    async def erase_guest_data(self, info: Info, input: EraseGuestDataInput) -> BookingResult:
        return await _booking_step(info, input, info.context.runtime.hotel.erase_guest_data)

    @strawberry.mutation(
        permission_classes=HOTEL,
        description="Record that Alloggiati Web accepted these bookings' guest records.",
    )
    async def mark_guests_reported(
        self, info: Info, input: MarkGuestsReportedInput
    ) -> BookingListResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[list[BookingModel]]:
            return hotel.mark_reported(
                key=input.idempotency_key,
                actor=actor,
                booking_ids=[
                    parse_booking_id(b, f"bookingIds[{i}]") for i, b in enumerate(input.booking_ids)
                ],
                reported_at=input.reported_at,
            )

        async def present(outcome: Outcome[list[BookingModel]]) -> BookingList:
            async with info.context.runtime.read_engine.connect() as conn:
                views = [await queries.booking_by_id(conn, b.id) for b in outcome.result]
            return BookingList(bookings=[Booking.from_view(v) for v in views if v is not None])

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="A new version of the hotel policy from its effective date.",
    )
    async def set_hotel_policy(self, info: Info, input: SetHotelPolicyInput) -> HotelPolicyResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[HotelPolicy]:
            rates = _tourist_tax_rates(input.tourist_tax_by_stars)
            sent = HotelPolicy(
                effective_from=input.effective_from,
                hotel_stars=input.hotel_stars,
                municipality_code=input.municipality_code,
                tourist_tax_cents_by_stars=rates,
                tourist_tax_exempt_under_age=input.tourist_tax_exempt_under_age,
                tourist_tax_max_nights=input.tourist_tax_max_nights,
                max_stay_nights=input.max_stay_nights,
                cancellation_free_days=input.cancellation_free_days,
                no_show_penalty_nights=input.no_show_penalty_nights,
                vat_bp_by_kind={
                    "ROOM": parse_percent_bp(input.vat_room, field="vatRoom"),
                    "FOOD": parse_percent_bp(input.vat_food, field="vatFood"),
                    "BEVERAGE": parse_percent_bp(input.vat_beverage, field="vatBeverage"),
                    "OTHER": parse_percent_bp(input.vat_other, field="vatOther"),
                },
                # Only the VAT accounts the admin names for new rates: the rest, and
                # the ledger accounts, follow the version in force when it runs.
                vat_account_by_bp=_vat_accounts(input.vat_accounts),
            )
            change = HotelPolicyChange(sent, booking_horizon_days=input.booking_horizon_days)
            return hotel.set_policy(key=input.idempotency_key, actor=actor, change=change)

        async def present(outcome: Outcome[HotelPolicy]) -> HotelPolicyType:
            return HotelPolicyType.from_policy(outcome.result)

        return await run_mutation(info, command, present)

    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Add or change a room from its effective date (active: false retires it).",
    )
    async def define_room(self, info: Info, input: DefineRoomInput) -> RoomResult:
        hotel, actor = info.context.runtime.hotel, info.context.actor

        def command() -> Outcome[Room]:
            room = Room(
                number=input.number,
                room_type=input.room_type.strip(),
                capacity=input.capacity,
                nightly_rate_cents=decimal_to_cents(input.nightly_rate, field="nightlyRate"),
                active=input.active,
                effective_from=input.effective_from,
            )
            return hotel.define_room(key=input.idempotency_key, actor=actor, room=room)

        async def present(outcome: Outcome[Room]) -> RoomType:
            return RoomType.from_room(outcome.result)

        return await run_mutation(info, command, present)

"""GraphQL types of the hotel."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import strawberry

from services.common.graphql import Money, PageInfo, money
from services.hotel.domain import BookingStatus, HotelPolicy, PartyType, Room
from services.hotel.domain.alloggiati import record_type
from services.hotel.domain.config import percent
from services.hotel.domain.folio import ROUNDING_RULE, TOURIST_TAX, vat_summary
from services.hotel.projections.queries import BookingView

strawberry.enum(BookingStatus, name="BookingStatus")
strawberry.enum(PartyType, name="PartyType")


@strawberry.enum
class ChargeKind(StrEnum):
    ROOM = "ROOM"
    FOOD = "FOOD"
    BEVERAGE = "BEVERAGE"
    OTHER = "OTHER"


@strawberry.enum
class PaymentMethod(StrEnum):
    CASH = "CASH"
    CARD = "CARD"
    TRANSFER = "TRANSFER"


@strawberry.enum
class Sex(StrEnum):
    M = "M"
    F = "F"


@strawberry.type
class FolioLine:
    kind: str = strawberry.field(
        description="ROOM, FOOD, BEVERAGE, OTHER, TOURIST_TAX, RETAINED_DEPOSIT or NO_SHOW_PENALTY."
    )
    description: str
    date: date
    amount: Money = strawberry.field(description="VAT-inclusive.")
    vat_rate: str | None = strawberry.field(description='Percent, e.g. "10"; null: outside VAT.')
    net: Money
    vat: Money
    charge_number: int | None = strawberry.field(
        description="An extra charge's number in the folio (what voidCharge takes); null "
        "for the stay's room nights and tourist tax."
    )


@strawberry.type
class VatSummaryLine:
    rate: str
    net: Money
    vat: Money
    gross: Money


@strawberry.type
class FolioPayment:
    kind: str = strawberry.field(description="DEPOSIT, PAYMENT, REFUND or DEPOSIT_REFUND.")
    method: PaymentMethod
    amount: Money = strawberry.field(description="Positive; `kind` gives the direction.")
    signed_amount: Money = strawberry.field(
        description="Money in positive, money given back (REFUND, DEPOSIT_REFUND) negative: "
        "the payments' signed amounts add up to `paid`."
    )
    date: date


@strawberry.type
class Folio:
    lines: list[FolioLine]
    tourist_tax: Money
    total: Money
    paid: Money = strawberry.field(description="Deposits and payments minus refunds.")
    balance: Money = strawberry.field(description="Total minus paid; positive: due.")
    vat_summary: list[VatSummaryLine]
    payments: list[FolioPayment]
    rounding_rule: str


@strawberry.type
class GuestRecord:
    position: int = strawberry.field(description="0 is the head of family or group leader.")
    record_type: str = strawberry.field(description="Alloggiati Web type: 16 to 20.")
    surname: str
    given_name: str
    sex: Sex
    birth_date: date
    citizenship_code: str
    residence: str = strawberry.field(description="ISTAT key: country code or IT-<province>.")
    tax_exempt_reason: str | None


@strawberry.type
class Booking:
    id: strawberry.ID
    room_number: str
    arrival: date
    departure: date
    nights: int
    status: BookingStatus
    party_type: PartyType
    guest_count: int
    nightly_rate: Money
    deposit: Money
    booked_on: date
    checked_in_on: date | None
    checked_out_on: date | None
    closed_on: date | None
    guests_reported_at: datetime | None
    folio: Folio
    guest_data_erased: bool
    guests: list[GuestRecord] = strawberry.field(
        description="Empty once the guests' data was erased (guestDataErased)."
    )

    @classmethod
    def from_view(cls, view: BookingView) -> Booking:
        return cls(
            id=strawberry.ID(str(view.booking_id)),
            room_number=view.room_number,
            arrival=view.arrival,
            departure=view.departure,
            nights=(view.departure - view.arrival).days,
            status=BookingStatus(view.status),
            party_type=PartyType(view.party_type),
            guest_count=view.guest_count,
            nightly_rate=money(view.nightly_rate_cents),
            deposit=money(view.deposit_cents),
            booked_on=view.booked_on,
            checked_in_on=view.checked_in_on,
            checked_out_on=view.checked_out_on,
            closed_on=view.closed_on,
            guests_reported_at=view.reported_at,
            guest_data_erased=view.guest_data_erased,
            folio=Folio(
                lines=[
                    FolioLine(
                        kind=line.kind,
                        description=line.description,
                        date=line.service_date,
                        amount=money(line.amount_cents),
                        vat_rate=None if line.vat_rate_bp is None else percent(line.vat_rate_bp),
                        net=money(line.net_cents),
                        vat=money(line.vat_cents),
                        charge_number=number,
                    )
                    for line, number in zip(view.lines, view.charge_numbers, strict=True)
                ],
                tourist_tax=money(
                    sum(line.amount_cents for line in view.lines if line.kind == TOURIST_TAX)
                ),
                total=money(view.total_cents),
                paid=money(view.paid_cents),
                balance=money(view.balance_cents),
                vat_summary=[
                    VatSummaryLine(
                        rate=percent(s.rate_bp),
                        net=money(s.net_cents),
                        vat=money(s.vat_cents),
                        gross=money(s.gross_cents),
                    )
                    for s in vat_summary(view.lines)
                ],
                payments=[
                    FolioPayment(
                        kind=p.kind,
                        method=PaymentMethod(p.method),
                        amount=money(p.amount_cents),
                        signed_amount=money(p.signed_cents),
                        date=p.on,
                    )
                    for p in view.payments
                ],
                rounding_rule=ROUNDING_RULE,
            ),
            guests=[
                GuestRecord(
                    position=i,
                    record_type=record_type(view.party_type, view.guest_count, i),
                    surname=g.surname,
                    given_name=g.given_name,
                    sex=Sex(g.sex),
                    birth_date=g.birth_date,
                    citizenship_code=g.citizenship_code,
                    residence=g.residence,
                    tax_exempt_reason=g.tax_exemption_reason,
                )
                for i, g in enumerate(view.guests)
            ],
        )


@strawberry.type
class BookingConnection:
    nodes: list[Booking]
    page_info: PageInfo


@strawberry.type
class NightOccupancy:
    night: date
    rooms_sold: int
    rooms_available: int = strawberry.field(description="Rooms in service that night.")
    guests: int
    occupancy_percent: str = strawberry.field(description="Rooms sold / rooms, 1 decimal.")


@strawberry.type
class AlloggiatiFile:
    date: date
    booking_ids: list[strawberry.ID] = strawberry.field(
        description="The bookings whose guests the file holds: markGuestsReported them "
        "once the portal accepts it."
    )
    count: int
    records: list[str] = strawberry.field(description="168-character lines, leaders first.")
    content: str = strawberry.field(
        description="The records joined by CRLF, none after the last (as the portal reads "
        "its file). As text: to save it, use contentLatin1Base64."
    )
    content_latin1_base64: str = strawberry.field(
        description="The file to save and upload, as its bytes in ISO-8859-1 (Latin-1), "
        "base64: 168 bytes a record. `content` saved as UTF-8 would make each accented "
        "letter two bytes and shift every field after it."
    )


@strawberry.type
class ErasableBooking:
    booking_id: strawberry.ID
    status: BookingStatus
    ended_on: date = strawberry.field(description="Check-out, cancellation or no-show day.")


@strawberry.type
class ErasableBookingConnection:
    nodes: list[ErasableBooking]
    page_info: PageInfo


@strawberry.type
class PendingReport:
    booking_id: strawberry.ID
    room_number: str
    arrival: date = strawberry.field(description="The booked arrival.")
    nights: int = strawberry.field(
        description="Nights of stay from the check-in day, as the Alloggiati record counts."
    )
    guest_count: int
    checked_in_at: datetime
    deadline: datetime = strawberry.field(
        description="24 h after check-in, 6 h for a stay of one night."
    )
    overdue: bool


@strawberry.type
class PendingReportConnection:
    nodes: list[PendingReport]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Every booking due by the horizon, on this page or a later one."
    )


@strawberry.type
class ResidenceLine:
    residence: str = strawberry.field(description="Country code, or IT-<province>.")
    arrivals: int
    nights: int


@strawberry.type
class IstatMonth:
    month: str
    arrivals: int
    nights: int
    by_residence: list[ResidenceLine]


@strawberry.type
class TouristTaxMonth:
    month: str
    stays: int
    amount: Money
    taxed_guest_nights: int
    exempt_age: int
    exempt_resident: int
    exempt_other: int
    exempt_cap: int


@strawberry.type
class TouristTaxReport:
    from_: date = strawberry.field(name="from")
    to: date
    amount: Money = strawberry.field(description="Collected on check-outs in the period.")
    stays: int
    taxed_guest_nights: int
    exempt_guest_nights: int
    by_month: list[TouristTaxMonth]


@strawberry.type
class VatAccount:
    rate: str = strawberry.field(description='Percent, e.g. "10".')
    account: str = strawberry.field(description="The ledger's VAT payable account for it.")


@strawberry.type(name="HotelPolicy")
class HotelPolicyType:
    effective_from: date
    hotel_stars: int
    municipality_code: str
    tourist_tax_per_night: Money = strawberry.field(description="For the hotel's category.")
    tourist_tax_exempt_under_age: int
    tourist_tax_max_nights: int
    max_stay_nights: int
    cancellation_free_days: int
    no_show_penalty_nights: int
    vat_room: str
    vat_food: str
    vat_beverage: str
    vat_other: str
    vat_accounts: list[VatAccount] = strawberry.field(
        description="Where the VAT of each rate is posted, by rate."
    )
    booking_horizon_days: int = strawberry.field(
        description="How many days ahead of the day it is made a stay may be booked."
    )

    @classmethod
    def from_policy(cls, policy: HotelPolicy) -> HotelPolicyType:
        return cls(
            effective_from=policy.effective_from,
            hotel_stars=policy.hotel_stars,
            municipality_code=policy.municipality_code,
            tourist_tax_per_night=money(policy.tourist_tax_cents),
            tourist_tax_exempt_under_age=policy.tourist_tax_exempt_under_age,
            tourist_tax_max_nights=policy.tourist_tax_max_nights,
            max_stay_nights=policy.max_stay_nights,
            cancellation_free_days=policy.cancellation_free_days,
            no_show_penalty_nights=policy.no_show_penalty_nights,
            vat_room=percent(policy.vat_bp("ROOM")),
            vat_food=percent(policy.vat_bp("FOOD")),
            vat_beverage=percent(policy.vat_bp("BEVERAGE")),
            vat_other=percent(policy.vat_bp("OTHER")),
            vat_accounts=[
                VatAccount(rate=percent(int(bp)), account=code)
                for bp, code in sorted(
                    policy.vat_account_by_bp.items(), key=lambda item: int(item[0])
                )
            ],
            booking_horizon_days=policy.booking_horizon_days,
        )


@strawberry.type(name="Room")
class RoomType:
    number: str
    room_type: str
    capacity: int
    nightly_rate: Money
    active: bool
    effective_from: date

    @classmethod
    def from_room(cls, room: Room) -> RoomType:
        return cls(
            number=room.number,
            room_type=room.room_type,
            capacity=room.capacity,
            nightly_rate=money(room.nightly_rate_cents),
            active=room.active,
            effective_from=room.effective_from,
        )


@strawberry.type(name="HotelConfiguration")
class HotelConfigurationView:
    on: date
    policy: HotelPolicyType
    rooms: list[RoomType]
    policies: list[HotelPolicyType] = strawberry.field(description="Every version, by date.")


@strawberry.type(
    name="BalanceDue",
    description="Check-out or erasure of the guests' data refused: the balance is not zero.",
)
class BalanceDueResult:
    message: str
    amount_due: Money = strawberry.field(description="Positive: due; negative: to refund.")

"""Hotel configuration: rooms and policies, each with an effective date.

Rates (VAT, tourist tax), exemptions, the cap on taxed nights, the longest stay and
the cancellation and no-show rules change by decision of the municipality, the State
or the cooperative. They are events on one long-lived aggregate, never constants in
code: a booking is priced with the versions in force on each night it covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import NotFound, ValidationError

CONFIG_ID: UUID = uuid5(NAMESPACE_URL, "urn:coop:hotel:configuration")

CHARGE_KINDS = ("ROOM", "FOOD", "BEVERAGE", "OTHER")
PAYMENT_METHODS = ("CASH", "CARD", "TRANSFER")
_ROOM_NUMBER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\-]{0,9}$")
_ACCOUNT_CODE = re.compile(r"^[0-9A-Z][0-9A-Z.\-]{0,15}$")
_CODE9 = re.compile(r"^[0-9]{9}$")
MAX_ROOM_TYPE_LENGTH = 40
# A policy must say where each kind of money goes; these are the roles it maps.
ACCOUNT_ROLES = (
    "ROOM",  # room revenue
    "FOOD",
    "BEVERAGE",
    "OTHER",
    "PENALTY",  # retained deposits and no-show penalties (outside the VAT base)
    "CASH",
    "CARD",
    "TRANSFER",
    "RECEIVABLE",  # the guests' folios
    "DEPOSITS",  # deposits held until applied, refunded or retained
    "TOURIST_TAX",  # owed to the municipality, never revenue
)


def percent(rate_bp: int) -> str:
    """1000 basis points -> "10"; 550 -> "5.5"."""
    value = (Decimal(rate_bp) / 100).normalize()
    return f"{value:f}"


@dataclass(frozen=True)
class HotelPolicy:
    """Everything about money and stays that may change on a given date."""

    effective_from: date
    hotel_stars: int
    # The hotel's municipality (Alloggiati code): its residents are exempt from the tax.
    municipality_code: str
    # Tourist tax per guest per night, by hotel category (stars as text, JSON keys).
    tourist_tax_cents_by_stars: dict[str, int]
    tourist_tax_exempt_under_age: int
    tourist_tax_max_nights: int  # consecutive nights taxed per stay; later ones are free
    max_stay_nights: int
    cancellation_free_days: int  # cancel at least this many days before arrival: refund
    no_show_penalty_nights: int  # nights charged for a no-show, taken from the deposit
    vat_bp_by_kind: dict[str, int]  # VAT in basis points per charge kind (1000 = 10%)
    # VAT payable account per rate; the admin adds one for a new rate (vatAccounts).
    vat_account_by_bp: dict[str, str]
    accounts: dict[str, str] = field(default_factory=dict)  # ACCOUNT_ROLES -> code
    # How far ahead a stay may be booked: an arrival in 2062 is a mistyped 2026.
    booking_horizon_days: int = 730

    @property
    def tourist_tax_cents(self) -> int:
        return self.tourist_tax_cents_by_stars.get(str(self.hotel_stars), 0)

    def vat_bp(self, kind: str) -> int:
        return self.vat_bp_by_kind[kind]

    def vat_account(self, rate_bp: int) -> str:
        return self.vat_account_by_bp[str(rate_bp)]

    def as_state(self) -> dict[str, Any]:
        return {
            "effective_from": self.effective_from.isoformat(),
            "hotel_stars": self.hotel_stars,
            "municipality_code": self.municipality_code,
            "tourist_tax_cents_by_stars": dict(self.tourist_tax_cents_by_stars),
            "tourist_tax_exempt_under_age": self.tourist_tax_exempt_under_age,
            "tourist_tax_max_nights": self.tourist_tax_max_nights,
            "max_stay_nights": self.max_stay_nights,
            "cancellation_free_days": self.cancellation_free_days,
            "no_show_penalty_nights": self.no_show_penalty_nights,
            "vat_bp_by_kind": dict(self.vat_bp_by_kind),
            "vat_account_by_bp": dict(self.vat_account_by_bp),
            "accounts": dict(self.accounts),
            "booking_horizon_days": self.booking_horizon_days,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HotelPolicy:
        return cls(
            effective_from=date.fromisoformat(state["effective_from"]),
            hotel_stars=int(state["hotel_stars"]),
            municipality_code=str(state["municipality_code"]),
            tourist_tax_cents_by_stars={
                k: int(v) for k, v in state["tourist_tax_cents_by_stars"].items()
            },
            tourist_tax_exempt_under_age=int(state["tourist_tax_exempt_under_age"]),
            tourist_tax_max_nights=int(state["tourist_tax_max_nights"]),
            max_stay_nights=int(state["max_stay_nights"]),
            cancellation_free_days=int(state["cancellation_free_days"]),
            no_show_penalty_nights=int(state["no_show_penalty_nights"]),
            vat_bp_by_kind={k: int(v) for k, v in state["vat_bp_by_kind"].items()},
            vat_account_by_bp={k: str(v) for k, v in state["vat_account_by_bp"].items()},
            accounts={k: str(v) for k, v in state["accounts"].items()},
            # Versions recorded before the horizon existed had none: two years.
            booking_horizon_days=int(state.get("booking_horizon_days", 730)),
        )

    def check(self) -> None:
        """Refuse a policy the pricing could not apply; fields as the API names them."""
        if not 1 <= self.hotel_stars <= 5:
            raise ValidationError("hotelStars", "must be between 1 and 5")
        if not _CODE9.fullmatch(self.municipality_code):
            raise ValidationError("municipalityCode", "must be a 9-digit Alloggiati code")
        for stars, cents in self.tourist_tax_cents_by_stars.items():
            if stars not in ("1", "2", "3", "4", "5"):
                raise ValidationError("touristTaxByStars", "stars are 1 to 5")
            if type(cents) is not int or not 0 <= cents <= 100_00:
                raise ValidationError(
                    "touristTaxByStars", "a rate is between 0.00 and 100.00 EUR per night"
                )
        if str(self.hotel_stars) not in self.tourist_tax_cents_by_stars:
            # Without a rate for its own category the hotel would charge no tax at all
            # (a re-classification, a typo in hotelStars): the operator is liable for it.
            raise ValidationError(
                "touristTaxByStars",
                f"no rate for the hotel's category ({self.hotel_stars} stars): give one "
                '(e.g. {stars: %d, amount: "1.50"}; "0.00" if the municipality charges '
                "none)" % self.hotel_stars,
            )
        _check_range("touristTaxExemptUnderAge", self.tourist_tax_exempt_under_age, 0, 30)
        _check_range("touristTaxMaxNights", self.tourist_tax_max_nights, 1, 365)
        _check_range("maxStayNights", self.max_stay_nights, 1, 365)
        _check_range("bookingHorizonDays", self.booking_horizon_days, 1, 3650)
        _check_range("cancellationFreeDays", self.cancellation_free_days, 0, 365)
        _check_range("noShowPenaltyNights", self.no_show_penalty_nights, 0, 30)
        for kind in CHARGE_KINDS:
            rate = self.vat_bp_by_kind.get(kind)
            if rate is None or not 0 <= rate <= 10_000:
                raise ValidationError("vatRates", f"{kind} needs a rate between 0% and 100%")
            if not _ACCOUNT_CODE.fullmatch(self.vat_account_by_bp.get(str(rate), "")):
                raise ValidationError(
                    "vatAccounts",
                    f"no VAT account for the {kind} rate of {percent(rate)}%: give one in "
                    f'vatAccounts (e.g. {{rate: "{percent(rate)}", account: "<code>"}}), '
                    "an open liability account of the ledger's chart",
                )
        for rate_text, code in self.vat_account_by_bp.items():
            if not rate_text.isdigit() or not 0 <= int(rate_text) <= 10_000:
                raise ValidationError("vatAccounts", "a rate is between 0% and 100%")
            if not _ACCOUNT_CODE.fullmatch(code):
                raise ValidationError("vatAccounts", "not an account code")
        for role in ACCOUNT_ROLES:
            if not _ACCOUNT_CODE.fullmatch(self.accounts.get(role, "")):
                raise ValidationError("accounts", f"no account for {role}")


@dataclass(frozen=True)
class HotelPolicyChange:
    """setHotelPolicy as the admin sent it. What it leaves out follows the version in
    force on its date when it runs: the ledger accounts, the VAT account of each rate it
    does not name, the booking horizon. A retry is recognised by this request, not by
    the completed version, which another change of the version in force would alter."""

    # The accounts it names only (`vat_account_by_bp`); `accounts` is left empty.
    sent: HotelPolicy
    booking_horizon_days: int | None  # None: the horizon in force

    def as_request(self) -> dict[str, Any]:
        return {**self.sent.as_state(), "booking_horizon_days": self.booking_horizon_days}

    def completed_from(self, current: HotelPolicy) -> HotelPolicy:
        return replace(
            self.sent,
            vat_account_by_bp={**current.vat_account_by_bp, **self.sent.vat_account_by_bp},
            accounts=dict(current.accounts),
            booking_horizon_days=(
                current.booking_horizon_days
                if self.booking_horizon_days is None
                else self.booking_horizon_days
            ),
        )


def _check_range(field_name: str, value: int, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ValidationError(field_name, f"must be between {low} and {high}")


@dataclass(frozen=True)
class Room:
    number: str
    room_type: str
    capacity: int
    # The rack rate: VAT-inclusive as Italian hotels quote it; the tourist tax is extra.
    nightly_rate_cents: int
    active: bool
    effective_from: date

    def as_state(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "room_type": self.room_type,
            "capacity": self.capacity,
            "nightly_rate_cents": self.nightly_rate_cents,
            "active": self.active,
            "effective_from": self.effective_from.isoformat(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Room:
        return cls(
            number=str(state["number"]),
            room_type=str(state["room_type"]),
            capacity=int(state["capacity"]),
            nightly_rate_cents=int(state["nightly_rate_cents"]),
            active=bool(state["active"]),
            effective_from=date.fromisoformat(state["effective_from"]),
        )

    def check(self, *, ceiling_cents: int) -> None:
        if not _ROOM_NUMBER.fullmatch(self.number):
            raise ValidationError("number", "1 to 10 letters, digits or '-'")
        if not self.room_type.strip() or len(self.room_type) > MAX_ROOM_TYPE_LENGTH:
            raise ValidationError("roomType", f"1 to {MAX_ROOM_TYPE_LENGTH} characters")
        _check_range("capacity", self.capacity, 1, 20)
        if not 0 < self.nightly_rate_cents <= ceiling_cents:
            raise ValidationError("nightlyRate", "must be greater than zero and within the ceiling")


DEFAULT_ACCOUNTS: dict[str, str] = {
    "ROOM": "4000",
    "FOOD": "4010",
    "BEVERAGE": "4010",
    "OTHER": "4020",
    "PENALTY": "4030",
    "CASH": "1000",
    "CARD": "1020",
    "TRANSFER": "1010",
    "RECEIVABLE": "1100",
    "DEPOSITS": "2200",
    "TOURIST_TAX": "2100",
}
OPENING_DAY = date(2013, 1, 1)  # Hotel Giardino opened in 2013

# Seeded once on an empty store (see HotelApplication.ensure_configuration); from then on
# the admin changes them through setHotelPolicy / defineRoom, with an effective date.
_BASE_POLICY = HotelPolicy(
    effective_from=OPENING_DAY,
    hotel_stars=3,
    municipality_code="403017028",  # Breno (BS), Alloggiati code
    tourist_tax_cents_by_stars={"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
    tourist_tax_exempt_under_age=14,
    tourist_tax_max_nights=5,
    max_stay_nights=30,
    cancellation_free_days=7,
    no_show_penalty_nights=1,
    vat_bp_by_kind={"ROOM": 1000, "FOOD": 1000, "BEVERAGE": 1000, "OTHER": 2200},
    vat_account_by_bp={"1000": "2010", "2200": "2000", "500": "2020"},
    accounts=dict(DEFAULT_ACCOUNTS),
)
DEFAULT_POLICIES: tuple[HotelPolicy, ...] = (
    _BASE_POLICY,
    # Breno: EUR 1.00 per night in 1-3 star hotels, 1.50 4-star, 2.00 5-star, from 1 June 2025.
    replace(
        _BASE_POLICY,
        effective_from=date(2025, 6, 1),
        tourist_tax_cents_by_stars={"1": 100, "2": 100, "3": 100, "4": 150, "5": 200},
    ),
)


def _default_rooms() -> tuple[Room, ...]:
    # 20 rooms on two floors: singles, doubles, triples and family rooms.
    layout = (
        ("SINGLE", 1, 6500),
        ("DOUBLE", 2, 7500),
        ("DOUBLE", 2, 7500),
        ("DOUBLE", 2, 7500),
        ("TRIPLE", 3, 9000),
        ("DOUBLE", 2, 7500),
        ("DOUBLE", 2, 7500),
        ("TRIPLE", 3, 9000),
        ("FAMILY", 4, 11000),
        ("SINGLE", 1, 6500),
    )
    return tuple(
        Room(f"{floor}{index + 1:02d}", kind, capacity, rate, True, OPENING_DAY)
        for floor in (1, 2)
        for index, (kind, capacity, rate) in enumerate(layout)
    )


DEFAULT_ROOMS = _default_rooms()


class HotelConfiguration(Aggregate):
    class Created(Aggregate.Created):
        pass

    class PolicySet(Aggregate.Event):
        policy: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, HotelConfiguration)
            aggregate._add_policy(HotelPolicy.from_state(self.policy))

    class RoomDefined(Aggregate.Event):
        room: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, HotelConfiguration)
            room = Room.from_state(self.room)
            versions = [
                v
                for v in aggregate.rooms.get(room.number, [])
                if v.effective_from != room.effective_from
            ]
            versions.append(room)
            versions.sort(key=lambda r: r.effective_from)
            aggregate.rooms[room.number] = versions

    def __init__(self) -> None:
        self.policies: list[HotelPolicy] = []  # by effective date
        self.rooms: dict[str, list[Room]] = {}  # number -> versions by effective date

    def _add_policy(self, policy: HotelPolicy) -> None:
        kept = [p for p in self.policies if p.effective_from != policy.effective_from]
        kept.append(policy)
        kept.sort(key=lambda p: p.effective_from)
        self.policies = kept

    @classmethod
    def start(cls) -> HotelConfiguration:
        return cls._create(cls.Created, id=CONFIG_ID)

    def set_policy(self, policy: HotelPolicy) -> None:
        """A new version from its effective date on (same date: replaces that version)."""
        policy.check()
        self.trigger_event(self.PolicySet, policy=policy.as_state())

    def define_room(self, room: Room, *, ceiling_cents: int) -> None:
        room.check(ceiling_cents=ceiling_cents)
        self.trigger_event(self.RoomDefined, room=room.as_state())

    def policy_on(self, day: date) -> HotelPolicy:
        current: HotelPolicy | None = None
        for policy in self.policies:
            if policy.effective_from <= day:
                current = policy
        if current is None:
            raise NotFound(f"no hotel policy is in force on {day.isoformat()}")
        return current

    def policies_from(self, day: date) -> list[HotelPolicy]:
        """The version in force on `day` (if any) and those that come into force later."""
        return [
            p
            for i, p in enumerate(self.policies)
            if i + 1 == len(self.policies) or self.policies[i + 1].effective_from > day
        ]

    def room_on(self, number: str, day: date, *, field_name: str = "roomNumber") -> Room:
        current: Room | None = None
        for room in self.rooms.get(number, []):
            if room.effective_from <= day:
                current = room
        if current is None or not current.active:
            raise ValidationError(field_name, "no such room in service on that day")
        return current

    def rooms_on(self, day: date) -> list[Room]:
        out = []
        for number in sorted(self.rooms):
            try:
                out.append(self.room_on(number, day))
            except ValidationError:
                continue
        return out

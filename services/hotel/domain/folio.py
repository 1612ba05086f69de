"""The folio: a stay's charges and payments, and how a stay is priced.

Rounding (stated on every folio): prices are VAT-inclusive; each line is split on its
own into net and VAT, net = gross / (1 + rate) rounded half up to the cent, VAT =
gross - net. Totals per rate are sums of the lines, so the folio, the VAT summary and
the ledger agree to the cent. The tourist tax is outside VAT, on its own line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Self

from services.common.money import format_cents, split_vat_included
from services.hotel.domain.config import HotelConfiguration
from services.hotel.domain.guests import GuestFacts

ROUNDING_RULE = (
    "Prices include VAT. Each line is split on its own: net = gross / (1 + rate), "
    "rounded half up to the cent; VAT = gross - net. The tourist tax is outside VAT."
)

TOURIST_TAX = "TOURIST_TAX"
RETAINED_DEPOSIT = "RETAINED_DEPOSIT"
NO_SHOW_PENALTY = "NO_SHOW_PENALTY"

# Why a guest-night was not taxed (the tourist-tax return reports each).
EXEMPT_AGE = "age"
EXEMPT_RESIDENT = "resident"
EXEMPT_OTHER = "other"
EXEMPT_CAP = "cap"
EXEMPTION_REASONS = (EXEMPT_AGE, EXEMPT_RESIDENT, EXEMPT_OTHER, EXEMPT_CAP)


@dataclass(frozen=True)
class FolioLine:
    # Immutable values: the repository cache's defensive copy of a booking need not
    # rebuild them (measured: most of a cached booking's copy time).
    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    kind: str  # ROOM FOOD BEVERAGE OTHER TOURIST_TAX RETAINED_DEPOSIT NO_SHOW_PENALTY
    description: str
    service_date: date
    amount_cents: int  # VAT-inclusive
    vat_rate_bp: int | None  # None: outside VAT
    net_cents: int
    vat_cents: int

    @classmethod
    def priced(
        cls, kind: str, description: str, service_date: date, amount_cents: int, rate_bp: int
    ) -> FolioLine:
        net, vat = split_vat_included(amount_cents, rate_bp)
        return cls(kind, description, service_date, amount_cents, rate_bp, net, vat)

    @classmethod
    def outside_vat(
        cls, kind: str, description: str, service_date: date, amount_cents: int
    ) -> FolioLine:
        return cls(kind, description, service_date, amount_cents, None, amount_cents, 0)

    def as_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "date": self.service_date.isoformat(),
            "cents": self.amount_cents,
            "vat_bp": self.vat_rate_bp,
            "net": self.net_cents,
            "vat": self.vat_cents,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FolioLine:
        return cls(
            kind=state["kind"],
            description=state["description"],
            service_date=date.fromisoformat(state["date"]),
            amount_cents=int(state["cents"]),
            vat_rate_bp=None if state["vat_bp"] is None else int(state["vat_bp"]),
            net_cents=int(state["net"]),
            vat_cents=int(state["vat"]),
        )


# Payment kinds: money in (+) and money back (-).
DEPOSIT = "DEPOSIT"
PAYMENT = "PAYMENT"
REFUND = "REFUND"
DEPOSIT_REFUND = "DEPOSIT_REFUND"
_SIGN = {DEPOSIT: 1, PAYMENT: 1, REFUND: -1, DEPOSIT_REFUND: -1}


@dataclass(frozen=True)
class Payment:
    # Immutable values: the repository cache's defensive copy of a booking need not
    # rebuild them (measured: most of a cached booking's copy time).
    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    kind: str
    method: str  # CASH CARD TRANSFER
    amount_cents: int  # positive; the kind gives the direction
    on: date

    @property
    def signed_cents(self) -> int:
        return _SIGN[self.kind] * self.amount_cents

    def as_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "cents": self.amount_cents,
            "on": self.on.isoformat(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Payment:
        return cls(
            state["kind"], state["method"], int(state["cents"]), date.fromisoformat(state["on"])
        )


@dataclass(frozen=True)
class TouristTax:
    """The tax of one stay, with the guest-nights behind it (for the municipality)."""

    amount_cents: int = 0
    taxed_guest_nights: int = 0
    exempt_guest_nights: dict[str, int] = field(default_factory=dict)

    def as_state(self) -> dict[str, Any]:
        return {
            "cents": self.amount_cents,
            "taxed": self.taxed_guest_nights,
            "exempt": dict(self.exempt_guest_nights),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TouristTax:
        return cls(
            int(state["cents"]),
            int(state["taxed"]),
            {k: int(v) for k, v in state["exempt"].items()},
        )


def nights_between(first: date, end: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((end - first).days)]


def exemption(guest: GuestFacts, *, under_age: int, municipality: str) -> str | None:
    if guest.age_on_arrival < under_age:
        return EXEMPT_AGE
    if guest.residence_municipality_code == municipality:
        return EXEMPT_RESIDENT
    if guest.has_exemption_reason:
        return EXEMPT_OTHER
    return None


def price_stay(
    config: HotelConfiguration,
    *,
    room_number: str,
    arrival: date,
    end: date,
    nightly_rate_cents: int,
    guests: Sequence[GuestFacts],
    present_from: date | None = None,
) -> tuple[list[FolioLine], TouristTax]:
    """Room lines (one per night, VAT in force that night) and the tourist tax.

    The tax is per guest per night stayed, at the rate in force that night for the
    hotel's category; taxable nights (a rate in force, the guests there) beyond the
    policy's cap of consecutive taxed nights, children under the age limit
    (age on arrival), residents of the municipality and guests with a recorded reason
    are exempt. One tax line per rate, outside VAT. `present_from`: the check-in day
    of a late arrival; the nights before it are held (the room is paid) but nobody
    stayed them, so they are neither taxed nor counted as exempt.
    """
    lines: list[FolioLine] = []
    taxed_by_rate: Counter[int] = Counter()
    first_night_at_rate: dict[int, date] = {}
    exempt: Counter[str] = Counter()
    first_present = arrival if present_from is None else max(arrival, present_from)
    taxable_nights = 0  # nights so far with a rate in force and the guests there
    for night in nights_between(arrival, end):
        policy = config.policy_on(night)
        lines.append(
            FolioLine.priced(
                "ROOM",
                f"Room {room_number}, night of {night.isoformat()}",
                night,
                nightly_rate_cents,
                policy.vat_bp("ROOM"),
            )
        )
        rate = policy.tourist_tax_cents
        if rate == 0 or night < first_present:
            continue  # no tax in force, or nobody there: nothing to report either
        # The cap counts taxable nights only: nights before the tax came in (or a
        # late arrival's held nights) cannot use it up.
        index = taxable_nights
        taxable_nights += 1
        for guest in guests:
            reason = exemption(
                guest,
                under_age=policy.tourist_tax_exempt_under_age,
                municipality=policy.municipality_code,
            )
            if reason is None and index >= policy.tourist_tax_max_nights:
                reason = EXEMPT_CAP
            if reason is None:
                taxed_by_rate[rate] += 1
                first_night_at_rate.setdefault(rate, night)
            else:
                exempt[reason] += 1
    for rate, guest_nights in sorted(taxed_by_rate.items()):
        lines.append(
            FolioLine.outside_vat(
                TOURIST_TAX,
                f"Tourist tax: {guest_nights} guest-night(s) at {format_cents(rate)} EUR",
                first_night_at_rate[rate],
                guest_nights * rate,
            )
        )
    tax = TouristTax(
        amount_cents=sum(rate * n for rate, n in taxed_by_rate.items()),
        taxed_guest_nights=sum(taxed_by_rate.values()),
        exempt_guest_nights=dict(exempt),
    )
    return lines, tax


@dataclass(frozen=True)
class VatSummaryLine:
    rate_bp: int
    net_cents: int
    vat_cents: int

    @property
    def gross_cents(self) -> int:
        return self.net_cents + self.vat_cents


def vat_summary(lines: Iterable[FolioLine]) -> list[VatSummaryLine]:
    totals: dict[int, list[int]] = {}
    for line in lines:
        if line.vat_rate_bp is None:
            continue
        net_vat = totals.setdefault(line.vat_rate_bp, [0, 0])
        net_vat[0] += line.net_cents
        net_vat[1] += line.vat_cents
    return [VatSummaryLine(rate, net, vat) for rate, (net, vat) in sorted(totals.items())]

"""The shop's configuration: categories, VAT per category, cash-movement reasons,
accounts and the Z-close tolerance, as versions with an effective date.

One long-lived aggregate (snapshotted). A sale uses the version in force on its
business date; versions are appended, never edited, so history keeps the rates it
was rung with (each sale's events also carry the rates they used).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import NotFound, ValidationError
from services.shop.domain.errors import UnknownCategory

CONFIG_ID: UUID = uuid5(NAMESPACE_URL, "urn:coop:shop:configuration")

_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,29}$")
MAX_CATEGORIES = 50
MAX_CASH_REASONS = 50
MAX_NAME_LENGTH = 120
# 100% in basis points: a VAT rate above that is a typo, not a tax.
MAX_VAT_RATE_BP = 10_000


class CashDirection(StrEnum):
    IN = "IN"
    OUT = "OUT"


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    vat_rate_bp: int
    revenue_account: str
    vat_account: str


@dataclass(frozen=True)
class CashReason:
    code: str
    name: str
    account: str
    directions: tuple[CashDirection, ...]


@dataclass(frozen=True)
class ShopPolicy:
    effective_from: date
    categories: tuple[Category, ...]
    cash_reasons: tuple[CashReason, ...]
    z_tolerance_cents: int
    cash_account: str
    card_account: str
    over_short_account: str
    _by_code: dict[str, Category] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code.update({c.code: c for c in self.categories})

    def category(self, code: str, *, field: str) -> Category:
        found = self._by_code.get(code)
        if found is None:
            raise UnknownCategory(field, code, [c.code for c in self.categories])
        return found

    def cash_reason(self, code: str, direction: CashDirection, *, field: str) -> CashReason:
        for reason in self.cash_reasons:
            if reason.code == code:
                if direction not in reason.directions:
                    raise ValidationError(
                        "direction", f"reason {code!r} allows only {_join(reason.directions)}"
                    )
                return reason
        known = ", ".join(r.code for r in self.cash_reasons)
        raise ValidationError(field, f"unknown reason; use one of {known}")

    def accounts(self) -> set[str]:
        codes = {self.cash_account, self.card_account, self.over_short_account}
        for c in self.categories:
            codes |= {c.revenue_account, c.vat_account}
        codes |= {r.account for r in self.cash_reasons}
        return codes

    def as_state(self) -> dict[str, Any]:
        return {
            "effective_from": self.effective_from.isoformat(),
            "categories": [
                {
                    "code": c.code,
                    "name": c.name,
                    "vat_rate_bp": c.vat_rate_bp,
                    "revenue_account": c.revenue_account,
                    "vat_account": c.vat_account,
                }
                for c in self.categories
            ],
            "cash_reasons": [
                {
                    "code": r.code,
                    "name": r.name,
                    "account": r.account,
                    "directions": [d.value for d in r.directions],
                }
                for r in self.cash_reasons
            ],
            "z_tolerance_cents": self.z_tolerance_cents,
            "cash_account": self.cash_account,
            "card_account": self.card_account,
            "over_short_account": self.over_short_account,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ShopPolicy:
        return cls(
            effective_from=date.fromisoformat(state["effective_from"]),
            categories=tuple(
                Category(
                    c["code"],
                    c["name"],
                    int(c["vat_rate_bp"]),
                    c["revenue_account"],
                    c["vat_account"],
                )
                for c in state["categories"]
            ),
            cash_reasons=tuple(
                CashReason(
                    r["code"],
                    r["name"],
                    r["account"],
                    tuple(CashDirection(d) for d in r["directions"]),
                )
                for r in state["cash_reasons"]
            ),
            z_tolerance_cents=int(state["z_tolerance_cents"]),
            cash_account=state["cash_account"],
            card_account=state["card_account"],
            over_short_account=state["over_short_account"],
        )


def _join(directions: Sequence[CashDirection]) -> str:
    return "/".join(d.value for d in directions)


def check_policy(policy: ShopPolicy, *, amount_ceiling_cents: int) -> None:
    """Shape rules; whether the accounts exist is checked against the chart by the app."""
    if not policy.categories:
        raise ValidationError("categories", "at least one category is needed")
    if len(policy.categories) > MAX_CATEGORIES:
        raise ValidationError("categories", f"at most {MAX_CATEGORIES} categories")
    if len(policy.cash_reasons) > MAX_CASH_REASONS:
        raise ValidationError("cashReasons", f"at most {MAX_CASH_REASONS} reasons")
    seen: set[str] = set()
    for index, category in enumerate(policy.categories):
        prefix = f"categories[{index}]"
        _check_code(category.code, f"{prefix}.code", seen)
        _check_name(category.name, f"{prefix}.name")
        if not 0 <= category.vat_rate_bp <= MAX_VAT_RATE_BP:
            raise ValidationError(f"{prefix}.vatRate", "must be between 0 and 100 percent")
    seen = set()
    for index, reason in enumerate(policy.cash_reasons):
        prefix = f"cashReasons[{index}]"
        _check_code(reason.code, f"{prefix}.code", seen)
        _check_name(reason.name, f"{prefix}.name")
        if not reason.directions:
            raise ValidationError(f"{prefix}.directions", "at least one direction")
        if reason.account == policy.cash_account:
            raise ValidationError(f"{prefix}.account", "cash cannot move to the cash account")
    if policy.card_account == policy.cash_account:
        # Card takings never pass through the drawer: booked to the cash account they
        # would show cash the Z close can never count, and no difference would say so.
        raise ValidationError("cardAccount", "card takings cannot go to the cash account")
    if not 0 <= policy.z_tolerance_cents <= amount_ceiling_cents:
        raise ValidationError("zTolerance", "must be zero or more, at most the amount ceiling")


def _check_code(code: str, field: str, seen: set[str]) -> None:
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(field, "codes are capital letters, digits and '_', at most 30")
    if code in seen:
        raise ValidationError(field, f"code {code!r} appears twice")
    seen.add(code)


def _check_name(name: str, field: str) -> None:
    if not name.strip():
        raise ValidationError(field, "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(field, f"must be at most {MAX_NAME_LENGTH} characters")


@dataclass(frozen=True)
class ShopPolicyWithdrawal:
    effective_from: date
    withdrawn_on: date


class ShopConfig(Aggregate):
    class Created(Aggregate.Created):
        pass

    class PolicySet(Aggregate.Event):
        policy: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ShopConfig)
            new = ShopPolicy.from_state(self.policy)
            # A version for the same date replaces a scheduled one; order by date.
            kept = [
                v
                for v in aggregate.versions
                if date.fromisoformat(v["effective_from"]) != new.effective_from
            ]
            kept.append(self.policy)
            kept.sort(key=lambda v: str(v["effective_from"]))
            aggregate.versions = kept

    class PolicyWithdrawn(Aggregate.Event):
        effective_from: date
        withdrawn_on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ShopConfig)
            day = self.effective_from.isoformat()
            aggregate.versions = [v for v in aggregate.versions if v["effective_from"] != day]

    def __init__(self) -> None:
        self.versions: list[dict[str, Any]] = []

    @classmethod
    def start(cls) -> ShopConfig:
        return cls._create(cls.Created, id=CONFIG_ID)

    def set_policy(self, policy: ShopPolicy, *, today: date, amount_ceiling_cents: int) -> None:
        check_policy(policy, amount_ceiling_cents=amount_ceiling_cents)
        if self.versions:
            latest = date.fromisoformat(self.versions[-1]["effective_from"])
            # History keeps the rates it was rung with: a new version starts today or
            # later, and never before the latest one.
            if policy.effective_from < today:
                raise ValidationError("effectiveFrom", "must be today or later")
            if policy.effective_from < latest:
                raise ValidationError(
                    "effectiveFrom", f"must not be before the latest version ({latest})"
                )
        self.trigger_event(self.PolicySet, policy=policy.as_state())

    def withdraw_policy(self, effective_from: date, *, today: date) -> ShopPolicyWithdrawal:
        """Withdraw a version that is not yet in force (a mistyped date or rate): set
        versions may not go back before the latest one, so a version dated 2206 by
        mistake would otherwise hold every change until then. One in force today or
        before has priced documents; it stays, and a new version from today on
        replaces it."""
        day = effective_from.isoformat()
        if not any(v["effective_from"] == day for v in self.versions):
            raise NotFound(f"there is no shop configuration version from {day}")
        if effective_from <= today:
            raise ValidationError(
                "effectiveFrom",
                f"the version from {day} is in force since then and priced the till's "
                "documents; set a new version from today or later instead",
            )
        self.trigger_event(self.PolicyWithdrawn, effective_from=effective_from, withdrawn_on=today)
        return ShopPolicyWithdrawal(effective_from, today)

    def policies_from(self, day: date) -> list[ShopPolicy]:
        """The version in force on `day` (if any) and those that come into force later."""
        starts = [date.fromisoformat(v["effective_from"]) for v in self.versions]
        return [
            ShopPolicy.from_state(v)
            for i, v in enumerate(self.versions)
            if i + 1 == len(self.versions) or starts[i + 1] > day
        ]

    def policy_on(self, day: date, *, field: str = "date") -> ShopPolicy:
        """`field`: the input that chose the day, named if none is in force."""
        chosen: dict[str, Any] | None = None
        for version in self.versions:
            if date.fromisoformat(version["effective_from"]) <= day:
                chosen = version
        if chosen is None:
            raise ValidationError(field, f"no shop configuration is in force on {day}")
        return ShopPolicy.from_state(chosen)


# Seeded on an empty store (like the ledger's default chart); changed through the
# setShopPolicy mutation with an effective date. DOMAIN.md: donated goods sold are
# taxable at 22% unless configured otherwise.
DEFAULT_EFFECTIVE_FROM = date(2000, 1, 1)
DEFAULT_VAT_RATE_BP = 2200
# Revenue accounts 4110..4150 under 4100 "Shop revenue"; 41x1..41x9 stay free for
# accounts an admin opens by hand.
DEFAULT_CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("CLOTHES", "Clothes", "4110"),
    ("SHOES", "Shoes", "4120"),
    ("ACCESSORIES", "Accessories", "4130"),
    ("HOUSEHOLD", "Household goods", "4140"),
    ("OTHER", "Other", "4150"),
)


def default_policy() -> ShopPolicy:
    return ShopPolicy(
        effective_from=DEFAULT_EFFECTIVE_FROM,
        categories=tuple(
            Category(code, name, DEFAULT_VAT_RATE_BP, account, "2000")
            for code, name, account in DEFAULT_CATEGORIES
        ),
        cash_reasons=(
            CashReason("SUPPLIES", "Supplies paid from the till", "5200", (CashDirection.OUT,)),
            CashReason("BANK_DEPOSIT", "Cash taken to the bank", "1010", (CashDirection.OUT,)),
            CashReason(
                "CHANGE_FROM_BANK", "Change brought from the bank", "1010", (CashDirection.IN,)
            ),
        ),
        z_tolerance_cents=100,
        cash_account="1000",
        card_account="1020",
        over_short_account="5100",
    )

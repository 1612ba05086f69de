"""Realistic journal entries for benchmarks, as data.

The same shapes as the demo year (gateway/demo): hotel stays with VAT and tourist
tax, charity-shop sales, donations, a grant and a reception contract with split
payment; about 3,400 entries a year, 3.6 postings an entry. The demo itself drives
the application services, so it cannot be read as a list; this module can, and it
is deterministic for a given year.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from services.common.money import split_vat_included
from services.ledger.domain import Posting, Side

SEED = 2013
ROOM_VAT_BP = 1000
SHOP_VAT_BP = 2200
CONTRACT_VAT_BP = 500
TOURIST_TAX_PER_NIGHT_CENTS = 100
CONTRACT_DAILY_RATE_CENTS = 2900
# Busy in summer and at Christmas, quiet in November: most stays a day per month.
STAYS_PER_DAY = {6: 7, 7: 9, 8: 11, 11: 2, 12: 6}


@dataclass(frozen=True)
class EntrySpec:
    cause_id: str
    effective_date: date
    description: str
    postings: tuple[Posting, ...]


def _d(account: str, cents: int) -> Posting:
    return Posting(account, Side.DEBIT, cents)


def _c(account: str, cents: int) -> Posting:
    return Posting(account, Side.CREDIT, cents)


def year_of_entries(year: int) -> Iterator[EntrySpec]:
    """A year's entries, by day (contract payments fall 45 days after the invoice)."""
    rng = random.Random(SEED * 10_000 + year)
    for month in range(1, 13):
        for day in range(1, calendar.monthrange(year, month)[1] + 1):
            today = date(year, month, day)
            yield from _grant(today)
            yield from _hotel_day(rng, today)
            if today.weekday() in (1, 3, 5):  # the shop opens Tue, Thu, Sat
                yield from _shop_day(rng, today)
            if rng.random() < 0.08:
                amount = rng.choice((2000, 5000, 10000, 25000))
                yield EntrySpec(
                    f"bench:{today}:donation",
                    today,
                    "Donation by bank transfer",
                    (_d("1010", amount), _c("4400", amount)),
                )
        yield from _contract_month(rng, year, month)


def _hotel_day(rng: random.Random, today: date) -> Iterator[EntrySpec]:
    season = STAYS_PER_DAY.get(today.month, 4)
    for n in range(rng.randint(max(season - 3, 0), season)):
        nights = rng.randint(1, 4)
        guests = rng.randint(1, 3)
        room_cents = nights * rng.choice((6500, 7500, 9000))
        food_cents = rng.choice((0, 0, 2500, 4800))
        tax_cents = nights * guests * TOURIST_TAX_PER_NIGHT_CENTS
        room_net, room_vat = split_vat_included(room_cents, ROOM_VAT_BP)
        food_net, food_vat = split_vat_included(food_cents, ROOM_VAT_BP)
        bank = "1020" if rng.random() < 0.7 else "1000"
        postings = [
            _d(bank, room_cents + food_cents + tax_cents),
            _c("4000", room_net),
            _c("2010", room_vat + food_vat),
            _c("2100", tax_cents),
        ]
        if food_cents:
            postings.insert(2, _c("4010", food_net))
        yield EntrySpec(
            f"bench:{today}:stay:{n}",
            today,
            f"Hotel stay checked out: {nights} night(s), {guests} guest(s)",
            tuple(postings),
        )


def _shop_day(rng: random.Random, today: date) -> Iterator[EntrySpec]:
    for n in range(rng.randint(6, 18)):
        gross = rng.choice((300, 500, 800, 1200, 1500, 2000, 3500))
        net, vat = split_vat_included(gross, SHOP_VAT_BP)
        till = "1000" if rng.random() < 0.6 else "1020"
        yield EntrySpec(
            f"bench:{today}:sale:{n}",
            today,
            "Charity shop sale",
            (_d(till, gross), _c("4100", net), _c("2000", vat)),
        )


def _contract_month(rng: random.Random, year: int, month: int) -> Iterator[EntrySpec]:
    days = calendar.monthrange(year, month)[1]
    presence_days = sum(rng.randint(12, 14) for _ in range(days))
    net = presence_days * CONTRACT_DAILY_RATE_CENTS
    vat = (net * CONTRACT_VAT_BP + 5_000) // 10_000
    invoiced = date(year, month, days)
    period = f"{year}-{month:02d}"
    yield EntrySpec(
        f"bench:{period}:contract-invoice",
        invoiced,
        f"Reception contract invoice {period}: {presence_days} presence days",
        (_d("1110", net + vat), _c("4300", net), _c("2020", vat)),
    )
    # Split payment: the public body pays the VAT to the Treasury, not to us.
    yield EntrySpec(
        f"bench:{period}:contract-split-payment",
        invoiced,
        f"Split payment on contract invoice {period}: VAT paid by the public body",
        (_d("2020", vat), _c("1110", vat)),
    )
    paid = invoiced + timedelta(days=45)
    if paid.year == year:
        yield EntrySpec(
            f"bench:{period}:contract-payment",
            paid,
            f"Prefecture paid contract invoice {period}",
            (_d("1010", net), _c("1110", net)),
        )


def _grant(today: date) -> Iterator[EntrySpec]:
    """A foundation grant: an advance in March, earned when its condition is met in June."""
    if (today.month, today.day) == (3, 15):
        yield EntrySpec(
            f"bench:{today.year}:grant:tranche-1",
            today,
            "Foundation grant, tranche 1 received before its condition (refundable advance)",
            (_d("1010", 1_500_000), _c("2300", 1_500_000)),
        )
    elif (today.month, today.day) == (6, 30):
        yield EntrySpec(
            f"bench:{today.year}:grant:condition-1",
            today,
            "Foundation grant, tranche 1 condition met (interim report accepted)",
            (_d("2300", 1_500_000), _c("4210", 1_500_000)),
        )

"""`coop demo`: a realistic year of the cooperative's money, posted through the ledger.

Every fact goes through the same application service a client would use, with its
own idempotency key, so loading the demo twice changes nothing the second time.
Hotel stays, shop days, a grant, donations and a reception contract are posted as
journal entries here; as each service lands, the demo drives that service instead.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from services.common.money import split_vat_included
from services.ledger.application import LedgerApplication
from services.ledger.domain import Posting, Side

DEMO_ACTOR = "demo-loader"
# Demo rates (the real ones are configuration of the hotel and shop services).
ROOM_VAT_BP = 1000
SHOP_VAT_BP = 2200
CONTRACT_VAT_BP = 500
TOURIST_TAX_PER_NIGHT_CENTS = 100
CONTRACT_DAILY_RATE_CENTS = 2900


@dataclass(frozen=True)
class DemoEntry:
    key: str
    effective_date: date
    description: str
    postings: tuple[Posting, ...]


def _d(account: str, cents: int) -> Posting:
    return Posting(account, Side.DEBIT, cents)


def _c(account: str, cents: int) -> Posting:
    return Posting(account, Side.CREDIT, cents)


def demo_entries(year: int, seed: int = 2013) -> Iterator[DemoEntry]:
    """The year's entries in date order, deterministic for a given seed."""
    rng = random.Random(seed)
    yield from _grant(year)
    for month in range(1, 13):
        days = calendar.monthrange(year, month)[1]
        for day in range(1, days + 1):
            today = date(year, month, day)
            yield from _hotel_day(rng, today)
            if today.weekday() in (1, 3, 5):  # the shop opens Tue, Thu, Sat
                yield from _shop_day(rng, today)
            if rng.random() < 0.08:
                amount = rng.choice((2000, 5000, 10000, 25000))
                yield DemoEntry(
                    f"demo:{today}:donation",
                    today,
                    "Donation by bank transfer",
                    (_d("1010", amount), _c("4400", amount)),
                )
        yield from _contract_month(rng, year, month)


def _hotel_day(rng: random.Random, today: date) -> Iterator[DemoEntry]:
    # Val Camonica: busy in summer and at Christmas, quiet in November.
    season = {7: 9, 8: 11, 6: 7, 12: 6, 11: 2}.get(today.month, 4)
    for n in range(rng.randint(max(season - 3, 0), season)):
        nights = rng.randint(1, 4)
        guests = rng.randint(1, 3)
        room_cents = nights * rng.choice((6500, 7500, 9000))
        food_cents = rng.choice((0, 0, 2500, 4800))
        tax_cents = nights * guests * TOURIST_TAX_PER_NIGHT_CENTS
        room_net, room_vat = split_vat_included(room_cents, ROOM_VAT_BP)
        food_net, food_vat = split_vat_included(food_cents, ROOM_VAT_BP)
        paid_cents = room_cents + food_cents + tax_cents
        bank_account = "1020" if rng.random() < 0.7 else "1000"
        postings = [
            _d(bank_account, paid_cents),
            _c("4000", room_net),
            _c("2010", room_vat + food_vat),
            _c("2100", tax_cents),
        ]
        if food_cents:
            postings.insert(2, _c("4010", food_net))
        yield DemoEntry(
            f"demo:{today}:stay:{n}",
            today,
            f"Hotel stay checked out: {nights} night(s), {guests} guest(s)",
            tuple(postings),
        )


def _shop_day(rng: random.Random, today: date) -> Iterator[DemoEntry]:
    for n in range(rng.randint(6, 18)):
        gross = rng.choice((300, 500, 800, 1200, 1500, 2000, 3500))
        net, vat = split_vat_included(gross, SHOP_VAT_BP)
        till_account = "1000" if rng.random() < 0.6 else "1020"
        yield DemoEntry(
            f"demo:{today}:sale:{n}",
            today,
            "Charity shop sale",
            (_d(till_account, gross), _c("4100", net), _c("2000", vat)),
        )


def _contract_month(rng: random.Random, year: int, month: int) -> Iterator[DemoEntry]:
    days = calendar.monthrange(year, month)[1]
    presence_days = sum(rng.randint(12, 14) for _ in range(days))
    net = presence_days * CONTRACT_DAILY_RATE_CENTS
    vat = (net * CONTRACT_VAT_BP + 5_000) // 10_000
    invoice_date = date(year, month, days)
    yield DemoEntry(
        f"demo:{year}-{month:02d}:contract-invoice",
        invoice_date,
        f"Reception contract invoice {year}-{month:02d}: {presence_days} presence days",
        (_d("1110", net + vat), _c("4300", net), _c("2020", vat)),
    )
    # Split payment: the public body pays the VAT to the Treasury, not to us, so the
    # VAT part of the receivable settles the VAT liability.
    yield DemoEntry(
        f"demo:{year}-{month:02d}:contract-split-payment",
        invoice_date,
        f"Split payment on contract invoice {year}-{month:02d}: VAT paid by the public body",
        (_d("2020", vat), _c("1110", vat)),
    )
    paid_on = invoice_date + timedelta(days=45)
    if paid_on.year == year:
        yield DemoEntry(
            f"demo:{year}-{month:02d}:contract-payment",
            paid_on,
            f"Prefecture paid contract invoice {year}-{month:02d}",
            (_d("1010", net), _c("1110", net)),
        )


def _grant(year: int) -> Iterator[DemoEntry]:
    yield DemoEntry(
        f"demo:{year}:grant:tranche-1",
        date(year, 3, 15),
        "Foundation grant, tranche 1 received before its condition (refundable advance)",
        (_d("1010", 1_500_000), _c("2300", 1_500_000)),
    )
    yield DemoEntry(
        f"demo:{year}:grant:condition-1",
        date(year, 6, 30),
        "Foundation grant, tranche 1 condition met (interim report accepted)",
        (_d("2300", 1_500_000), _c("4210", 1_500_000)),
    )


def load_demo(
    ledger: LedgerApplication,
    year: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Post the demo year; returns the number of entries newly posted."""
    posted = 0
    for entry in demo_entries(year):
        outcome = ledger.post_entry(
            key=entry.key,
            actor=DEMO_ACTOR,
            effective_date=entry.effective_date,
            description=entry.description,
            postings=entry.postings,
        )
        posted += 0 if outcome.replayed else 1
        if progress is not None:
            progress(1)
    return posted


def count_demo_entries(year: int) -> int:
    return sum(1 for _ in demo_entries(year))

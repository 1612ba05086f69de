"""Demo year of Hotel Giardino. Until the hotel service lands (issue #3), each stay
is posted as its check-out journal entry."""

from __future__ import annotations

import random
from collections.abc import Iterator

from gateway.demo.steps import DemoStep, credit, days_of, debit, journal_step
from services.common.money import split_vat_included

ROOM_VAT_BP = 1000
TOURIST_TAX_PER_NIGHT_CENTS = 100


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    for today in days_of(year):
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
            paid_account = "1020" if rng.random() < 0.7 else "1000"
            postings = [
                debit(paid_account, room_cents + food_cents + tax_cents),
                credit("4000", room_net),
                credit("2010", room_vat + food_vat),
                credit("2100", tax_cents),
            ]
            if food_cents:
                postings.insert(2, credit("4010", food_net))
            yield journal_step(
                f"demo:{today}:stay:{n}",
                today,
                f"Hotel stay checked out: {nights} night(s), {guests} guest(s)",
                *postings,
            )

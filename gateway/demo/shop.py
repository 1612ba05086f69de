"""Demo year of the charity shop (open Tue, Thu, Sat). Until the shop service lands
(issue #4), each sale is posted as its journal entry."""

from __future__ import annotations

import random
from collections.abc import Iterator

from gateway.demo.steps import DemoStep, credit, days_of, debit, journal_step
from services.common.money import split_vat_included

SHOP_VAT_BP = 2200


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    for today in days_of(year):
        if today.weekday() not in (1, 3, 5):
            continue
        for n in range(rng.randint(6, 18)):
            gross = rng.choice((300, 500, 800, 1200, 1500, 2000, 3500))
            net, vat = split_vat_included(gross, SHOP_VAT_BP)
            till_account = "1000" if rng.random() < 0.6 else "1020"
            yield journal_step(
                f"demo:{today}:sale:{n}",
                today,
                "Charity shop sale",
                debit(till_account, gross),
                credit("4100", net),
                credit("2000", vat),
            )

"""Demo year of grants, donations and the reception contract. Until the funding
services land (issue #5), each fact is posted as its journal entry."""

from __future__ import annotations

import calendar
import random
from collections.abc import Iterator
from datetime import date, timedelta

from gateway.demo.steps import DemoStep, credit, days_of, debit, journal_step

CONTRACT_VAT_BP = 500
CONTRACT_DAILY_RATE_CENTS = 2900


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    yield journal_step(
        f"demo:{year}:grant:tranche-1",
        date(year, 3, 15),
        "Foundation grant, tranche 1 received before its condition (refundable advance)",
        debit("1010", 1_500_000),
        credit("2300", 1_500_000),
    )
    yield journal_step(
        f"demo:{year}:grant:condition-1",
        date(year, 6, 30),
        "Foundation grant, tranche 1 condition met (interim report accepted)",
        debit("2300", 1_500_000),
        credit("4210", 1_500_000),
    )
    for today in days_of(year):
        if rng.random() < 0.08:
            amount = rng.choice((2000, 5000, 10000, 25000))
            yield journal_step(
                f"demo:{today}:donation",
                today,
                "Donation by bank transfer",
                debit("1010", amount),
                credit("4400", amount),
            )
    for month in range(1, 13):
        yield from _contract_month(rng, year, month)


def _contract_month(rng: random.Random, year: int, month: int) -> Iterator[DemoStep]:
    days = calendar.monthrange(year, month)[1]
    presence_days = sum(rng.randint(12, 14) for _ in range(days))
    net = presence_days * CONTRACT_DAILY_RATE_CENTS
    vat = (net * CONTRACT_VAT_BP + 5_000) // 10_000
    invoice_date = date(year, month, days)
    period = f"{year}-{month:02d}"
    yield journal_step(
        f"demo:{period}:contract-invoice",
        invoice_date,
        f"Reception contract invoice {period}: {presence_days} presence days",
        debit("1110", net + vat),
        credit("4300", net),
        credit("2020", vat),
    )
    # Split payment: the public body pays the VAT to the Treasury, not to us.
    yield journal_step(
        f"demo:{period}:contract-split-payment",
        invoice_date,
        f"Split payment on contract invoice {period}: VAT paid by the public body",
        debit("2020", vat),
        credit("1110", vat),
    )
    paid_on = invoice_date + timedelta(days=45)
    if paid_on.year == year:
        yield journal_step(
            f"demo:{period}:contract-payment",
            paid_on,
            f"Prefecture paid contract invoice {period}",
            debit("1010", net),
            credit("1110", net),
        )

"""Demo year of the charity shop (open Tue, Thu, Sat), driven through the shop service.

Each open day: a volunteer opens till-1 with a float (and till-2 on Saturdays), takes
in donated bags, rings sales in cash and by card, now and then refunds one, pays for
supplies from the till once a month, and closes with a counted cash a little off now
and then. About 2,000 sales a year, so loading the demo stays quick.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from gateway.demo.steps import DemoStep, days_of
from services.shop.application import id_for_key
from services.shop.domain import CashDirection, LineInput, PaymentInput, PaymentMethod

if TYPE_CHECKING:
    from gateway.runtime import Runtime

VOLUNTEERS = ("person:anna", "person:giulia", "person:marco", "person:samira")
# (category, description, typical prices in cents) of donated goods.
GOODS = (
    ("CLOTHES", "shirt", (300, 500, 800)),
    ("CLOTHES", "winter coat", (1500, 2000, 3500)),
    ("SHOES", "pair of shoes", (500, 800, 1200)),
    ("ACCESSORIES", "scarf", (200, 300, 500)),
    ("HOUSEHOLD", "set of glasses", (400, 600, 1000)),
    ("OTHER", "book", (100, 200, 300)),
)
FLOAT_CENTS = 10_000


def _at(runtime: Runtime, day: date, minutes_after_nine: int) -> datetime:
    """A moment of the shop's day, in the cooperative's time zone."""
    local = datetime.combine(day, time(9, 0), tzinfo=runtime.settings.zone)
    return local + timedelta(minutes=minutes_after_nine)


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    supplies_month = 0
    for today in days_of(year):
        if today.weekday() not in (1, 3, 5):
            continue
        tills = ("till-1", "till-2") if today.weekday() == 5 else ("till-1",)
        volunteer = rng.choice(VOLUNTEERS)
        yield _intake(today, rng, volunteer)
        for till in tills:
            yield from _till_day(today, till, rng, volunteer, busy=till == "till-1")
            if till == "till-1" and today.month != supplies_month:
                supplies_month = today.month
                yield _cash_out(today, till, rng.choice((450, 780, 1290)), volunteer)
            yield _close(today, till, rng.choice((0, 0, 0, 0, -50, 20, -100)), volunteer)


def _session_key(day: date, till: str) -> str:
    return f"demo:{day}:shop:{till}:open"


def _till_day(
    day: date, till: str, rng: random.Random, volunteer: str, *, busy: bool
) -> Iterator[DemoStep]:
    session_key = _session_key(day, till)

    def open_session(runtime: Runtime) -> bool:
        return not runtime.shop.open_session(
            key=session_key,
            actor=volunteer,
            till_scope=None,
            till_id=till,
            opening_float_cents=FLOAT_CENTS,
            at=_at(runtime, day, 0),
        ).replayed

    yield DemoStep(day, open_session)
    for n in range(rng.randint(6, 16) if busy else rng.randint(2, 6)):
        lines = []
        for _ in range(1 if rng.random() < 0.7 else 2):
            category, description, prices = rng.choice(GOODS)
            lines.append(
                LineInput(category, description, rng.choice((1, 1, 1, 2)), rng.choice(prices))
            )
        total = sum(line.quantity * line.unit_price_cents for line in lines)
        if rng.random() < 0.6:
            tendered = total if rng.random() < 0.5 else -(-total // 500) * 500
            payments = [PaymentInput(PaymentMethod.CASH, tendered)]
        else:
            payments = [PaymentInput(PaymentMethod.CARD, total)]
        sale_key = f"demo:{day}:shop:{till}:sale:{n}"
        yield _sale(day, till, sale_key, n, lines, payments, volunteer)
        if rng.random() < 0.015:
            yield _refund(day, sale_key, n, volunteer)


def _sale(
    day: date,
    till: str,
    key: str,
    n: int,
    lines: list[LineInput],
    payments: list[PaymentInput],
    volunteer: str,
) -> DemoStep:
    def run(runtime: Runtime) -> bool:
        return not runtime.shop.ring_sale(
            key=key,
            actor=volunteer,
            till_scope=None,
            session_id=id_for_key("session", _session_key(day, till)),
            lines=lines,
            payments=payments,
            at=_at(runtime, day, 10 + 2 * n),
        ).replayed

    return DemoStep(day, run)


def _refund(day: date, sale_key: str, n: int, volunteer: str) -> DemoStep:
    def run(runtime: Runtime) -> bool:
        return not runtime.shop.refund_sale(
            key=f"{sale_key}:refund",
            actor=volunteer,
            till_scope=None,
            sale_id=id_for_key("sale", sale_key),
            session_id=None,
            lines=None,
            method=None,
            at=_at(runtime, day, 11 + 2 * n),
        ).replayed

    return DemoStep(day, run)


def _cash_out(day: date, till: str, amount_cents: int, volunteer: str) -> DemoStep:
    def run(runtime: Runtime) -> bool:
        return not runtime.shop.move_cash(
            key=f"demo:{day}:shop:{till}:supplies",
            actor=volunteer,
            till_scope=None,
            session_id=id_for_key("session", _session_key(day, till)),
            direction=CashDirection.OUT,
            amount_cents=amount_cents,
            reason="SUPPLIES",
            note="cleaning supplies",
            at=_at(runtime, day, 400),
        ).replayed

    return DemoStep(day, run)


def _close(day: date, till: str, difference_cents: int, volunteer: str) -> DemoStep:
    def run(runtime: Runtime) -> bool:
        session_id = id_for_key("session", _session_key(day, till))
        expected = runtime.shop.get_session(session_id).expected_cash_cents
        return not runtime.shop.close_session(
            key=f"demo:{day}:shop:{till}:close",
            actor=volunteer,
            till_scope=None,
            session_id=session_id,
            counted_cash_cents=expected + difference_cents,
            terminal_card_cents=None,
            at=_at(runtime, day, 480),
        ).replayed

    return DemoStep(day, run)


def _intake(day: date, rng: random.Random, volunteer: str) -> DemoStep:
    category = rng.choice(("CLOTHES", "CLOTHES", "SHOES", "HOUSEHOLD", "OTHER"))
    bags = rng.randint(1, 6)
    items = bags * rng.randint(8, 15)

    def run(runtime: Runtime) -> bool:
        return not runtime.shop.record_intake(
            key=f"demo:{day}:shop:intake",
            actor=volunteer,
            received_on=day,
            category=category,
            bags=bags,
            items=items,
            at=_at(runtime, day, 5),
        ).replayed

    return DemoStep(day, run)

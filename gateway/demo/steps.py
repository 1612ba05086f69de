"""The building blocks of demo modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from services.ledger.domain import Posting, Side

if TYPE_CHECKING:
    from gateway.runtime import Runtime

DEMO_ACTOR = "device:demo-loader"


@dataclass(frozen=True)
class DemoStep:
    """One dated action; `run` returns True when it changed the store."""

    day: date
    run: Callable[[Runtime], bool]


def days_of(year: int) -> Iterator[date]:
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


def debit(account: str, cents: int) -> Posting:
    return Posting(account, Side.DEBIT, cents)


def credit(account: str, cents: int) -> Posting:
    return Posting(account, Side.CREDIT, cents)


def journal_step(key: str, day: date, description: str, *postings: Posting) -> DemoStep:
    """A step that posts one journal entry through the ledger."""

    def run(runtime: Runtime) -> bool:
        outcome = runtime.ledger.post_entry(
            key=key,
            actor=DEMO_ACTOR,
            effective_date=day,
            description=description,
            postings=postings,
        )
        return not outcome.replayed

    return DemoStep(day, run)

"""`coop demo`: a realistic year of the cooperative, driven through the applications.

Each context contributes a module of dated steps (hotel.py, shop.py, funding.py).
A step calls an application service with its own idempotency key, so loading the
demo twice changes nothing the second time. Steps run in date order.
While a context's service is not built yet, its module posts that context's money
as journal entries through the ledger.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.demo import funding, hotel, shop, welfare
from gateway.demo.steps import DemoStep

if TYPE_CHECKING:
    from gateway.runtime import Runtime

SEED = 2013  # the year Hotel Giardino opened

# Appended last: each module's random seed depends on its index.
CONTRIBUTORS = (funding, hotel, shop, welfare)


def demo_steps(year: int) -> list[DemoStep]:
    steps: list[DemoStep] = []
    for index, module in enumerate(CONTRIBUTORS):
        steps.extend(module.steps(year, random.Random(SEED + index)))
    steps.sort(key=lambda step: step.day)  # stable: same-day order is kept
    return steps


def count_demo_steps(year: int) -> int:
    return len(demo_steps(year))


def load_demo(runtime: Runtime, year: int, progress: Callable[[int], None] | None = None) -> int:
    """Run the demo year; returns the number of steps that changed something."""
    welfare.check_programs(runtime.welfare.programs)
    changed = 0
    for step in demo_steps(year):
        changed += 1 if step.run(runtime) else 0
        if progress is not None:
            progress(1)
    return changed

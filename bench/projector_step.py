"""CPU of a live projector step, per step and per sale, at a few page sizes.

Each mutation waits for a projector step that covers it (read-your-writes), so at low
load a step's fixed cost is most of a mutation's wait, and under load it is what the
projector spends per page of sales. For each page size: that many sales rung (the
command called directly, no GraphQL), then one catch-up of the projector on its own
connection, as `coop projections run` does; repeated for --steps steps.

    python -m bench.projector_step [--backend postgres|sqlite|both] [--steps 60] \
        [--sales-per-step 1 --sales-per-step 8 --sales-per-step 32]

Prints, per store and page size, the CPU milliseconds (this process: the commands and
the projector, not the database server's) per command and per projector step, and the
projector's per sale.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from bench.gateway import seed
from bench.stores import add_store_arguments, fresh_stores
from gateway.runtime import Runtime
from services.shop.domain import PaymentMethod
from services.shop.domain.sale import LineInput, PaymentInput

WARM_UP_SALES = 50


def measure(runtime: Runtime, steps: int, sales_per_step: int, label: str) -> None:
    shop = runtime.shop
    runner = runtime.projector
    at = datetime.now(UTC)
    session = shop.open_session(
        key=f"{label}-open",
        actor="bench",
        till_scope=None,
        till_id=f"bench-{label}",
        opening_float_cents=10_000,
        at=at,
    ).result
    counter = iter(range(10**9))

    def ring() -> None:
        shop.ring_sale(
            key=f"{label}-sale-{next(counter)}",
            actor="bench",
            till_scope=None,
            session_id=session.id,
            lines=[LineInput("CLOTHES", "shirt", 1, 500)],
            payments=[PaymentInput(PaymentMethod.CARD, 500)],
            at=at,
        )

    with runner.projector_connection() as conn:
        for _ in range(WARM_UP_SALES):
            ring()
        runner.run_until_caught_up(connection=conn)
        command_s = step_s = 0.0
        for _ in range(steps):
            started = time.process_time()
            for _ in range(sales_per_step):
                ring()
            command_s += time.process_time() - started
            started = time.process_time()
            runner.run_until_caught_up(connection=conn)
            step_s += time.process_time() - started
    sales = steps * sales_per_step
    print(
        f"{sales_per_step:>6}{1000 * command_s / sales:>14.2f}{1000 * step_s / steps:>12.2f}"
        f"{1000 * step_s / sales:>18.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_arguments(parser)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--sales-per-step", type=int, action="append", dest="page_sizes")
    args = parser.parse_args()
    page_sizes: list[int] = args.page_sizes or [1, 8, 32]
    for store in fresh_stores(args, "projector_step"):
        runtime = Runtime(store.settings)
        try:
            seed(runtime, 1)
            runtime.projector.run_until_caught_up()
            print(f"== {store.backend} ({store.label}), {args.steps} steps per page size")
            print(f"{'sales':>6}{'command ms':>14}{'step ms':>12}{'projector/sale':>18}")
            for size in page_sizes:
                measure(runtime, args.steps, size, f"p{size}")
        finally:
            runtime.close_sync()


if __name__ == "__main__":
    main()

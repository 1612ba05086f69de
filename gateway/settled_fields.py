"""Sibling fields run to their end when one of them fails.

graphql-core (3.3) runs a selection's async fields together, and when one raises (a
non-null field's error bubbling up: a denied root field, an unexpected error) it
cancels the others at once. Ours are bounded database reads, and a read cancelled
half-way costs more than the rest of it would have: asyncpg terminates the
connection (the pool then opens a new one) and leaves a future whose exception
nobody retrieves, which asyncio logs as an error ("Future exception was never
retrieved"). Measured on PostgreSQL: about one cancelled read in ten did both,
through the read engine and through the lone reads alike.

So the gateway swaps graphql-core's gather for one that lets every sibling finish
and then raises the first failure in field order. The answer is the same (the
failing field's error, the parent set to null); it comes a read's time later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from graphql.execution import executor


async def gather_settled(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await every awaitable, then raise the first failure (in their order), if any."""
    futures = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def settle_sibling_fields() -> None:
    """Make graphql-core's executor settle sibling fields instead of cancelling them.

    Idempotent. Fails loudly if graphql-core no longer has the function it replaces,
    rather than silently going back to cancelling."""
    if not hasattr(executor, "gather_with_cancel"):
        raise RuntimeError(
            "graphql-core's executor has no gather_with_cancel: see gateway/settled_fields.py"
        )
    executor.gather_with_cancel = gather_settled

"""graphql-core's executor, as the gateway sets it up: a failing field leaves the
async fields beside it to finish (gateway/settled_fields.py)."""

from __future__ import annotations

import asyncio

import strawberry

from gateway.settled_fields import settle_sibling_fields


async def test_a_failing_field_waits_for_its_siblings_and_still_fails() -> None:
    settle_sibling_fields()
    finished: list[str] = []

    @strawberry.type
    class Query:
        @strawberry.field
        async def slow(self) -> str:
            await asyncio.sleep(0.02)
            finished.append("slow")
            return "slow"

        @strawberry.field
        async def failing(self) -> str:
            await asyncio.sleep(0)
            raise ValueError("no such thing")

        @strawberry.field
        async def also_failing(self) -> str:
            await asyncio.sleep(0.01)
            raise ValueError("nor this")

    schema = strawberry.Schema(query=Query)
    result = await schema.execute("{ slow failing alsoFailing }")

    assert finished == ["slow"]  # not cancelled when `failing` failed
    # A non-null field's error nulls the whole data, as before, and the first
    # failure in field order is the one reported.
    assert result.data is None
    assert result.errors is not None
    assert [e.message for e in result.errors] == ["no such thing"]
    # Nothing failing: every value, in field order.
    result = await schema.execute("{ a: slow b: slow }")
    assert result.data == {"a": "slow", "b": "slow"}

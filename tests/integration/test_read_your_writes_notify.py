"""Read-your-writes in a gateway worker whose projector is another process
(PostgreSQL): the worker waits on the projector's NOTIFY, not by polling."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from pathlib import Path

import pytest

from gateway.projected import ProjectedPosition
from gateway.runtime import Runtime
from services.ledger.domain import Posting, Side


def post_sale(runtime: Runtime, key: str) -> int:
    outcome = runtime.ledger.post_entry(
        key=key,
        actor="test",
        effective_date=date(2025, 3, 1),
        description="Shop takings",
        postings=[Posting("1000", Side.DEBIT, 1200), Posting("4100", Side.CREDIT, 1200)],
    )
    return outcome.position


@pytest.mark.postgres
def test_a_worker_waits_on_the_projectors_notifications(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)
    worker = Runtime(settings)  # no projector thread: like `coop serve` in production
    projector = Runtime(settings)  # like `coop projections run`
    stop = threading.Event()
    follower = threading.Thread(
        target=projector.projector.follow, args=(stop, 60.0), kwargs={"listen": True}
    )
    follower.start()

    async def sales() -> tuple[int, int, bool]:
        waits = 5
        for n in range(waits):
            position = post_sale(worker, f"sale-{n}")
            await worker.wait_for_position(position)
            # What read-your-writes promises: every read model is there.
            assert await worker.projected_position() >= position
        watch = worker._projected
        assert watch is not None
        listening = watch.listening
        await worker.aclose()
        return waits, watch.polls, listening

    try:
        waits, polls, listening = asyncio.run(sales())
    finally:
        stop.set()
        projector.projector.wake.set()
        follower.join(timeout=10)
        projector.close_sync()
        drop_schema(settings)
    assert listening
    # One read when the listener started, and a safety read only if a wait outlasted
    # SAFETY_POLL_S: not a polling loop per wait.
    assert polls < waits


@pytest.mark.postgres
def test_without_a_listener_the_worker_polls(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)
    worker = Runtime(settings)
    projector = Runtime(settings)
    stop = threading.Event()
    follower = threading.Thread(target=projector.projector.follow, args=(stop, 0.05))
    follower.start()

    async def sale() -> bool:
        channel = worker.projector.projected_channel
        assert channel is not None
        # Nobody answers on port 1: the LISTEN connection fails.
        worker._projected = ProjectedPosition(
            "postgresql://coop@127.0.0.1:1/none", channel, worker.projected_position
        )
        position = post_sale(worker, "sale")
        await worker.wait_for_position(position)
        reached = await worker.projected_position() >= position
        listening = worker._projected.listening
        await worker.aclose()
        return reached and not listening

    try:
        assert asyncio.run(sale())
    finally:
        stop.set()
        projector.projector.wake.set()
        follower.join(timeout=10)
        projector.close_sync()
        drop_schema(settings)

"""Read-your-writes in a gateway worker whose projector is another process
(PostgreSQL): the worker waits on the projector's NOTIFY, not by polling."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, event

from gateway.projected import ProjectedPosition
from gateway.runtime import ProjectionLag, Runtime
from services.common.projections import wait_until
from services.ledger.domain import Posting, Side
from services.ledger.projections.projector import LedgerProjection


def post_sale(runtime: Runtime, key: str) -> int:
    outcome = runtime.ledger.post_entry(
        key=key,
        actor="test",
        effective_date=date(2025, 3, 1),
        description="Shop takings",
        postings=[Posting("1000", Side.DEBIT, 1200), Posting("4100", Side.CREDIT, 1200)],
    )
    return outcome.position


class ProjectorProcess:
    """`coop projections run`, in a thread: LISTENs for commits (`listen`), and polls
    only every `poll_s`."""

    def __init__(self, runtime: Runtime, poll_s: float = 60.0, *, listen: bool = True) -> None:
        self.runtime = runtime
        self.poll_s = poll_s
        self.listen = listen
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(
            target=self.runtime.projector.follow,
            args=(self.stopping, self.poll_s),
            kwargs={"listen": self.listen},
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.runtime.projector.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None


@pytest.mark.postgres
def test_a_worker_waits_on_the_projectors_notifications(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path, read_your_writes_timeout_s=1.0)
    worker = Runtime(settings)  # no projector thread: like `coop serve` in production
    projector = Runtime(settings)
    process = ProjectorProcess(projector)
    process.start()

    async def sales() -> None:
        waits = 5
        for n in range(waits):
            position = post_sale(worker, f"sale-{n}")
            await worker.wait_for_position(position)
            # What read-your-writes promises: every read model is there.
            assert await worker.projected_position() >= position
        watch = worker._projected
        assert watch is not None
        assert watch.listening
        # The projector's notifications carry the position: the worker reads the
        # tracking table when it starts listening (and if it hears nothing for a
        # while), not once per notification (two a wait here: the sale's step and the
        # accrual's), nor in a polling loop per waiting request as the back-off did.
        assert watch.trusted >= waits
        assert watch.polls <= waits

        # A rebuild sets the read models back: a position the worker saw reached is
        # no longer, and the wait must not take the old reading for the truth.
        process.stop()
        heard = watch._heard
        with projector.sync_engine.begin() as conn:  # what `rebuild()` starts with
            for table in reversed(LedgerProjection.tables):
                conn.execute(delete(table))
            projector.projector._restart_from_zero(conn, LedgerProjection.name)
        # Its NOTIFY reaches this worker's loop (a request's own awaits let it in).
        for _ in range(500):
            if watch._heard != heard:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(ProjectionLag):
            await worker.wait_for_position(position)
        process.start()
        await worker.wait_for_position(position)
        assert await worker.projected_position() >= position
        await worker.aclose()

    try:
        asyncio.run(sales())
    finally:
        process.stop()
        projector.close_sync()
        drop_schema(settings)


@pytest.mark.postgres
def test_without_a_listener_the_worker_polls(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)
    worker = Runtime(settings)
    projector = Runtime(settings)
    process = ProjectorProcess(projector, poll_s=0.05, listen=False)
    process.start()

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
        process.stop()
        projector.close_sync()
        drop_schema(settings)


@pytest.mark.postgres
def test_each_store_has_its_own_channel(tmp_path: Path) -> None:
    """Channels are database-wide: one tenant's projector must not wake (or worse,
    vouch for) another tenant's workers."""
    from services.common.projections import projected_channel
    from services.ledger.application import LedgerApplication
    from tests.conftest import drop_schema, make_settings

    stores = [make_settings("postgres", tmp_path / name) for name in ("a", "b")]
    apps = [LedgerApplication(settings) for settings in stores]
    try:
        for channels in (
            [projected_channel(app) for app in apps],  # read models moved
            [getattr(app.recorder, "channel_name", None) for app in apps],  # events committed
        ):
            assert channels[0] != channels[1]
            assert all(c is not None and len(c) <= 63 for c in channels)
    finally:
        for app, settings in zip(apps, stores, strict=True):
            app.close()
            drop_schema(settings)


@pytest.mark.postgres
def test_live_updates_follow_the_projectors_notifications_without_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscription's next update comes with the projector's NOTIFY; while nothing
    moves, nobody reads the tracking table (each subscriber did, four times a second)."""
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)
    worker = Runtime(settings)
    projector = Runtime(settings)
    process = ProjectorProcess(projector)
    process.start()
    reads = 0
    read_positions = worker._settlement_positions

    async def counted_read() -> list[int]:
        nonlocal reads
        reads += 1
        return await read_positions()

    monkeypatch.setattr(worker, "_settlement_positions", counted_read)

    async def live() -> None:
        # What start-up wrote (the chart of accounts, the fund) projected first.
        await worker.wait_for_position(worker.ledger.recorder.max_notification_id() or 0)
        changes = worker.position_changes()
        first = await anext(changes)
        waiting = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.3)  # it starts listening (one read of the table)
        reads_when_listening = reads
        await asyncio.sleep(1.0)
        assert not waiting.done()
        assert reads == reads_when_listening
        position = post_sale(worker, "sale")
        assert await asyncio.wait_for(waiting, timeout=30) >= position > first
        watch = worker._projected
        assert watch is not None
        assert watch.trusted >= 1
        await changes.aclose()
        await worker.aclose()

    try:
        asyncio.run(live())
    finally:
        process.stop()
        projector.close_sync()
        drop_schema(settings)


def test_a_projector_process_follows_a_run_of_mutations_without_waiting_its_poll(
    tmp_path: Path, backend: str
) -> None:
    """`coop projections run` on SQLite has no NOTIFY to wake it, and the requests
    waiting for it are in other processes. While mutations keep coming it must look
    again soon after each step, not at its poll interval: each mutation waits for its
    step (read-your-writes). Five sales, each waited for in turn, within less than one
    poll interval in all (on PostgreSQL the LISTEN wakes it)."""
    from tests.conftest import drop_schema, make_settings

    settings = make_settings(backend, tmp_path)
    worker = Runtime(settings)
    projector = Runtime(settings)
    try:
        assert_a_run_of_sales_is_followed_within_one_poll(worker, projector)
    finally:
        worker.close_sync()
        projector.close_sync()
        drop_schema(settings)


def assert_a_run_of_sales_is_followed_within_one_poll(
    worker: Runtime, projector: Runtime, poll_s: float = 3.0
) -> None:
    """A projector process (listening) follows five sales, each waited for in turn,
    in less than one poll interval in all; the first may wait for a poll."""
    process = ProjectorProcess(projector, poll_s=poll_s, listen=True)
    process.start()

    def reached(position: int) -> bool:
        return wait_until(lambda: projector.projector.reached >= position, timeout_s=4 * poll_s)

    try:
        assert reached(post_sale(worker, "first"))
        started = time.monotonic()
        for n in range(5):
            assert reached(post_sale(worker, f"sale-{n}"))
        assert time.monotonic() - started < poll_s
    finally:
        process.stop()


@pytest.mark.postgres
def test_a_projector_process_whose_listen_fails_still_follows_mutations_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL the projector process is woken by NOTIFY. While its LISTEN
    connection cannot be had it must poll soon after events, as on SQLite, and not
    leave every mutation waiting for its poll interval."""
    import psycopg

    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)
    worker = Runtime(settings)
    projector = Runtime(settings)

    def refuse(*_args: object, **_kwargs: object) -> psycopg.Connection[object]:
        raise psycopg.OperationalError("connection refused")

    # Only the LISTEN connection is made with psycopg.connect; the event store's
    # connections come from its pool, made before this.
    monkeypatch.setattr(psycopg, "connect", refuse)
    try:
        assert_a_run_of_sales_is_followed_within_one_poll(worker, projector)
        assert "LISTEN failed (OperationalError); polling" in caplog.text
    finally:
        monkeypatch.undo()
        worker.close_sync()
        projector.close_sync()
        drop_schema(settings)


async def test_waiting_requests_share_one_poll_of_the_projected_position(
    tmp_path: Path,
) -> None:
    """SQLite with the projector in another process: nothing announces its progress,
    so the worker polls the tracking table. Sixteen requests waiting at once must
    share one poller, not poll it sixteen times over, and each still returns as soon
    as the projector has reached its position."""
    from tests.conftest import make_settings

    settings = make_settings("sqlite", tmp_path)
    worker = Runtime(settings)  # no projector thread: like `coop serve` workers
    projector = Runtime(settings)
    process = ProjectorProcess(projector, poll_s=0.05, listen=False)
    positions = [post_sale(worker, f"sale-{n}") for n in range(16)]
    reads: list[str] = []

    def count_read(*args: object) -> None:
        reads.append(str(args[2]))

    event.listen(worker.read_engine.sync_engine, "before_cursor_execute", count_read)
    try:
        waits = [asyncio.ensure_future(worker.wait_for_position(p)) for p in positions]
        await asyncio.sleep(0.3)  # nobody projects yet: they all wait
        assert not any(wait.done() for wait in waits)
        process.start()
        await asyncio.wait_for(asyncio.gather(*waits), timeout=5)
        assert await worker.projected_position() >= max(positions)
        # One waiter alone polls about ten times in 0.3 s (2 ms, doubling to 50 ms).
        assert len(reads) < 30, len(reads)
    finally:
        process.stop()
        await worker.aclose()
        projector.close_sync()


async def test_live_updates_wait_out_a_rebuild_instead_of_going_back(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review ws #3: a rebuild sets the projected position back to 0 and fills the read
    models again; subscribers were woken at each step and read the emptied or half
    filled tables (a till's totals went to null and back). Nothing is sent while the
    position is at or below what was shown; the next update is past it."""
    script = iter([40, 0, 12, 40, 41])

    async def projected() -> int:
        return 40

    async def next_position(_last: int) -> int:
        return next(script)

    monkeypatch.setattr(runtime, "projected_position", projected)
    monkeypatch.setattr(runtime, "_next_position", next_position)
    changes = runtime.position_changes()
    shown = [await anext(changes), await anext(changes)]
    await changes.aclose()
    assert shown == [40, 41]

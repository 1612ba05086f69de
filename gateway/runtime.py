"""The composition root: builds every application, engine and projector from Settings."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, TypeVar, cast

import anyio.to_thread
from sqlalchemy import Select, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import AUTH_TABLES, CredentialStore
from gateway.projected import PolledPosition, ProjectedPosition
from gateway.ratelimit import RateLimiter
from services.audit.application import AuditApplication
from services.audit.projections.projector import AuditChainProjection, AuditHeadsProjection
from services.common.database import (
    LoneReads,
    create_read_engine,
    create_sync_engine,
    create_tables,
    ensure_schema,
    projection_tracking,
    startup_lock,
)
from services.common.durability import check_durability
from services.common.eventstore import log_head_statement
from services.common.projections import Projection, ProjectionRunner
from services.common.sealing import KeyStore
from services.common.settings import ConfigurationError, Settings
from services.hotel.application import HotelApplication
from services.hotel.keys import KEY_TABLES as HOTEL_KEY_TABLES
from services.hotel.keys import ErasedGuestKeyShredder, hotel_guest_keys
from services.hotel.projections.projector import HotelProjection
from services.ledger.application import LedgerApplication
from services.ledger.funding import FundingApplication
from services.ledger.projections.funding_projector import FundingProjection
from services.ledger.projections.projector import LedgerProjection
from services.shop.application import ShopApplication
from services.shop.projections.projector import ShopProjection
from services.welfare_fund.application import WelfareFundApplication
from services.welfare_fund.keystore import KEY_TABLES as WELFARE_KEY_TABLES
from services.welfare_fund.keystore import KeyStore as BeneficiaryKeyStore
from services.welfare_fund.process import (
    PROCESS_TABLES,
    ForgottenKeyShredder,
    WelfareAccrualProcess,
    welfare_accrual_progress,
)
from services.welfare_fund.projections.projector import WelfareFundProjection

log = logging.getLogger("coop.runtime")

T = TypeVar("T")

# Live updates (subscriptions): with the projectors' notifications heard (PostgreSQL),
# the table is read only after this long without one (a safety net: a live LISTEN
# connection does not lose them); without (SQLite), it is read this often.
LIVE_QUIET_RECHECK_S = 5.0
LIVE_POLL_S = 0.25


class ProjectionLag(Exception):
    """The write succeeded but the read models did not catch up within the bounded wait."""

    def __init__(self, position: int, timeout_s: float) -> None:
        super().__init__(
            f"your change was saved (position {position}) but the read models did not "
            f"catch up within {timeout_s:g}s; retry with the same idempotency key "
            "to get the result"
        )
        self.position = position


class Runtime:
    def __init__(self, settings: Settings) -> None:
        if settings.is_production:
            check_durability(settings)
        self.settings = settings
        # Gateway workers and the projector start together; their CREATE ... IF NOT
        # EXISTS / OR REPLACE statements would collide on PostgreSQL ("tuple
        # concurrently updated"), so one process at a time sets the database up.
        with startup_lock(settings):
            self._set_up(settings)
        self._read_engine: AsyncEngine | None = None
        self._lone_reads: LoneReads | None = None
        self._settlement: Select[Any] | None = None
        self._projected: ProjectedPosition | None = None
        self._polled: PolledPosition | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _set_up(self, settings: Settings) -> None:
        ensure_schema(settings)
        self.sync_engine = create_sync_engine(settings)
        # Applications: one per context, all on the one store.
        self.ledger = LedgerApplication(settings)
        self.ledger.ensure_chart()
        self.audit = AuditApplication(settings, share_store_with=self.ledger)
        self.funding = FundingApplication(settings, self.ledger)
        self.shop = ShopApplication(settings, self.ledger)
        self.shop.ensure_config()
        self.hotel = HotelApplication(
            settings, self.ledger, KeyStore(self.sync_engine, hotel_guest_keys)
        )
        self.hotel.ensure_configuration()
        # Read models: one projection per context, all followed by one runner.
        # `coop audit replay` rebuilds and diffs every projection listed here.
        projections: list[Projection] = [
            LedgerProjection(),
            FundingProjection(),
            ShopProjection(),
            HotelProjection(),
            WelfareFundProjection(),
            AuditChainProjection(),
            AuditHeadsProjection(),
        ]

        create_tables(
            self.sync_engine,
            [
                *(t for p in projections for t in p.tables),
                *AUTH_TABLES,
                *WELFARE_KEY_TABLES,
                *HOTEL_KEY_TABLES,
                *PROCESS_TABLES,
            ],
        )
        # The welfare fund needs the key store (a table outside the event store).
        try:
            self.welfare = WelfareFundApplication(
                settings, self.ledger, BeneficiaryKeyStore(self.sync_engine)
            )
            self.welfare.ensure_fund()
        except ConfigurationError:
            self._close_applications()
            raise
        self.welfare_accrual = WelfareAccrualProcess(self.welfare, self.sync_engine)
        self.credentials = CredentialStore(self.sync_engine, settings.token_ttl_s)
        self.rate_limiter = RateLimiter(settings.mutations_per_minute)
        self.sign_in_limiter = RateLimiter(settings.sign_ins_per_minute)
        self.projector = ProjectionRunner(
            self.ledger,
            self.sync_engine,
            projections,
            page_size=settings.projection_page_size,
            # The shredders finish a forget or an erasure whose process died between
            # its event and deleting the key.
            processes=[
                self.welfare_accrual,
                ForgottenKeyShredder(self.welfare.keys),
                ErasedGuestKeyShredder(self.hotel.guest_keys),
            ],
        )

    @property
    def read_engine(self) -> AsyncEngine:
        # Created lazily, in the event loop that first uses it (asyncpg engines are
        # bound to the loop they were created in).
        if self._read_engine is None:
            self._read_engine = create_read_engine(self.settings)
        return self._read_engine

    @property
    def lone_reads(self) -> LoneReads:
        """Lone one-row SELECTs at the driver's cost: every request's authentication."""
        if self._lone_reads is None:
            self._lone_reads = LoneReads(self.settings, self.read_engine)
        return self._lone_reads

    async def fund_settled(self, positions: Sequence[int] | None = None) -> None:
        """Wait (bounded) until every ledger entry recorded before now is accrued and
        the accrual entries are in the read models (see the welfare fund's queries).

        `settlement()` reads, in one snapshot, the log's head, the accrual process's
        last write and what every projection reached (the runner commits the last two
        together): when the read models are already there, as when nothing is being
        written, that is the whole cost. `positions`: those three, if the caller read
        them already (with its own query). Otherwise: wait for the head, then for what
        the process wrote up to it."""
        if positions is None:
            positions = await self._settlement_positions()
        if self.is_settled(positions):
            return
        await self.wait_for_position(positions[0])
        await self.wait_for_position((await self._settlement_positions())[1])

    @staticmethod
    def is_settled(positions: Sequence[int]) -> bool:
        """`positions`: the settlement row's numbers (head, written, reached, ...)."""
        head, written, reached = positions[:3]
        return reached >= max(head, written)

    def settlement(self) -> Select[Any]:
        """One row: ("settlement", "", head, written, reached, 0), shaped like a fund
        balance row so that a fund query can add it to its own statement (UNION ALL)
        and learn in the same round trip whether its answer is settled. Built once."""
        if self._settlement is None:
            self._settlement = self._build_settlement()
        return self._settlement

    def _build_settlement(self) -> Select[Any]:
        head = log_head_statement(self.ledger.recorder).scalar_subquery()
        written = select(welfare_accrual_progress.c.written_position).scalar_subquery()
        tracked = projection_tracking.c.projection
        reached = (
            select(func.min(projection_tracking.c.position))
            .where(or_(*(tracked == name for name in self.projector.tracked_names)))
            .scalar_subquery()
        )
        # Typed loosely: LoneReads takes any SELECT.
        return cast(
            "Select[Any]",
            select(
                literal("settlement").label("scope"),
                literal("").label("key"),
                func.coalesce(head, 0).label("head"),
                func.coalesce(written, 0).label("written"),
                func.coalesce(reached, 0).label("reached"),
                literal(0).label("unused"),
            ),
        )

    async def _settlement_positions(self) -> list[int]:
        row = await self.lone_reads.first(self.settlement(), {})
        assert row is not None  # a SELECT of scalar subqueries always returns its row
        return [int(value) for value in list(row.values())[2:5]]

    # -- projector -------------------------------------------------------------

    def start_projector(self) -> None:
        """Follow the log in a background thread of this process (development mode)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self.projector.follow,
            args=(self._stop, self.settings.projector_poll_interval_s),
            name="coop-projector",
            daemon=True,
        )
        self._thread.start()

    async def wait_for_position(self, position: int) -> None:
        """Read-your-writes: wait (bounded) until every projection reached `position`."""
        if position <= 0:
            return
        if self._thread is not None and self.projector.reached >= position:
            return  # already there: no need to wake the projector or ask the database
        self.projector.wake.set()
        deadline = time.monotonic() + self.settings.read_your_writes_timeout_s
        if self._thread is not None:
            # The projector runs in this process: watch its position in memory rather
            # than asking the database (16 waiting requests were 16 polling clients).
            interval_s = 0.001
            while self.projector.reached < position:
                if time.monotonic() >= deadline:
                    raise ProjectionLag(position, self.settings.read_your_writes_timeout_s)
                self.projector.wake.set()
                await asyncio.sleep(interval_s)
                interval_s = min(interval_s * 2, 0.01)
            return
        watch = self._projected_watch()
        if watch is not None:
            if await watch.wait_until(position, deadline):
                return
            if time.monotonic() >= deadline:
                raise ProjectionLag(position, self.settings.read_your_writes_timeout_s)
            # Not listening (the connection failed or dropped): poll instead.
        if not await self._polled_watch().wait_until(position, deadline):
            raise ProjectionLag(position, self.settings.read_your_writes_timeout_s)

    def _projected_watch(self) -> ProjectedPosition | None:
        """The projector's announced position (PostgreSQL, projector in another process)."""
        channel = self.projector.projected_channel
        if channel is None:
            return None
        if self._projected is not None and self._projected.loop is not asyncio.get_running_loop():
            # A runtime used from another event loop (a CLI's asyncio.run): the old
            # connection belongs to a loop that is gone.
            self._projected = None
        if self._projected is None:
            dsn = self.settings.url.set(drivername="postgresql")
            self._projected = ProjectedPosition(
                dsn.render_as_string(hide_password=False),
                channel,
                self.projected_position,
                self.projector.payload_suffix,
            )
        return self._projected

    def _polled_watch(self) -> PolledPosition:
        """This worker's one poller of the projected position, for the waits that
        nothing announces (SQLite with the projector in another process)."""
        if self._polled is None or self._polled.loop is not asyncio.get_running_loop():
            self._polled = PolledPosition(self.projected_position)
        return self._polled

    async def position_changes(self) -> AsyncGenerator[int, None]:
        """The projected position now, then each time it moves (live updates).

        On PostgreSQL, where every projector NOTIFYs what it reached (in this process
        or another), a move is pushed as soon as the projector commits, and nobody
        reads the tracking table while nothing moves; on SQLite the table is read
        every LIVE_POLL_S.
        """
        last = await self.projected_position()
        yield last
        shown = last
        while True:
            position = await self._next_position(last)
            if position == last:
                continue
            last = position
            if position <= shown:
                # Set back (a rebuild empties the read models and fills them again):
                # what a subscriber would read now is older than what it was shown.
                # Nothing until the read models are past it again.
                continue
            shown = position
            yield position

    async def _next_position(self, last: int) -> int:
        """The projected position once it is not `last`, or as it is after a while."""
        watch = self._projected_watch()
        if watch is not None:
            moved = await watch.changed_from(last, time.monotonic() + LIVE_QUIET_RECHECK_S)
            if moved is not None:
                return moved
            if watch.listening:  # heard nothing for a while: look once
                return await self.projected_position()
        await asyncio.sleep(LIVE_POLL_S)  # nobody to hear (SQLite, a lost connection)
        return await self.projected_position()

    async def projected_position(self) -> int:
        """The position every projection of this runtime has reached."""
        return (await self._settlement_positions())[2]

    async def run_sync(self, fn: Callable[[], T]) -> T:
        """Commands go through the synchronous library: run them off the event loop."""
        return await anyio.to_thread.run_sync(fn)

    async def aclose(self) -> None:
        self.close_sync()
        if self._projected is not None:
            await self._projected.close()
            self._projected = None
        self._polled = None  # its poller ends with its last waiter
        if self._lone_reads is not None:
            await self._lone_reads.close()
            self._lone_reads = None
        if self._read_engine is not None:
            await self._read_engine.dispose()
            self._read_engine = None

    def close_sync(self) -> None:
        self._stop.set()
        self.projector.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._close_applications()

    def _close_applications(self) -> None:
        if hasattr(self, "welfare"):  # absent when its configuration was refused
            self.welfare.close()
        self.hotel.close()
        self.shop.close()
        self.funding.close()
        self.audit.close()
        self.ledger.close()  # last: it owns the store the others share
        self.sync_engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(settings)

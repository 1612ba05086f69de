"""The projection runner: follows the notification log and keeps read models.

Exactly-once: for each projection, the view changes of a page and the new tracking
position are committed in one transaction, and the position is advanced with a
compare-and-set (`WHERE position = <old>`), so two runners can never both apply a
page. Pages are `projection_page_size` notifications (1,000 by default).
Only notifications whose topic a projection declares are decoded. A `RawProjection`
(the audit chain) instead receives every notification of every topic as stored, undecoded.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import multiprocessing.util
import os
import sys
import threading
import time
import traceback
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from typing import Any, ClassVar

import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Notification
from psycopg import sql as psycopg_sql
from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    Engine,
    Index,
    Select,
    Table,
    Text,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.schema import CreateIndex

from services.common.database import advisory_lock_key, projection_tracking
from services.common.eventstore import CoopApplication
from services.common.settings import Settings

log = logging.getLogger("coop.projections")

DomainEvent = DomainEventProtocol[Any]
ProgressCallback = Callable[[int, int], None]  # (position reached, head)


# Marks (in Connection.info) a projector connection whose session commits without
# waiting for the disk.
RELAXED_COMMIT = "coop_relaxed_commit"

# A rebuild commits this many pages at a time: a replay's cost is dominated by its
# commits otherwise (about 20 ms each on SQLite with synchronous=FULL).
REBUILD_PAGES_PER_TRANSACTION = 10

# A projector that nobody can wake (its own process, on SQLite) looks again this soon
# after a step that applied events, then twice as late after each empty one, up to
# its poll interval.
UNWOKEN_BUSY_POLL_S = 0.005


def _described(exc: BaseException) -> str:
    """An error as the log may show it: its type, and for a database error its
    SQLSTATE, table and constraint. Not its text, which can quote the failing row's
    values (PostgreSQL's DETAIL: "Failing row contains (...)")."""
    parts = [type(exc).__name__]
    original = getattr(exc, "orig", exc)
    if original is not exc:
        parts.append(type(original).__name__)
    sqlstate = getattr(original, "sqlstate", None)
    diag = getattr(original, "diag", None)
    for label, value in (
        ("sqlstate", sqlstate),
        ("table", getattr(diag, "table_name", None)),
        ("constraint", getattr(diag, "constraint_name", None)),
    ):
        if value:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


class Projection(ABC):
    """A read model: its tables, the event topics it reads, and how it applies them."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    topics: ClassVar[frozenset[str]]
    # Tables `apply` only ever inserts into (never reads, updates or upserts): a replay
    # into empty scratch storage may load them without their primary key and add it
    # once at the end (audit/replay.py).
    insert_only_tables: ClassVar[tuple[Table, ...]] = ()

    @abstractmethod
    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        """Apply a page of (notification id, event), in order, inside `conn`'s transaction."""

    def erase_as_live_has(self, live: Connection, built: Connection) -> None:
        """In a replay's scratch built up to a past day (`coop audit replay --until`,
        kept for auditors to query), take out the personal data that an erasure since
        that day took out of the live read models (`live`): the past state is
        history, but not of a person's data she had erased. Nothing by default."""
        return


class PreparedProjection(Projection):
    """A read model whose page work splits in two: `prepare`, pure (events in, rows out:
    no connection, a picklable result), and `write` (those rows into the database).

    A rebuild runs `prepare` in worker processes, next to the runner's `write` of the
    page before (`ProjectionRunner.rebuild`): decoding and folding a page costs about
    as much as writing it, so on two cores the replay takes about half the time.
    """

    @abstractmethod
    def prepare(self, events: Sequence[tuple[int, DomainEvent]], dialect: Dialect) -> Any:
        """The page's rows, bound for `dialect`; no database access."""

    @abstractmethod
    def write(self, conn: Connection, prepared: Any) -> None:
        """Write what `prepare` returned, inside `conn`'s transaction."""

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        self.write(conn, self.prepare(events, conn.dialect))


class RawProjection(Projection):
    """A read model over every stored notification, undecoded (e.g. the audit hash chain).

    The chain must cover events of every context, including topics this process cannot
    decode, and must hash the stored bytes (ciphertext where encrypted) as they are.
    """

    topics: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def apply_notifications(self, conn: Connection, notifications: Sequence[Notification]) -> None:
        """Apply a page of notifications (all topics, in order) inside `conn`'s transaction."""

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        raise TypeError(f"{self.name} reads raw notifications; use apply_notifications")


class Process(ABC):
    """A follower that writes events, not read models (e.g. the welfare fund's accrual).

    The runner drives it with the read models, from the same read of the log: each
    step hands it the page's events of its `topics` (decoded once for everybody)
    before the projections apply the page, and tracks its position with theirs, in
    the page's transaction. Its effects are events, which the projections apply in
    the same step (`ProjectionRunner._fold`). It must be exactly-once on its own,
    through what it saves with its events (a page is handed over again after a crash,
    or to a second runner), since its writes commit before the runner's transaction
    does.
    """

    name: ClassVar[str]
    topics: ClassVar[frozenset[str]]

    @abstractmethod
    def handle(self, events: Sequence[tuple[int, DomainEvent]]) -> int | None:
        """Act on (notification id, event) of its topics, in log order; return the
        highest notification id it wrote, or None if it wrote nothing."""

    @abstractmethod
    def record(self, conn: Connection, written: int) -> None:
        """Note, in the runner's transaction, that `handle` wrote up to `written`."""

    # Added to a store that is already followed (a new release), a process starts from
    # event 0 unless it can do its part for the log so far on its own (`catch_up`):
    # then it starts where the others are. From 0, its walk of the log held back every
    # read model and read-your-writes wait until it reached the head.
    catches_up_on_its_own: ClassVar[bool] = False

    def catch_up(self, app: CoopApplication, up_to: int) -> None:
        """Do what `handle` would have done for the log up to `up_to`."""
        raise NotImplementedError(f"{self.name} starts from event 0")


class TrackingConflict(Exception):
    """Another runner advanced this projection first; the page was rolled back."""


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


def page_for(
    projection: Projection,
    notifications: Sequence[Notification],
    mapper: Any,
    decoded: dict[int, DomainEvent],
) -> Sequence[Any]:
    """What `projection` reads of `notifications`: all of them, as stored, for a
    RawProjection; else (id, event) for those of its topics, each decoded once across
    projections (`decoded`)."""
    if isinstance(projection, RawProjection):
        return notifications
    topics = projection.topics
    return [(n.id, decode_once(mapper, n, decoded)) for n in notifications if n.topic in topics]


def decode_once(
    mapper: Any, notification: Notification, cache: dict[int, DomainEvent]
) -> DomainEvent:
    event = cache.get(notification.id)
    if event is None:
        event = mapper.to_domain_event(notification)
        cache[notification.id] = event
    return event


def apply_page(conn: Connection, projection: Projection, page: Sequence[Any]) -> None:
    """Apply what `page_for` gave: (id, event) pairs, or notifications for a
    RawProjection."""
    if isinstance(projection, RawProjection):
        projection.apply_notifications(conn, page)
    else:
        projection.apply(conn, page)


class ProjectionRunner:
    def __init__(
        self,
        app: CoopApplication,
        engine: Engine,
        projections: Sequence[Projection],
        *,
        page_size: int,
        processes: Sequence[Process] = (),
    ) -> None:
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.processes = list(processes)
        # Read-your-writes waits for all of them (gateway/runtime.py).
        self.tracked_names = [p.name for p in self.projections] + [p.name for p in self.processes]
        # The lowest position of every projection and process, as the tracking table
        # held it at this runner's last step (so other runners' work counts too).
        # Read-your-writes waits in this process compare against it in memory.
        self.reached = 0
        # The tracked positions as this runner last committed or read them (None: read
        # them at the next step). See `_known_positions`.
        self._positions: dict[str, int] | None = None
        # On PostgreSQL each step that moves the read models NOTIFYs on this channel,
        # so gateway workers in other processes wake their waiting requests at once
        # (gateway/projected.py) instead of each polling the tracking table.
        self.projected_channel = (
            projected_channel(app) if engine.dialect.name == "postgresql" else None
        )
        # Ends this runner's NOTIFY payloads; a worker whose runtime tracks the same
        # names trusts the position before it (gateway/projected.py).
        names = ",".join(sorted(set(self.tracked_names)))
        self.payload_suffix = f":{hashlib.sha256(names.encode()).hexdigest()[:16]}"
        self._reached_query: Select[Any] | None = None
        self.page_size = page_size
        self._wanted_topics = frozenset().union(*(p.topics for p in self.projections))
        self.wake = threading.Event()
        self.reset_changed_read_models()
        self.ensure_tracking_rows()
        self.ensure_indexes()

    # -- schema ----------------------------------------------------------------

    def reset_changed_read_models(self) -> list[str]:
        """Empty, recreate and re-project every read model whose stored tables no longer
        match their definition (columns or primary key); return their names.

        A read model is derived data: after an upgrade that changes its shape, the one
        correct migration is to build it again from the log. Its tables are recreated
        from the definitions and its position goes back to 0, so the runner replays it
        at once (and a running gateway's read-your-writes waits meanwhile).
        """
        reset: list[str] = []
        with self.engine.begin() as conn:
            changed_tables = set(
                _changed_tables(conn, [t for p in self.projections for t in p.tables])
            )
            for projection in self.projections:
                changed = [t.name for t in projection.tables if t.name in changed_tables]
                if not changed:
                    continue
                if not reset:
                    # The tracking table before the read models' tables, as a rebuild
                    # and a projector step take them: the other order deadlocked with a
                    # rebuild running while a process of another release started.
                    _lock_tracking(conn)
                log.warning(
                    "read model %s: tables %s differ from their definition; rebuilding it",
                    projection.name,
                    ", ".join(changed),
                )
                for table in reversed(projection.tables):
                    table.drop(conn, checkfirst=True)
                for table in projection.tables:
                    table.create(conn)
                self._restart_from_zero(conn, projection.name)
                reset.append(projection.name)
        return reset

    # -- tracking --------------------------------------------------------------

    def ensure_tracking_rows(self) -> None:
        t = projection_tracking.c
        with self.engine.connect() as conn:
            known = {name: int(at) for name, at in conn.execute(select(t.projection, t.position))}
        missing = [name for name in self.tracked_names if name not in known]
        if not missing:
            return
        followed = [known[name] for name in self.tracked_names if name in known]
        others_at = min(followed, default=0)
        processes = {process.name: process for process in self.processes}
        rows = []
        for name in missing:
            process = processes.get(name)
            start = 0
            if process is not None and process.catches_up_on_its_own and others_at > 0:
                # Before its row exists: interrupted, the next start catches up again.
                process.catch_up(self.app, others_at)
                start = others_at
            rows.append({"projection": name, "position": start})
        with self.engine.begin() as conn:
            conn.execute(insert(projection_tracking), rows)

    def positions(self) -> dict[str, int]:
        """The read models' positions (not the processes')."""
        with self.engine.connect() as conn:
            tracked = self._read_positions(conn)
        return {p.name: tracked[p.name] for p in self.projections if p.name in tracked}

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def status(self) -> list[ProjectionStatus]:
        head = self.head()
        positions = self.positions()
        return [ProjectionStatus(p.name, positions.get(p.name, 0), head) for p in self.projections]

    # -- processing ------------------------------------------------------------

    def step(self, conn: Connection, pages: int = 1, read_ahead: _ReadAhead | None = None) -> int:
        """Process up to `pages` pages for every process and projection behind, writing
        with `conn`; return the notifications read, or a full count (more to do) when a
        process wrote events beyond what the step could fold in (see `_step`)."""
        notifications, more = self._step(conn, pages, read_ahead)
        return self.page_size * pages if more else len(notifications)

    def _step(
        self, conn: Connection, pages: int, read_ahead: _ReadAhead | None
    ) -> tuple[Sequence[Notification], bool]:
        """One read of the log for everyone behind. Processes act on it first (their
        events commit on their own); then all projections' changes, every tracked
        position and the new `reached` commit in ONE transaction: one commit (one WAL
        flush) for the page, which is most of a small page's cost and so of a
        mutation's read-your-writes wait. Gateway workers are told in that commit.

        What the processes wrote is projected in the same transaction (`_fold`), so a
        sale's accrual is visible as soon as the sale is. Returns the notifications
        read and whether more may be waiting (a process wrote beyond what was folded).
        """
        fresh = self._positions is None
        # This step's own copy: a runner shared by two threads (a demo load catching up
        # beside the gateway's projector thread) must not see the other's step move
        # the positions in the middle of this one (`_fold` would then take a moved
        # position for where this step started, and apply events twice).
        positions = dict(self._known_positions(conn))
        start = min(positions.values(), default=0)
        notifications = (
            read_ahead.take(start, pages) if read_ahead else self._read_pages(start, pages)
        )
        if not notifications:
            if not fresh:  # idle: see what other runners (or a rebuild) did meanwhile
                positions = self._known_positions(conn, fresh=True)
                if min(positions.values(), default=0) < start:
                    # Moved back (a rebuild reset it, possibly while a step of another
                    # thread put back the copy this step read): the log from there
                    # is still to apply, so this is not the end. Taken for the end, a
                    # rebuild returned with its read models empty.
                    return notifications, True
            self.reached = min(positions.values(), default=0)
            return notifications, False
        # What each projection and process has not seen yet, and where it moves to.
        batches: dict[str, list[Notification]] = {}
        moves: dict[str, tuple[int, int]] = {}  # name -> (old, new position)
        for name, position in positions.items():
            batch = [n for n in notifications if n.id > position]
            if batch:
                batches[name] = batch
                moves[name] = (position, batch[-1].id)
        decoded: dict[int, DomainEvent] = {}
        written: dict[str, tuple[Process, int]] = {}  # name -> (process, last written)
        more = self._run_processes(batches, decoded, written)
        if more and read_ahead is None:
            more = self._fold(notifications, positions, batches, moves, decoded, written)
        try:
            with projector_transaction(conn):
                work = [
                    (
                        projection,
                        page_for(projection, batches[projection.name], self.app.mapper, decoded),
                    )
                    for projection in self.projections
                    if projection.name in batches
                ]
                _advance_tracking(conn, moves)
                for process, last in written.values():
                    process.record(conn, last)
                for projection, page in work:
                    if page:
                        apply_page(conn, projection, page)
                reached = self._reached_and_announced(conn)
        except TrackingConflict as conflict:
            # Another runner applied (part of) these pages first; ours rolled back
            # entirely. The next step starts from the positions it left. What a
            # process wrote stands (it is exactly-once on its own): note it apart.
            log.info("projection %s advanced by another runner", conflict)
            self._positions = None
            if written:
                with projector_transaction(conn):
                    for process, last in written.values():
                        process.record(conn, last)
            return notifications, bool(written)
        except BaseException:
            self._positions = None
            raise
        positions.update({name: new for name, (_old, new) in moves.items()})
        self._positions = positions
        self.reached = reached
        return notifications, more

    def _run_processes(
        self,
        batches: dict[str, list[Notification]],
        decoded: dict[int, DomainEvent],
        written: dict[str, tuple[Process, int]],
    ) -> bool:
        """Hand each process its batch's events of its topics; note in `written` how
        far each one wrote; return whether any wrote now."""
        wrote = False
        for process in self.processes:
            events = [
                (n.id, decode_once(self.app.mapper, n, decoded))
                for n in batches.get(process.name, ())
                if n.topic in process.topics
            ]
            last = process.handle(events) if events else None
            if last is not None:
                wrote = True
                earlier = written.get(process.name, (process, 0))[1]
                written[process.name] = (process, max(earlier, last))
        return wrote

    def _fold(
        self,
        notifications: Sequence[Notification],
        positions: dict[str, int],
        batches: dict[str, list[Notification]],
        moves: dict[str, tuple[int, int]],
        decoded: dict[int, DomainEvent],
        written: dict[str, tuple[Process, int]],
    ) -> bool:
        """Add the page after `notifications` to everyone's batch: it holds what the
        processes just wrote (committed) and whatever else came in meanwhile. The
        processes act on it too (their own events they skip); return whether more may
        be waiting: they wrote again, or the page did not reach all they wrote.

        Without it every page that makes a process write (each page of sales accrues
        to the welfare fund) costs a second step, a second transaction, commit and
        NOTIFY, for the events it wrote; measured, a third of the projector's work
        under sales load.
        """
        extension = self._read_pages(notifications[-1].id, 1)
        added: dict[str, list[Notification]] = {}
        for name, position in positions.items():
            seen = moves[name][1] if name in moves else position
            after = [n for n in extension if n.id > seen]
            if after:
                added[name] = after
                batches[name] = batches.get(name, []) + after
                moves[name] = (position, after[-1].id)
        highest_written = max(last for _process, last in written.values())
        wrote_again = self._run_processes(added, decoded, written)
        covered = bool(extension) and extension[-1].id >= highest_written
        return wrote_again or not covered or len(extension) == self.page_size

    def _known_positions(self, conn: Connection, *, fresh: bool = False) -> dict[str, int]:
        """Every tracked position, as this runner last committed or read them.

        Kept between steps rather than read each time: a position another runner (or a
        rebuild) moved meanwhile fails the next compare-and-set, and the step after
        that reads them again; so does an idle step.
        """
        if fresh or self._positions is None:
            with projector_transaction(conn):
                self._positions = self._read_positions(conn)
        return self._positions

    def _read_positions(self, conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(projection_tracking.c.projection, projection_tracking.c.position).where(
                projection_tracking.c.projection.in_(self.tracked_names)
            )
        ).all()
        return {name: int(position) for name, position in rows}

    def _reached_and_announced(self, conn: Connection) -> int:
        """The lowest tracked position, in the page's transaction; on PostgreSQL also
        a NOTIFY of it, delivered with the commit, in the same round trip.

        The payload is the position then `payload_suffix` (a hash of the tracked
        names): a gateway worker that tracks the same names takes the position as read
        from the table (notifications arrive in commit order), any other only as a
        wake-up.
        """
        query = self._reached_query
        if query is None:  # built once: building it cost more than running it
            t = projection_tracking.c
            reached = func.min(t.position)
            query = select(reached).where(t.projection.in_(self.tracked_names))
            if self.projected_channel is not None:
                payload = func.concat(reached.cast(Text), self.payload_suffix)
                query = query.add_columns(func.pg_notify(self.projected_channel, payload))
            self._reached_query = query
        return int(conn.execute(query).scalar_one_or_none() or 0)

    @contextmanager
    def projector_connection(self) -> Iterator[Connection]:
        """A connection whose commits do not wait for the disk (see docs/adr/0001).

        Read models are derived data and each page commits with its tracking position:
        if a crash loses the last commits, both roll back together and the runner
        re-applies those pages. So their commits need not wait for the WAL flush
        (PostgreSQL synchronous_commit=off for the transaction; SQLite in WAL mode with
        synchronous=NORMAL for this connection). Never inconsistent, only re-done; the
        event store, key store and credentials keep full durability.
        """
        with self.engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            is_sqlite = conn.dialect.name == "sqlite"
            # On the driver connection, outside any transaction: through SQLAlchemy
            # it would open one, and the setting is for the session. For the session
            # rather than each transaction (SET LOCAL): one round trip for the whole
            # of `follow`, not one per page.
            relax, restore = (
                ("PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL")
                if is_sqlite
                else ("SET synchronous_commit = off", "RESET synchronous_commit")
            )
            _execute_outside_transaction(driver, relax)
            conn.info[RELAXED_COMMIT] = True
            try:
                yield conn
            finally:
                conn.info.pop(RELAXED_COMMIT, None)
                try:
                    _execute_outside_transaction(driver, restore)
                except Exception:
                    # Never hand a relaxed connection back to a pool.
                    conn.invalidate()

    def _read_pages(self, start: int, pages: int) -> list[Notification]:
        return [
            n
            for page in read_log(self.app.recorder, start, self.page_size, max_pages=pages)
            for n in page
        ]

    def run_until_caught_up(
        self,
        progress: ProgressCallback | None = None,
        *,
        pages_per_transaction: int | None = None,
        connection: Connection | None = None,
    ) -> int:
        """Apply pages until the log's end, on one connection (its page cache stays warm).

        `pages_per_transaction` pages commit together (a rebuild uses several: fewer
        commits, the same exactly-once tracking). By default it adapts: one page while
        the runner follows the log's end (a mutation's read-your-writes wait is one
        small transaction), doubling up to REBUILD_PAGES_PER_TRANSACTION while each
        transaction comes back full, i.e. while the runner is catching up.
        `connection`: a `projector_connection` to use (`follow` keeps one).
        """
        pages = pages_per_transaction or 1
        processed = 0
        # A rebuild reads the next pages while it applies these. Not on SQLite: its
        # driver releases the GIL for every row it fetches, and a reading thread would
        # then wait for the GIL once per row.
        read_ahead = (
            _ReadAhead(self._read_pages, self.page_size)
            if pages_per_transaction and self.engine.dialect.name == "postgresql"
            else None
        )
        with (
            nullcontext(connection) if connection else self.projector_connection() as conn,
            read_ahead or nullcontext(),
        ):
            while True:
                with collector_paused() if pages > 1 else nullcontext():
                    count = self.step(conn, pages, read_ahead)
                processed += count
                if progress is not None:
                    progress(min(self.positions().values(), default=0), self.head())
                if count < self.page_size * pages:
                    return processed
                if pages_per_transaction is None:
                    pages = min(pages * 2, REBUILD_PAGES_PER_TRANSACTION)

    def _notify_projected(self, conn: Connection) -> None:
        if self.projected_channel is not None:
            conn.execute(select(func.pg_notify(self.projected_channel, "0")))

    def _restart_from_zero(self, conn: Connection, projection_name: str) -> None:
        """Set a projection's tracking position back to 0 (its tables were just emptied),
        telling gateway workers in the same transaction: a position they read before is
        no longer true."""
        self._positions = None
        conn.execute(
            update(projection_tracking)
            .where(projection_tracking.c.projection == projection_name)
            .values(position=0, updated_at=datetime.now(UTC))
        )
        self._notify_projected(conn)

    def follow(
        self, stop: threading.Event, poll_interval_s: float, *, listen: bool = False
    ) -> None:
        """Catch up, then follow the log until `stop` is set. Errors are logged and retried.

        `listen`: on PostgreSQL, also wake as soon as events are committed (the insert
        function NOTIFYs; see `_wake_on_notify`), so a projector in its own process
        does not leave a mutation's read-your-writes wait to the poll interval. A
        projector thread inside the gateway does not need it: the request that waits
        wakes it (`Runtime.wait_for_position`). On SQLite there is nothing to LISTEN
        to: a projector asked to listen polls soon after events instead (below).
        """
        backoff_s = poll_interval_s
        # A projector process on SQLite has nothing to wake it: no NOTIFY, and the
        # requests that wait for it are in other processes. It polls, soon after
        # events came (each mutation waits for its step) and less often while none
        # do. Measured: two gateway workers and a projector process on SQLite rang
        # 77 sales/s with a fixed 0.2 s poll, each sale waiting for the next poll.
        # The same on PostgreSQL while its LISTEN connection is down.
        with self._wake_on_notify(stop) if listen else nullcontext(None) as listening:
            while not stop.is_set():
                try:
                    # One connection while it works: its session settings and
                    # prepared statements outlive each catch-up.
                    with self.projector_connection() as conn:
                        wait_s = poll_interval_s
                        while not stop.is_set():
                            processed = self.run_until_caught_up(connection=conn)
                            backoff_s = poll_interval_s
                            if listen and not (listening and listening.is_set()):
                                wait_s = min(
                                    UNWOKEN_BUSY_POLL_S if processed else wait_s * 2,
                                    poll_interval_s,
                                )
                            else:
                                wait_s = poll_interval_s
                            self.wake.wait(timeout=wait_s)
                            self.wake.clear()
                except Exception as exc:
                    log.error(
                        "projection runner failed (%s); retrying in %.1fs\n%s",
                        _described(exc),
                        backoff_s,
                        "".join(traceback.format_tb(exc.__traceback__)),
                    )
                    # The back-off holds against `wake`: every request waiting for
                    # read-your-writes sets it every few milliseconds, and cut short,
                    # one waiting request meant about 95 failed steps and tracebacks
                    # a second.
                    stop.wait(timeout=backoff_s)
                    backoff_s = min(backoff_s * 2, 30.0)
                    self.wake.clear()

    @contextmanager
    def _wake_on_notify(self, stop: threading.Event) -> Iterator[threading.Event | None]:
        """A thread that LISTENs on the events table's channel and sets `wake`.

        Yields an event that is set while the LISTEN is in effect (None where there is
        nothing to listen to), so that `follow` polls soon after events meanwhile.
        """
        channel = getattr(self.app.recorder, "channel_name", None)
        if self.engine.dialect.name != "postgresql" or channel is None:
            yield None
            return
        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        done = threading.Event()
        listening = threading.Event()

        def listen() -> None:
            while not (stop.is_set() or done.is_set()):
                try:
                    with psycopg.connect(conninfo, autocommit=True) as listener:
                        listener.execute(
                            psycopg_sql.SQL("LISTEN {}").format(psycopg_sql.Identifier(channel))
                        )
                        listening.set()
                        # A commit between the runner's last read and this LISTEN was
                        # announced to nobody: look once more, or it waits for the poll.
                        self.wake.set()
                        while not (stop.is_set() or done.is_set()):
                            for _notify in listener.notifies(timeout=0.5):
                                self.wake.set()
                except psycopg.Error as exc:
                    # Polling still runs, soon after events (`follow`), until it is back.
                    listening.clear()
                    log.warning("projector: LISTEN failed (%s); polling", type(exc).__name__)
                    done.wait(5.0)
                listening.clear()

        thread = threading.Thread(target=listen, name="coop-projector-listen", daemon=True)
        thread.start()
        try:
            yield listening
        finally:
            done.set()
            thread.join(timeout=2.0)

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        progress: ProgressCallback | None = None,
        *,
        workers: int | None = None,
    ) -> int:
        """Empty the named read models and replay them from event 0.

        `workers`: processes that decode and prepare pages for the projections that
        can (`PreparedProjection`) while this one writes; 0 for a serial replay; by
        default one per CPU, at most four, none on one CPU (`default_rebuild_workers`).

        Their secondary indexes are dropped for the replay and built again at the end:
        building an index once over all rows costs a fraction of keeping it up to date
        row by row. If the rebuild is interrupted, the next runner to start recreates
        them (`ensure_indexes`); the tables are complete up to their tracked position
        either way.
        """
        selected = set(names) if names is not None else {p.name for p in self.projections}
        unknown = selected - {p.name for p in self.projections}
        if unknown:
            raise ValueError(f"unknown projections: {', '.join(sorted(unknown))}")
        rebuilt = [p for p in self.projections if p.name in selected]
        with self.engine.begin() as conn:
            # The tracking rows first, as a projector step takes them (it moves its
            # positions, then writes its rows). Emptied first, the tables kept the rows
            # of a step in flight, which the replay then wrote again (a duplicate key,
            # or a daily balance counted twice), or the two deadlocked. On PostgreSQL
            # the table lock waits for every step in flight and holds back the next
            # (whose compare-and-set then fails: it starts again from 0).
            _lock_tracking(conn)
            for projection in rebuilt:
                self._restart_from_zero(conn, projection.name)
            for projection in rebuilt:
                for table in reversed(projection.tables):
                    conn.execute(delete(table))
                for _table, index in secondary_indexes([projection]):
                    index.drop(conn, checkfirst=True)
        if workers is None:
            workers = default_rebuild_workers()
        processed = self._replay_in_parallel(rebuilt, workers, progress) if workers > 0 else 0
        processed += self.run_until_caught_up(
            progress, pages_per_transaction=REBUILD_PAGES_PER_TRANSACTION
        )
        self.ensure_indexes(rebuilt)
        return processed

    def _replay_in_parallel(
        self, rebuilt: Sequence[Projection], workers: int, progress: ProgressCallback | None
    ) -> int:
        """Replay the log up to its current head with `prepare` in `workers` processes;
        return the notifications read. The runner's `run_until_caught_up` does the rest.

        The log is cut into ranges of a rebuild transaction each. Workers read, decode
        and prepare ranges ahead; this process writes them in log order, each range and
        the new tracking positions in one transaction, as a serial replay does (so an
        interrupted rebuild resumes from its last commit, serially). Projections that do
        not prepare are applied here, from this process's own read of the range.
        Nothing happens (0) where processes cannot be forked, or for a short log.
        """
        prepared = [p for p in rebuilt if isinstance(p, PreparedProjection)]
        if not prepared:
            return 0
        positions = self.positions()
        start = positions[rebuilt[0].name]
        if any(positions[p.name] != start for p in rebuilt):
            return 0  # moved by another runner meanwhile: leave it to the serial path
        head = self.head()
        ranges = RangePreparers.ranges(start, head, self.page_size * REBUILD_PAGES_PER_TRANSACTION)
        if not ranges:
            return 0
        others = [p for p in rebuilt if not isinstance(p, PreparedProjection)]
        processed = 0
        preparers = RangePreparers(
            self.app.settings,
            self.app.mapper,
            prepared,
            self.engine.dialect,
            self.page_size,
            label="rebuild",
        )
        # The workers are forked at the first range asked for, inside this
        # `collector_paused` and while this process has no transaction open; closing
        # the ranges (a conflict, an error here) stops them.
        with (
            self.projector_connection() as conn,
            collector_paused(),
            closing(preparers.run(ranges, workers)) as prepared_ranges,
        ):
            try:
                for low, high, count, pages in prepared_ranges:
                    with projector_transaction(conn):
                        _advance_tracking(conn, {p.name: (low, high) for p in rebuilt})
                        for projection in prepared:
                            projection.write(conn, pages[projection.name])
                        if others:
                            self._apply_range(conn, others, low, high)
                    processed += count
                    if progress is not None:
                        progress(high, head)
            except TrackingConflict as conflict:
                log.info("rebuild: projection %s advanced by another runner", conflict)
        log.info("rebuild: %d notifications prepared by %d worker processes", processed, workers)
        return processed

    def _apply_range(
        self, conn: Connection, projections: Sequence[Projection], low: int, high: int
    ) -> None:
        """Apply the notifications in (low, high] to `projections`, read and decoded here."""
        notifications = [
            n for page in read_log(self.app.recorder, low, self.page_size, stop=high) for n in page
        ]
        decoded: dict[int, DomainEvent] = {}
        for projection in projections:
            page = page_for(projection, notifications, self.app.mapper, decoded)
            if page:
                apply_page(conn, projection, page)

    def ensure_indexes(self, projections: Sequence[Projection] | None = None) -> None:
        """Create any declared index of the projections' tables that is missing."""
        tables = [table for p in projections or self.projections for table in p.tables]
        with self.engine.connect() as conn:
            # Inspect first: CREATE INDEX locks the table even when the index exists,
            # and every process runs this at start. One catalog read for all tables.
            stored = inspect(conn).get_multi_indexes(filter_names=[t.name for t in tables])
        named = {key[1]: {index["name"] for index in indexes} for key, indexes in stored.items()}
        missing = [
            index
            for table in tables
            for index in table.indexes
            if index.name not in named.get(table.name, set())
        ]
        for index in missing:
            # One transaction each: CREATE INDEX holds its table's SHARE lock until
            # commit. Held across tables, a live projector step writing two of them
            # waited for one while holding the other: a deadlock. IF NOT EXISTS for
            # the race of several processes starting at once.
            with self.engine.begin() as conn:
                conn.execute(CreateIndex(index, if_not_exists=True))


class _ReadAhead:
    """The log's next pages, read in a thread while the current ones are applied.

    With psycopg the thread holds no GIL while PostgreSQL runs the query and sends the
    rows, so the read overlaps the decoding and applying of the page before it.
    """

    def __init__(self, read: Callable[[int, int], list[Notification]], page_size: int) -> None:
        self._read = read
        self._page_size = page_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coop-read-ahead")
        self._pending: tuple[int, int, Future[list[Notification]]] | None = None

    def take(self, start: int, pages: int) -> list[Notification]:
        """The notifications after `start` (up to `pages` pages), as `_read_pages`."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[:2] == (start, pages):
            notifications = pending[2].result()
        else:
            if pending is not None:
                pending[2].cancel()
            notifications = self._read(start, pages)
        if len(notifications) == self._page_size * pages:  # more may follow
            after = notifications[-1].id
            self._pending = (after, pages, self._executor.submit(self._read, after, pages))
        return notifications

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def read_log(
    recorder: ApplicationRecorder,
    start: int,
    page_size: int,
    *,
    stop: int | None = None,
    max_pages: int | None = None,
) -> Iterator[Sequence[Notification]]:
    """The notification log after `start` (up to `stop`, inclusive), page by page, until
    a page comes back short or `max_pages` were read."""
    pages = 0
    while True:
        page = recorder.select_notifications(
            start=start, limit=page_size, stop=stop, inclusive_of_start=False
        )
        yield page
        pages += 1
        if len(page) < page_size or (max_pages is not None and pages >= max_pages):
            return
        start = page[-1].id


def can_fork_workers() -> bool:
    """Whether a rebuild may fork worker processes: on Linux (macOS's system libraries
    are not safe to use after fork, and Windows has no fork)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def default_rebuild_workers() -> int:
    """One worker per CPU, at most four; none on a single CPU, where they would only
    add the cost of sending rows between processes. (This process mostly waits for
    the database and the workers; past four, it is the bottleneck.)"""
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(cpus, MAX_REBUILD_WORKERS)


MAX_REBUILD_WORKERS = 4


class RangePreparers:
    """Worker processes that read ranges of the log, decode them and `prepare` them for
    PreparedProjections, ahead of the one process that writes them in log order (a
    rebuild, an audit replay).

    Each worker reads with a connection of its own (`settings`' store) and decodes with
    the parent's `mapper`. `keep`: which notifications count at all (an audit replay as
    of a date leaves out what was recorded later); `stops`: a projection's last
    position (past it, its events are left out). Workers are forked (Linux only, see
    `can_fork_workers`): the caller forks them, at the first range `run` asks for,
    inside `collector_paused` and with no transaction open. `label` names the caller
    in the log.
    """

    def __init__(
        self,
        settings: Settings,
        mapper: Any,
        projections: Sequence[PreparedProjection],
        dialect: Dialect,
        page_size: int,
        *,
        label: str,
        keep: Callable[[Notification], bool] | None = None,
        stops: dict[str, int] | None = None,
    ) -> None:
        self._initargs = (settings, mapper, projections, dialect, page_size, keep, stops)
        self.label = label

    @staticmethod
    def ranges(start: int, end: int, span: int) -> list[tuple[int, int]]:
        """The (low, high] ranges of `span` positions from `start` to `end`, for workers
        to prepare; none where they cannot be forked, or for fewer than two spans (not
        worth starting them)."""
        if not can_fork_workers() or end - start < 2 * span:
            return []
        return [(low, min(low + span, end)) for low in range(start, end, span)]

    def run(
        self, ranges: Sequence[tuple[int, int]], workers: int
    ) -> Generator[tuple[int, int, int, dict[str, Any]], None, None]:
        """(low, high, notifications read, prepared rows by projection name) for each
        range (low, high], in order; at most two ranges a worker in flight, so memory
        stays bounded.

        If a worker fails (an error of its own, or it died), this logs it and stops:
        the caller goes on serially from the first range not yielded, and meets the
        error there if it is the data's. An error of the caller's own work between
        ranges is the caller's: it is not caught here."""
        # Fork, not spawn: a spawned worker would first spend about a second importing
        # the application. The children use nothing of the parent's but the mapper and
        # the projections (plain objects); each opens its own connection. On SQLite
        # (WAL) a child still inherits the lock bookkeeping of this process's open
        # connections, so its reader takes its own WAL read lock but counts on this
        # process's SHARED lock on the file: that holds while the caller keeps its
        # application's connections open.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_range_worker,
            initargs=self._initargs,
        ) as pool:
            ahead = iter(ranges)
            with warnings.catch_warnings():
                # Python 3.12+ warns when a process with threads forks (a lock another
                # thread held stays held in the child). The children take no lock of
                # the parent's: they open their own connections and decode in memory.
                # With fork, every worker starts at the first submit.
                warnings.filterwarnings("ignore", "This process .* use of fork", DeprecationWarning)
                pending = deque(
                    (r, pool.submit(_prepare_range, *r)) for r in islice(ahead, 2 * workers)
                )
            try:
                while pending:
                    (low, high), future = pending.popleft()
                    try:
                        count, pages = future.result()
                    except Exception as exc:  # BrokenProcessPool: a worker died
                        log.warning(
                            "%s: a worker failed (%s); going on serially",
                            self.label,
                            type(exc).__name__,
                        )
                        return
                    for next_range in islice(ahead, 1):
                        pending.append((next_range, pool.submit(_prepare_range, *next_range)))
                    yield low, high, count, pages
            finally:
                for _range, future in pending:
                    future.cancel()


@dataclass
class _RangeWorker:
    """A range worker process's state: its own reader of the store, the parent's
    mapper (to decode as the parent would) and the projections to prepare."""

    reader: CoopApplication
    mapper: Any
    projections: Sequence[PreparedProjection]
    dialect: Dialect
    page_size: int
    topics: frozenset[str]
    keep: Callable[[Notification], bool] | None
    stops: dict[str, int]


_range_worker: _RangeWorker | None = None


def _start_range_worker(
    settings: Settings,
    mapper: Any,
    projections: Sequence[PreparedProjection],
    dialect: Dialect,
    page_size: int,
    keep: Callable[[Notification], bool] | None,
    stops: dict[str, int] | None,
) -> None:
    global _range_worker
    # Forked inside the parent's `collector_paused`, the collector stays off here: a
    # collection would walk the whole heap inherited from the parent, copying it page
    # by page, for the few small cycles a worker leaves (about 3 KB a range).

    # Its own connection to the store, never the parent's: one, as it reads serially.
    reader = CoopApplication(
        settings.model_copy(update={"database_pool_size": 1}), create_table=False
    )
    # A pool's worker process ends without running atexit handlers, but with
    # multiprocessing's own finalizers: close the connection there.
    multiprocessing.util.Finalize(reader, reader.close, exitpriority=10)
    _range_worker = _RangeWorker(
        reader,
        mapper,
        projections,
        dialect,
        page_size,
        frozenset().union(*(p.topics for p in projections)),
        keep,
        stops or {},
    )


def _prepare_range(low: int, high: int) -> tuple[int, dict[str, Any]]:
    """In a worker: read the notifications in (low, high], decode those the projections
    read, and prepare each projection's rows. Returns (notifications read, rows by
    projection name)."""
    worker = _range_worker
    if worker is None:
        raise RuntimeError("range worker not started")
    with collector_paused():
        events: dict[str, list[tuple[int, DomainEvent]]] = {p.name: [] for p in worker.projections}
        to_domain_event = worker.mapper.to_domain_event
        keep = worker.keep
        count = 0
        for page in read_log(worker.reader.recorder, low, worker.page_size, stop=high):
            count += len(page)
            for notification in page:
                if notification.topic not in worker.topics:
                    continue
                if keep is not None and not keep(notification):
                    continue
                event = to_domain_event(notification)
                for projection in worker.projections:
                    stop = worker.stops.get(projection.name)
                    if notification.topic in projection.topics and (
                        stop is None or notification.id <= stop
                    ):
                        events[projection.name].append((notification.id, event))
        prepared = {p.name: p.prepare(events[p.name], worker.dialect) for p in worker.projections}
    return count, prepared


@contextmanager
def projector_transaction(conn: Connection) -> Iterator[None]:
    """A transaction of the projector's: on PostgreSQL its commit does not wait for the
    WAL flush (`ProjectionRunner.projector_connection` says why that is safe), for the
    session on a projector connection, else for the transaction."""
    with conn.begin():
        if conn.dialect.name == "postgresql" and not conn.info.get(RELAXED_COMMIT):
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        yield


def _execute_outside_transaction(driver: Any, statement: str) -> None:
    """Run a session setting on an idle DB-API connection (sqlite3 is in autocommit
    mode already; psycopg is put in it for the statement)."""
    if isinstance(driver, psycopg.Connection):
        driver.autocommit = True
        try:
            driver.execute(statement)
        finally:
            driver.autocommit = False
    else:
        driver.execute(statement)


def _lock_tracking(conn: Connection) -> None:
    """Wait for the projector steps in flight and hold back new ones until commit
    (PostgreSQL; a SQLite writer already has the whole database). A step's first
    statement updates the tracking table, so it waits before writing any row."""
    if conn.dialect.name == "postgresql":
        table = conn.dialect.identifier_preparer.format_table(projection_tracking)
        conn.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))


def _advance_tracking(conn: Connection, moves: dict[str, tuple[int, int]]) -> None:
    """Move every projection of a page from its old position to its new one, in ONE
    statement (a round trip per projection was a fifth of a live projector pass), each
    only if it is still where this runner read it: compare-and-set, so a page another
    runner applied first rolls back whole (TrackingConflict)."""
    if not moves:
        return
    params: dict[str, Any] = {"moved_at": datetime.now(UTC)}
    for index, (old, new) in enumerate(moves.values()):
        params[f"old{index}"], params[f"new{index}"] = old, new
    advanced = conn.execute(_tracking_update(tuple(moves)), params)
    if advanced.rowcount != len(moves):
        raise TrackingConflict(", ".join(moves))


@lru_cache(maxsize=256)
def _tracking_update(names: tuple[str, ...]) -> Update:
    """`_advance_tracking`'s statement for these names, positions left as parameters:
    built once per set of names (building it each step cost several times what
    running it does; a statement used again also keeps SQLAlchemy's cache key)."""
    t = projection_tracking.c
    where_it_was = []
    new_positions = {}
    for index, name in enumerate(names):
        old = bindparam(f"old{index}", type_=BigInteger())
        where_it_was.append(and_(t.projection == name, t.position == old))
        new_positions[name] = bindparam(f"new{index}", type_=BigInteger())
    return (
        update(projection_tracking)
        .where(or_(*where_it_was))
        .values(
            position=case(new_positions, value=t.projection),
            updated_at=bindparam("moved_at", type_=t.updated_at.type),
        )
    )


def projected_channel(app: CoopApplication) -> str | None:
    """The channel runners NOTIFY on when read models move (None off PostgreSQL).

    One per store: channels are database-wide, and the event store's own channel is
    named after its table only, the same in every tenant schema. So the schema and
    the table are hashed into the name (63-byte identifiers)."""
    channel: str | None = getattr(app.recorder, "channel_name", None)
    if channel is None:
        return None
    store = f"{app.settings.database_schema or 'public'}.{channel}"
    return f"coop_projected_{hashlib.sha256(store.encode()).hexdigest()[:32]}"


def _changed_tables(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """Names of the existing `tables` whose columns or primary key differ from their
    definitions (column types are not compared: a type change needs a new column name)."""
    found = inspect(conn)
    # The catalog read in batches (a few queries for all tables), not table by table:
    # per table, PostgreSQL reflection costs several round trips, and every process
    # (and every test's runtime) runs this at start.
    present = set(found.get_table_names())
    names = [table.name for table in tables if table.name in present]
    if not names:
        return []
    columns = found.get_multi_columns(filter_names=names)
    keys = found.get_multi_pk_constraint(filter_names=names)
    changed: list[str] = []
    for table in tables:
        if table.name not in present:
            continue
        stored_columns = {column["name"] for column in columns[(None, table.name)]}
        stored_key = list(keys[(None, table.name)]["constrained_columns"])
        if stored_columns != {c.name for c in table.columns} or stored_key != [
            c.name for c in table.primary_key.columns
        ]:
            changed.append(table.name)
    return changed


def secondary_indexes(projections: Sequence[Projection]) -> list[tuple[Table, Index]]:
    """(table, index) for every index a rebuild may drop and build again at the end."""
    # Primary keys and UNIQUE constraints (not in `Table.indexes`) stay.
    return [
        (table, index)
        for p in projections
        for table in p.tables
        for index in table.indexes
        if not index.unique  # a unique index is a constraint the replay must meet
    ]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block of bulk work.

    A replay transaction allocates millions of container objects (decoded events, row
    tuples) that live until its commit. Each allocation burst triggers collections that
    walk every live object, the whole application's included: measured, a third of a
    100,000-event rebuild. Nothing here makes reference cycles that need the collector;
    the block's garbage is freed by reference counting, and collection resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


LEADER_LOCK_PURPOSE = "projector-leader"


def leader_lock_key(schema: str) -> int:
    """The advisory lock key of the projector leadership of the store in `schema`: one
    leader per store, not per database (see `advisory_lock_key`)."""
    return advisory_lock_key(LEADER_LOCK_PURPOSE, schema)


@contextmanager
def projector_leadership(
    engine: Engine, stop: threading.Event, poll_s: float = 1.0
) -> Iterator[bool]:
    """Hold the store's projector leadership while the block runs (PostgreSQL).

    A second `coop projections run` on the same store waits here as a hot standby and
    takes over when the leader's session ends; the projectors of other stores (tenant
    schemas) in the same database lead at once, each under its own key. The store is
    the schema the engine's connections write to (`current_schema()`, from the
    search_path that `COOP_DATABASE_SCHEMA` sets). Correctness never depends on the
    lock (the tracking update is a compare-and-set); it avoids wasted work. SQLite has
    one process by design: no lock. Yields False if `stop` was set before leadership
    was won.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        key = leader_lock_key(str(schema or "public"))
        conn.commit()
        while not stop.is_set():
            won = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if won:
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                return
            stop.wait(poll_s)
        yield False


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.01) -> bool:
    """Poll `predicate` with a growing interval; True if it held before the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval_s, remaining))
        interval_s = min(interval_s * 2, 0.2)

"""Read-your-writes in a gateway worker whose projector runs in another process.

The projector NOTIFYs after each pass that moved the read models, and when a read
model is set back to position 0 (a rebuild, a changed table shape). One LISTEN
connection per worker turns those notifications into wake-ups for every request
waiting on a position; before this, each waiting request polled the tracking table
with back-off (about a tenth of a worker's CPU under sales load, and up to 50 ms of
late wake-up).

A notification from a projector step carries the lowest tracked position as that
step committed it, with a fingerprint of the names it tracks: when they are this
worker's names, the payload is the position (PostgreSQL delivers notifications in
commit order), and nobody reads the table. Any other notification (a rebuild setting
a read model back, a projector tracking other names) is a wake-up only: the position
is read from the tracking table, once per notification however many requests wait.
Either way a position stays trusted only until the next notification. A waiter that
hears nothing for SAFETY_POLL_S reads the table itself (a notification can be lost
while the connection reconnects), and while the connection is down the runtime polls
as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger("coop.projected")

# How long a waiter trusts the notifications before it reads the position itself.
SAFETY_POLL_S = 0.25
# After a failed connection, polling only for this long before trying again.
RECONNECT_AFTER_S = 5.0
# Connecting is bounded by the caller's deadline, and by this.
CONNECT_TIMEOUT_S = 2.0


class ProjectedPosition:
    """The projected position as the tracking table holds it, re-read when the
    projector says it changed. Bound to the event loop it was created in."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        poll: Callable[[], Awaitable[int]],
        payload_suffix: str | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._dsn = dsn
        self._channel = channel
        # ":<fingerprint>" of the names this worker waits for (None: never trust one).
        self._payload_suffix = payload_suffix
        self._poll = poll
        self._position = 0
        # Notifications heard so far; a read is trusted while this has not moved.
        self._heard = 0
        self._read_at_heard = -1
        self._changed = asyncio.Event()
        self._reading: asyncio.Task[None] | None = None
        self._connection: Any = None  # asyncpg.Connection while listening
        self._starting = asyncio.Lock()
        self._failed_at = float("-inf")
        self.polls = 0  # tracking-table reads, for tests
        self.trusted = 0  # positions taken from a notification, for tests

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def wait_until(self, position: int, deadline: float) -> bool:
        """True once `position` is projected; False if the deadline passed first or
        nobody is listening (the caller polls then)."""
        return await self._wait(lambda p: p >= position, deadline, SAFETY_POLL_S)

    async def changed_from(self, last: int, deadline: float) -> int | None:
        """The position once it is not `last` (any move: a rebuild sets it back), for
        live updates; None if the deadline passed first or nobody is listening. Until
        the deadline it trusts the notifications: nothing is read while nothing moves."""
        moved = await self._wait(lambda p: p != last, deadline, safety_poll_s=None)
        return self._position if moved else None

    async def _wait(
        self, done: Callable[[int], bool], deadline: float, safety_poll_s: float | None
    ) -> bool:
        if not await self._listen(deadline):
            return False
        while True:
            while self._read_at_heard != self._heard:  # a notification since the read
                await self._read()
            if done(self._position):
                return True
            if not self.listening:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # No await since the read: a notification from now on sets this event.
            changed = self._changed
            timeout = remaining if safety_poll_s is None else min(remaining, safety_poll_s)
            try:
                await asyncio.wait_for(changed.wait(), timeout=timeout)
            except TimeoutError:
                if safety_poll_s is not None:
                    self._heard += 1  # heard nothing for a while: read for ourselves

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()

    async def _read(self) -> None:
        """One read of the tracking table for every waiter that needs one now."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_once())
        await asyncio.shield(self._reading)

    async def _read_once(self) -> None:
        heard = self._heard
        self.polls += 1
        self._position = await self._poll()
        self._read_at_heard = heard

    async def _listen(self, deadline: float) -> bool:
        if self.listening:
            return True
        if time.monotonic() - self._failed_at < RECONNECT_AFTER_S:
            return False
        async with self._starting:
            if self.listening:
                return True
            timeout = min(CONNECT_TIMEOUT_S, max(deadline - time.monotonic(), 0.01))
            connection = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=timeout)
                await connection.add_listener(self._channel, self._on_notify)
                connection.add_termination_listener(self._on_terminated)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._failed_at = time.monotonic()
                log.warning("projected: LISTEN failed (%s); polling", type(exc).__name__)
                if connection is not None:
                    connection.terminate()
                return False
            self._connection = connection
            self._heard += 1  # anything announced before LISTEN took effect: read
            return True

    def _wake(self) -> None:
        self._heard += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._wake()
        suffix = self._payload_suffix
        if suffix and payload.endswith(suffix) and payload[: -len(suffix)].isdigit():
            # As good as a read of the table made now.
            self.trusted += 1
            self._position = int(payload[: -len(suffix)])
            self._read_at_heard = self._heard

    def _on_terminated(self, _connection: Any) -> None:
        self._connection = None
        self._failed_at = time.monotonic()
        self._wake()  # the waiters poll while the connection is down


# A shared poll looks again this soon after a read that found the projector short of
# some waiter, doubling up to POLL_MAX_S while the position does not move.
POLL_MIN_S = 0.002
POLL_MAX_S = 0.05


class PolledPosition:
    """Read-your-writes where nothing announces the projector's progress: SQLite with
    the projector in another process (no NOTIFY), or PostgreSQL while this worker's
    LISTEN connection is down.

    One poller per worker reads the tracking table for every request waiting on a
    position, instead of each polling it on its own (16 concurrent sales were 16
    pollers). A read settles only the waiters that were there when it started: an
    older answer could predate a rebuild that set a read model back. Bound to the
    event loop it was created in.
    """

    def __init__(self, poll: Callable[[], Awaitable[int]]) -> None:
        self.loop = asyncio.get_running_loop()
        self._poll = poll
        # (position wanted, reads started when it came, its future)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._reads_started = 0
        self._poller: asyncio.Task[None] | None = None

    async def wait_until(self, position: int, deadline: float) -> bool:
        """True once `position` is projected; False if the deadline passed first."""
        reached = self.loop.create_future()
        self._waiters.append((position, self._reads_started, reached))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait_for(
                asyncio.shield(reached), timeout=max(deadline - time.monotonic(), 0.0)
            )
        except TimeoutError:
            return False
        finally:
            reached.cancel()  # a no-op once settled; otherwise the poller drops it
        return True

    async def _run(self) -> None:
        interval_s = POLL_MIN_S
        projected = -1
        while self._waiters:
            self._reads_started += 1
            started = self._reads_started
            try:
                position = await self._poll()
            except Exception as exc:  # every waiter gets the store's error
                for _wanted, _since, reached in self._waiters:
                    if not reached.done():
                        reached.set_exception(exc)
                self._waiters = []
                return
            waiting = []
            for wanted, since, reached in self._waiters:
                if reached.done():
                    continue  # gave up (its deadline) or cancelled
                if since < started and position >= wanted:
                    reached.set_result(None)
                else:
                    waiting.append((wanted, since, reached))
            self._waiters = waiting
            if not waiting:
                return
            interval_s = POLL_MIN_S if position != projected else min(interval_s * 2, POLL_MAX_S)
            projected = position
            await asyncio.sleep(interval_s)

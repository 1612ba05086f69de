"""Read-your-writes in a gateway worker whose projector runs in another process.

The projector NOTIFYs the position every projection and process reached after each
pass that moved it (`ProjectionRunner._announce`). One LISTEN connection per worker
keeps that position in memory and wakes every request waiting for it; before this,
each waiting request polled the tracking table with back-off (measured: about a tenth
of a worker's CPU under sales load, and up to 50 ms of needless latency per wait).

A notification can be lost (the listening connection drops and reconnects): a waiter
that hears nothing for SAFETY_POLL_S reads the tracking table once, and while the
connection is down the runtime falls back to polling.
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


class ProjectedPosition:
    """The projected position as the projector announces it, for one event loop."""

    def __init__(self, dsn: str, channel: str, poll: Callable[[], Awaitable[int]]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._poll = poll
        self.position = 0
        self._moved = asyncio.Event()
        self._connection: Any = None  # asyncpg.Connection while listening
        self._starting = asyncio.Lock()
        self._failed_at = float("-inf")
        self.polls = 0  # tracking-table reads, for tests and metrics

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def wait_until(self, position: int, deadline: float) -> bool:
        """True once `position` is projected; False if the deadline passed first or
        nobody is listening (the caller polls then)."""
        if self.position >= position:
            return True
        if not await self._listen():
            return False
        while self.position < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), timeout=min(remaining, SAFETY_POLL_S))
            except TimeoutError:
                await self._read()
            if not self.listening:
                return self.position >= position
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()

    async def _listen(self) -> bool:
        if self.listening:
            return True
        if time.monotonic() - self._failed_at < RECONNECT_AFTER_S:
            return False
        async with self._starting:
            if self.listening:
                return True
            try:
                connection = await asyncpg.connect(self._dsn)
                await connection.add_listener(self._channel, self._on_notify)
                connection.add_termination_listener(self._on_terminated)
            except (OSError, asyncpg.PostgresError) as exc:
                self._failed_at = time.monotonic()
                log.warning("projected: LISTEN failed (%s); polling", type(exc).__name__)
                return False
            self._connection = connection
            # Read after LISTEN took effect: nothing announced since can be missed.
            await self._read()
            return True

    async def _read(self) -> None:
        self.polls += 1
        self._advance(await self._poll())

    def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._advance(int(payload))
        except ValueError:
            log.warning("projected: ignored a notification that is not a position")

    def _on_terminated(self, _connection: Any) -> None:
        self._connection = None
        self._failed_at = time.monotonic()
        # Wake the waiters: they poll while the connection is down.
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

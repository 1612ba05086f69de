"""The gateway's read engine keeps as many connections as COOP_DATABASE_POOL_SIZE says,
on both stores: concurrent reads up to that many reuse their connections instead of
opening new ones (on SQLite each connection is a thread of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event, text

from services.common.database import create_read_engine
from tests.conftest import drop_schema, make_settings

POOL_SIZE = 12


async def test_concurrent_reads_up_to_the_pool_size_keep_their_connections(
    tmp_path: Path, backend: str
) -> None:
    settings = make_settings(backend, tmp_path, database_pool_size=POOL_SIZE)
    engine = create_read_engine(settings)
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda dbapi, _record: opened.append(dbapi))
    all_in = asyncio.Barrier(POOL_SIZE)  # cyclic: ready again once all passed

    async def read() -> None:
        async with engine.connect() as conn:
            await all_in.wait()  # every read holds its connection at once
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1

    try:
        for _round in range(3):
            await asyncio.gather(*(read() for _ in range(POOL_SIZE)))
        # The first round opened POOL_SIZE connections; the next two reused them.
        assert len(opened) == POOL_SIZE
        assert engine.sync_engine.pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
        drop_schema(settings)

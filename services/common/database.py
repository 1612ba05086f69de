"""SQLAlchemy engines for read models: sync for the projector, async for GraphQL.

The projector writes with the same drivers as the event store (psycopg / sqlite3);
GraphQL reads with asyncpg / aiosqlite. Both use one MetaData so a table is declared
once. See docs/adr/0001-event-store-and-read-models.md.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from typing import Any, cast

import asyncpg
from sqlalchemy import (
    BigInteger,
    Column,
    CompoundSelect,
    Connection,
    Date,
    DateTime,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from services.common.settings import Settings

metadata = MetaData()

# One row per projection: the last notification id whose effects are in its tables.
# Updated in the same transaction as the tables themselves (exactly-once).
projection_tracking = Table(
    "projection_tracking",
    metadata,
    Column("projection", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
)

SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_CACHE_KIB = 64 * 1024


def _postgres_search_path(settings: Settings) -> str:
    return f"{settings.database_schema},public" if settings.database_schema else "public"


# SQL errors are logged with their statement; without this their bound parameters too
# (sealing keys, credentials' hashes, typed text). The statement is enough to debug.
HIDE_PARAMETERS = True


def create_sync_engine(settings: Settings) -> Engine:
    if settings.is_postgres:
        return create_engine(
            settings.sync_url,
            hide_parameters=HIDE_PARAMETERS,
            pool_size=settings.database_pool_size,
            connect_args={"options": f"-csearch_path={_postgres_search_path(settings)}"},
        )
    settings.prepared_sqlite_path()
    engine = create_engine(
        settings.sync_url,
        hide_parameters=HIDE_PARAMETERS,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None},
        poolclass=NullPool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        # SQLite's default page cache is 2 MiB. A projector page inserts rows keyed by
        # random UUIDs all over the index B-trees; with the cache this size they stay in
        # memory across the pages a runner applies on one connection.
        dbapi_connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads the tracking
        # row and then writes could fail with SQLITE_BUSY_SNAPSHOT under concurrency.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_read_engine(settings: Settings) -> AsyncEngine:
    if settings.is_postgres:
        return create_async_engine(
            settings.async_url,
            hide_parameters=HIDE_PARAMETERS,
            pool_size=settings.database_pool_size,
            connect_args={"server_settings": {"search_path": _postgres_search_path(settings)}},
        )
    # Pooled: an aiosqlite connection is a thread of its own, and opening one for
    # each read (NullPool) cost a trivial query most of its CPU (measured: a trivial
    # request 3.1 -> 2.0-2.4 ms of the gateway's CPU, 314 -> 395-482 requests/s).
    # Python's sqlite3 opens no transaction for a SELECT, so a pooled connection
    # holds no snapshot between reads. Sized by COOP_DATABASE_POOL_SIZE as on
    # PostgreSQL: with SQLAlchemy's default (5), a sixth concurrent read opened a
    # connection, so a thread, and closed it on return (16 connections, one worker:
    # trivial 778-792 -> 847-852 requests/s with the bench's pool of 8).
    return create_async_engine(
        settings.async_url,
        hide_parameters=HIDE_PARAMETERS,
        # Named: SQLAlchemy before 2.0.38 gave aiosqlite file databases NullPool, which
        # takes no pool_size.
        poolclass=AsyncAdaptedQueuePool,
        pool_size=settings.database_pool_size,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
    )


def daily_rows_from(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    first_days: Mapping[tuple[Any, ...], date],
) -> Sequence[tuple[Any, ...]]:
    """Rows of a daily table (primary key: `keys`, then "day"; every column, in the
    table's order) from each key's first day on, plus the row of its last day before
    that one (whose running totals open the first day): one index range per key,
    started at the last earlier day found by a backwards index lookup (an uncorrelated
    subquery, evaluated once).

    `first_days`: key values (in the order of `keys`) -> first day. A projector reads
    these rows once per step before it recomputes running totals from the first day on.
    """
    params: dict[str, Any] = {}
    for index, (values, day) in enumerate(first_days.items()):
        params.update({f"k{index}_{k}": v for k, v in zip(keys, values, strict=True)})
        params[f"d{index}"] = day
    statement = _daily_rows_statement(table, tuple(keys), len(first_days))
    # Rows are tuples; typed so, as SQLAlchemy's Row[Any] does not unpack for mypy.
    return cast(Sequence[tuple[Any, ...]], conn.execute(statement, params).all())


@lru_cache(maxsize=256)
def _daily_rows_statement(table: Table, keys: tuple[str, ...], count: int) -> Select[Any]:
    """The statement of `daily_rows_from` for `count` keys, values left as parameters.

    Built once per shape: building it (a subquery per key) and deriving SQLAlchemy's
    cache key from it cost a live projector step more than a millisecond of CPU per
    daily table, ten times what the database spends on the query. A statement object
    used again keeps its cache key, and its compiled form stays in the engine's cache.
    """
    earlier = table.alias("earlier")  # an alias, or the subquery would correlate
    ranges = []
    for index in range(count):
        same_key = [table.c[k] == bindparam(f"k{index}_{k}") for k in keys]
        earlier_same_key = [earlier.c[k] == bindparam(f"k{index}_{k}") for k in keys]
        day = bindparam(f"d{index}", type_=Date())
        last_day_before = (
            select(func.max(earlier.c.day))
            .where(*earlier_same_key, earlier.c.day < day)
            .scalar_subquery()
        )
        ranges.append(and_(*same_key, table.c.day >= func.coalesce(last_day_before, day)))
    return select(*table.columns).where(or_(*ranges))


class LoneReads:
    """A lone SELECT (no transaction around it) returning one row, at the driver's cost.

    Every request authenticates with one. Through SQLAlchemy's async engine such a
    SELECT costs the gateway about 240 us of CPU on PostgreSQL (the pool checkout 75,
    executing and reading the row 130, asyncpg's own part 30: measured in one worker),
    a tenth of what a whole trivial request costs it. So on PostgreSQL they go straight
    to an asyncpg pool of their own, each statement compiled once by SQLAlchemy for
    asyncpg; on SQLite they go through `engine` (the read engine) as any other read.
    Not with an AUTOCOMMIT execution option there: Python's sqlite3 opens no
    transaction for a SELECT anyway, and on aiosqlite the option sets the isolation
    level at each checkout and resets it at each return, two thread hops per read; a
    read cancelled between them (a client gone, or graphql-core cancelling a
    failed field's siblings, which gateway/settled_fields.py has since stopped) left
    its connection checked out until the garbage collector found it.

    Statements must be built once (module constants, parameters as `bindparam`): the
    compiled text is kept per statement object.
    """

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._compiled: dict[
            Select[Any] | CompoundSelect[Any], tuple[str, tuple[str, ...], dict[str, Any]]
        ] = {}
        self._pool: asyncpg.Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    async def first(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        if not self._settings.is_postgres:
            async with self._engine.connect() as conn:
                row = (await conn.execute(statement, dict(params))).first()
            return None if row is None else row._mapping
        sql, args = self._compile(statement, params)
        pool = await self._postgres_pool()
        record = await pool.fetchrow(sql, *args)
        return None if record is None else dict(record.items())

    async def all(
        self, statement: Select[Any] | CompoundSelect[Any], params: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        """Every row of a lone SELECT (small results: a balance's few rows)."""
        if not self._settings.is_postgres:
            async with self._engine.connect() as conn:
                return [row._mapping for row in await conn.execute(statement, dict(params))]
        sql, args = self._compile(statement, params)
        pool = await self._postgres_pool()
        records = await pool.fetch(sql, *args)
        return [dict(record.items()) for record in records]

    def _compile(
        self, statement: Select[Any] | CompoundSelect[Any], params: Mapping[str, Any]
    ) -> tuple[str, list[Any]]:
        """The statement's SQL for asyncpg and its arguments: `params` by name, and the
        values bound when it was built (literals) for the rest."""
        compiled = self._compiled.get(statement)
        if compiled is None:
            form = statement.compile(dialect=self._engine.dialect)
            if "POSTCOMPILE" in str(form):
                # Rendering them would need every parameter's value at compile time.
                raise TypeError("LoneReads statements take no IN lists; compare with =")
            names = tuple(form.positiontup or ())
            binds = {name: form.binds[name] for name in names}
            constants = {n: b.effective_value for n, b in binds.items() if not b.required}
            compiled = self._compiled[statement] = (str(form), names, constants)
        sql, names, constants = compiled
        return sql, [params[name] if name in params else constants[name] for name in names]

    async def _postgres_pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            # Created in the loop that uses it (a CLI's asyncio.run brings its own).
            dsn = self._settings.url.set(drivername="postgresql")
            self._pool = await asyncpg.create_pool(
                dsn.render_as_string(hide_password=False),
                min_size=1,
                max_size=self._settings.database_pool_size,
                server_settings={"search_path": _postgres_search_path(self._settings)},
                # Nothing here sets session state (lone SELECTs, no LISTEN, no locks):
                # asyncpg's default reset would cost a query per release.
                reset=_keep_session,
            )
            self._pool_loop = loop
        return self._pool

    async def close(self) -> None:
        if self._pool is not None and self._pool_loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = self._pool_loop = None


async def _keep_session(_connection: asyncpg.Connection) -> None:
    return None


def burst_connections(pool_size: int) -> int:
    """The PostgreSQL connections one gateway or projector process may hold at once
    under load: the event store's, the synchronous and the asynchronous engines' pools
    (each `pool_size` plus as many again as overflow), the lone-reads pool
    (`pool_size`) and one LISTEN connection (docs/scaling.md)."""
    return 7 * pool_size + 1


def connection_shortfall(settings: Settings, processes: int) -> str | None:
    """Why `processes` gateway and projector processes may exhaust the PostgreSQL
    server's connections in a burst, or None when they fit (always on SQLite).

    The server refuses a connection past `max_connections` (less the superuser
    reserve) with "too many clients", which a request meets as a masked internal
    error: better said once at start than found on a busy Saturday.
    """
    if not settings.is_postgres:
        return None
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            maximum = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    finally:
        engine.dispose()
    needed = processes * burst_connections(settings.database_pool_size)
    available = maximum - reserved
    if needed <= available:
        return None
    return (
        f"{processes} processes at COOP_DATABASE_POOL_SIZE={settings.database_pool_size} may "
        f"open up to {needed} PostgreSQL connections in a burst; the server allows "
        f"{available} (max_connections {maximum} less {reserved} reserved). Raise "
        "max_connections or lower COOP_DATABASE_POOL_SIZE (docs/scaling.md)."
    )


def ensure_schema(settings: Settings) -> None:
    """Create the tenant schema (PostgreSQL) before anything writes into it."""
    if not (settings.is_postgres and settings.database_schema):
        return
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
    finally:
        engine.dispose()


def advisory_lock_key(purpose: str, schema: str) -> int:
    """The PostgreSQL advisory lock key for `purpose` in the store in `schema`.

    Advisory locks belong to the whole database, and several cooperatives may share
    one database, a schema each (docs/scaling.md): with one fixed key per purpose, the
    first tenant's projector held the leadership of every tenant, whose read models
    then never moved. So the schema is part of the key, as it is of the NOTIFY
    channels. The key is the first 8 bytes of SHA-256("coop:<purpose>:<schema>") as a
    signed 64-bit integer (PostgreSQL's bigint): the same in every process, on every
    machine and in every release (Python's hash() is salted per process). Keep it so:
    processes of two releases running side by side during an upgrade must agree.
    """
    digest = hashlib.sha256(f"coop:{purpose}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def store_schema(settings: Settings) -> str:
    """The schema of the store: the tenant's, or PostgreSQL's default."""
    return settings.database_schema or "public"


@contextmanager
def startup_lock(settings: Settings) -> Iterator[None]:
    """Hold the store's startup advisory lock for the block (a no-op on SQLite, where
    the database file's own lock already serialises schema changes).

    Concurrent CREATE OR REPLACE FUNCTION (the event store's insert function) and
    CREATE TABLE IF NOT EXISTS fail on PostgreSQL with "tuple concurrently updated" or
    a duplicate type: several gateway workers and a projector starting at once did.
    The lock is released with the session if the process dies. It is one per store
    (schema): everything set up lives in the store's schema, so one tenant's set-up (an
    upgrade's new indexes, say) need not hold up the start of another tenant's
    processes in the same database.
    """
    if not settings.is_postgres:
        yield
        return
    key = advisory_lock_key("startup", store_schema(settings))
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def create_tables(engine: Engine, tables: Sequence[Table]) -> None:
    """Create the given tables (and the tracking table) if they do not exist."""
    metadata.create_all(engine, tables=[projection_tracking, *tables])

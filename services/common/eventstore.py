"""The one event store every bounded context writes to.

All applications share the name "coop", hence one events table and one notification
log: projections, the welfare fund and the audit chain follow a single total order.
See docs/adr/0001-event-store-and-read-models.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    ConnectionUnavailableError,
    InfrastructureFactory,
    InterfaceError,
    JSONTranscoder,
    MapperDeserialisationError,
    OperationalError,
    Recording,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import Environment, get_topic, retry
from psycopg.sql import SQL, Identifier
from sqlalchemy import Select, column, func, select, table

from services.common.errors import CoopError, LostRace, StoreBusy
from services.common.settings import Settings

STORE_NAME = "coop_store"

# How many times a save re-checks its guarded reads before giving up with a LostRace.
# Each retry means another process changed a guarded aggregate (the chart of accounts)
# during this save: rare, so a few attempts are plenty.
MAX_STALE_READ_RETRIES = 5

# How long PostgreSQL lets the store's connections sit idle inside a transaction
# (infra/postgresql/production.conf sets the same for every other connection).
IDLE_IN_TRANSACTION_TIMEOUT_S = 60

_STALE_READ_MESSAGE = "coop_stale_read"
_READ_GUARDS_ATTRIBUTE = "_coop_read_guards"


class StaleRead(Exception):
    """A guarded read moved on before the save committed; nothing was written."""


@dataclass(frozen=True)
class ReadGuard:
    """A decision depended on `aggregate_id` as it was at `version`.

    Aggregates read on every command (the chart of accounts) are taken from the
    repository cache without a fast-forward query. Instead, the save checks, inside
    its own write transaction and under the store's write lock, that no event past
    `version` exists: so a decision can never commit against a state that has
    changed, even one changed by another process a moment before. `recheck` brings the
    aggregate up to date, re-runs the checks that depended on it (raising their error
    if they now fail) and returns the guard for the new version.
    """

    aggregate_id: UUID
    version: int
    recheck: Callable[[], ReadGuard]


def guard_read(aggregate: Aggregate, guard: ReadGuard) -> None:
    """Make the save of `aggregate` conditional on `guard` (see ReadGuard)."""
    aggregate.__dict__.setdefault(_READ_GUARDS_ATTRIBUTE, []).append(guard)


def oldest_reads(guards: Sequence[ReadGuard]) -> dict[UUID, int]:
    """Per aggregate, the oldest version any decision in the save read: two entries of
    one command may have read the chart at two versions (the first from the cache, the
    second after a refresh), and the save must hold for the first as well."""
    versions: dict[UUID, int] = {}
    for guard in guards:
        versions[guard.aggregate_id] = min(
            guard.version, versions.get(guard.aggregate_id, guard.version)
        )
    return versions


def _take_read_guards(objs: Sequence[object]) -> list[ReadGuard]:
    guards: list[ReadGuard] = []
    for obj in objs:
        if isinstance(obj, Aggregate):
            guards.extend(obj.__dict__.pop(_READ_GUARDS_ATTRIBUTE, ()))
    return guards


class DateAsISO(Transcoding):
    """Effective dates are calendar dates, not instants: store them as YYYY-MM-DD."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class AsState(Transcoding):
    """A value held in a snapshot, encoded as the state its events carry: for value
    classes with `as_state()` and a `from_state(state)` class method."""

    def __init__(self, value_type: type[Any], name: str) -> None:
        self.type = value_type
        self.name = name

    def encode(self, obj: Any) -> dict[str, Any]:
        state: dict[str, Any] = obj.as_state()
        return state

    def decode(self, data: dict[str, Any]) -> Any:
        value_type: Any = self.type  # a class with from_state, which `type` cannot say
        return value_type.from_state(data)


class OrderedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The library's recorder with its DB function, plus the table lock and read guards.

    The library's plain insert path locks the events table so that notification ids
    are committed in order (a follower can then never skip an id that commits later).
    Its faster DB-function path (POSTGRES_ENABLE_DB_FUNCTIONS) does not take that lock,
    so two concurrent transactions can commit ids out of order. We keep the function
    (one round trip per save) and put the lock back inside it. Under that lock the
    function also checks the save's read guards (see ReadGuard): every writer takes the
    lock, so no event can be added between the check and the commit.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        # The library names the channel after the table alone, the same in every
        # tenant schema, and NOTIFY is database-wide: each tenant's commits woke every
        # tenant's projector. One channel per store instead (63-byte identifiers).
        store = f"{self.datastore.schema}.{self.events_table_name}"
        self.channel_name = f"coop_events_{hashlib.sha256(store.encode()).hexdigest()[:32]}"
        id_type = self.datastore.originator_id_type
        self.pg_function_name_insert_events = f"coop_insert_events_guarded_{id_type}"
        # The events travel in binary (%b): psycopg packs the composite rows without
        # quoting each field as text, measured at half the client's CPU for the call.
        self.sql_invoke_pg_function_insert_events = SQL(
            "SELECT * FROM {schema}.{fn}(%b, %s::{id_type}[], %s::bigint[])"
        ).format(
            schema=Identifier(self.datastore.schema),
            fn=Identifier(self.pg_function_name_insert_events),
            id_type=SQL(id_type),
        )
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{fn}("
            "  events {schema}.{event}[], guard_ids {id_type}[], guard_versions bigint[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            # One primary-key probe per guard (a join could be planned as a scan
            # of the events table, under the lock every writer waits for).
            "  FOR i IN 1 .. coalesce(array_length(guard_ids, 1), 0) LOOP "
            "    IF EXISTS (SELECT 1 FROM {schema}.{table} "
            "               WHERE originator_id = guard_ids[i] "
            "               AND originator_version > guard_versions[i]) THEN "
            "      RAISE EXCEPTION '{stale}'; "
            "    END IF; "
            "  END LOOP; "
            "  NOTIFY {channel}; "
            "  RETURN QUERY INSERT INTO {schema}.{table} AS t "
            "    (originator_id, originator_version, topic, state) "
            "    SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "    RETURNING notification_id; "
            "END; $BODY$"
        ).format(
            schema=Identifier(self.datastore.schema),
            fn=Identifier(self.pg_function_name_insert_events),
            event=Identifier(self.stored_event_type_name),
            id_type=SQL(id_type),
            lock_timeout=self.datastore.lock_timeout,
            stale=SQL(_STALE_READ_MESSAGE),
            channel=Identifier(self.channel_name),
            table=Identifier(self.events_table_name),
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        read_guards: Mapping[UUID, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        guards = read_guards or {}
        pg_stored_events = [
            self.construct_pg_stored_event(
                originator_id=e.originator_id,
                originator_version=e.originator_version,
                topic=e.topic,
                state=e.state,
            )
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(
                    self.sql_invoke_pg_function_insert_events,
                    (pg_stored_events, list(guards), list(guards.values())),
                    prepare=True,
                )
            except psycopg.errors.RaiseException as exc:
                if exc.diag.message_primary == _STALE_READ_MESSAGE:
                    raise StaleRead(sorted(map(str, guards))) from None
                raise
            return [r[self.pg_function_name_insert_events] for r in curs.fetchall()]


class GuardedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus read guards (see ReadGuard).

    The guards are checked after the insert, inside the same transaction: the insert
    took SQLite's write lock, so the check reads the latest committed state and no
    other writer can commit before this transaction does.
    """

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        read_guards: Mapping[UUID, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        for aggregate_id, version in (read_guards or {}).items():
            c.execute(
                f"SELECT 1 FROM {self.events_table_name} "
                "WHERE originator_id = ? AND originator_version > ? LIMIT 1",
                (aggregate_id.hex, version),
            )
            if c.fetchone() is not None:
                raise StaleRead(str(aggregate_id))
        return notification_ids


def log_head_statement(recorder: ApplicationRecorder) -> Select[tuple[int]]:
    """`SELECT max(<notification id>) AS head` on the store's events table, for a
    reader outside the library (the gateway's fund settlement). Its columns are the library's:
    on SQLite the notification id is the table's rowid."""
    if isinstance(recorder, PostgresApplicationRecorder):
        notification_id = "notification_id"
    elif isinstance(recorder, SQLiteApplicationRecorder):
        notification_id = "rowid"
    else:
        raise TypeError(f"no events table known for {type(recorder).__name__}")
    events = table(recorder.events_table_name, column(notification_id))
    return select(func.max(events.c[notification_id]).label("head"))


def eventsourcing_env(settings: Settings, *, create_table: bool = True) -> dict[str, str]:
    """Translate our settings into the library's environment variables."""
    env: dict[str, str] = {"CREATE_TABLE": "y" if create_table else "n"}
    if settings.is_postgres:
        url = settings.url
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=url.database or "",
            POSTGRES_HOST=url.host or "127.0.0.1",
            POSTGRES_PORT=str(url.port or 5432),
            POSTGRES_USER=url.username or "postgres",
            POSTGRES_PASSWORD=url.password or "",
            POSTGRES_POOL_SIZE=str(settings.database_pool_size),
            POSTGRES_MAX_OVERFLOW=str(settings.database_pool_size),
            POSTGRES_ENABLE_DB_FUNCTIONS="y",
            POSTGRES_LOCK_TIMEOUT="10",
            # The library SETs this on each of its connections, 5 s unless told, over
            # the server's own: a CLI command starved of CPU for 5 s inside one of the
            # store's transactions was killed on a busy CI machine. Our inserts
            # are single statements (the events lock never waits on a client), so the
            # timeout only has to catch a stuck client: production.conf's 60 s.
            POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT=str(IDLE_IN_TRANSACTION_TIMEOUT_S),
            POSTGRES_PRE_PING="n",
            APPLICATION_RECORDER_TOPIC=get_topic(OrderedPostgresApplicationRecorder),
        )
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
    else:
        path = settings.prepared_sqlite_path()
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(path),
            SQLITE_LOCK_TIMEOUT="30",
            APPLICATION_RECORDER_TOPIC=get_topic(GuardedSQLiteApplicationRecorder),
        )
    return env


A = TypeVar("A", bound=Aggregate)

# A record of another context that this application cannot decode (a snapshot's state
# holds that context's own types): to a command here it does not exist.
NOT_OURS = (AggregateNotFoundError, MapperDeserialisationError)


class CoopApplication(Application[UUID]):
    """Base of every context's application: one shared store, pages of 1,000."""

    name = STORE_NAME
    log_section_size = 1000
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The library names each subclass's tables after the class; every context
        # must write to the one store, so the name is pinned.
        super().__init_subclass__(**kwargs)
        cls.name = STORE_NAME

    def __init__(
        self,
        settings: Settings,
        *,
        create_table: bool = True,
        share_store_with: CoopApplication | None = None,
    ) -> None:
        """`share_store_with`: reuse that application's connections (one pool per
        process for every context, instead of one pool per context)."""
        self.settings = settings
        self._shared_factory = share_store_with.factory if share_store_with else None
        # The library merges os.environ under ours; ours must win so that a stray
        # POSTGRES_* variable in a shell never points the app at another database.
        super().__init__(env=eventsourcing_env(settings, create_table=create_table))

    def get_as(self, cls: type[A], aggregate_id: UUID, not_found: CoopError) -> A:
        """The aggregate `aggregate_id` if it is a `cls`, else `not_found` raised. The
        store holds every context's records, so an id a client sends may be any of
        them (the chart's and the hotel configuration's are fixed and public)."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except NOT_OURS:
            raise not_found from None
        if not isinstance(aggregate, cls):
            raise not_found
        return aggregate

    def today(self) -> date:
        """The cooperative's calendar day (COOP_TIMEZONE): what "future" means for the
        dates users enter, and the day of what happens now."""
        return datetime.now(self.settings.zone).date()

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        if self._shared_factory is not None:
            return self._shared_factory
        return super().construct_factory(env)

    def close(self) -> None:
        if self._shared_factory is not None:
            self.closing.set()  # the owner of the shared store closes it
            return
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def as_last_seen(self, aggregate_id: UUID) -> Any:
        """The aggregate as this process last saw it: from the repository cache without
        a query (read-only, not a copy), else loaded. For reads under a ReadGuard."""
        cache = self.repository.cache
        if cache is not None:
            try:
                return cache.get(aggregate_id)
            except KeyError:
                pass
        return self.repository.get(aggregate_id, deepcopy_from_cache=False)

    def last_seen_to_change(self, aggregate_id: UUID) -> Any:
        """A copy of the aggregate as this process last saw it, to change and save
        without first asking the store for newer events: a stale copy cannot be saved
        (its next version exists, IntegrityError), and the caller then retries with
        `repository.get`. For a writer that is nearly always the only one."""
        return deepcopy(self.as_last_seen(aggregate_id))

    def save(self, *objs: Aggregate | Any | None, **kwargs: Any) -> list[Recording[UUID]]:
        guards = _take_read_guards(objs)
        if guards:
            kwargs["read_guards"] = guards
        try:
            return super().save(*objs, **kwargs)
        except ConnectionUnavailableError as exc:
            # A till's sale answered INTERNAL when eight rang at once on a slow day.
            raise StoreBusy() from exc

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        recordings = self._record_guarded(processing_event)
        self._remember_saved(processing_event)
        return recordings

    def _remember_saved(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Put the saved aggregates the cache already held in it, as saved.

        With fast-forwarding on, the library leaves the cache at the version it last
        loaded, so `last_seen_to_change` would always hand out a stale copy of what
        this process itself just saved. Only aggregates already cached, and only over
        an older version: new sales and claims do not crowd the cache out, and of two
        threads saving the same aggregate the later version stays.
        """
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id, aggregate in processing_event.aggregates.items():
            try:
                cached = cache.get(aggregate_id)
            except KeyError:
                continue
            if cached.version < aggregate.version:
                cache.put(aggregate_id, aggregate)

    def _record_guarded(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        guards: list[ReadGuard] = processing_event.saved_kwargs.pop("read_guards", [])
        if not guards:
            return super()._record(processing_event)
        for _attempt in range(MAX_STALE_READ_RETRIES):
            processing_event.saved_kwargs["read_guards"] = oldest_reads(guards)
            try:
                return super()._record(processing_event)
            except StaleRead:
                # Another process changed what this decision read. Re-check against
                # the current state (its error if the decision no longer holds) and
                # try again; the events themselves do not change.
                guards = [g.recheck() for g in guards]
        raise LostRace(
            "what this command was checked against (e.g. the chart of accounts) kept "
            "changing while it was saved; nothing was written. Try again."
        )

"""The one event store every bounded context writes to.

All applications share the name "coop", hence one events table and one notification
log: projections, the welfare fund and the audit chain follow a single total order.
See docs/adr/0001-event-store-and-read-models.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import Environment, get_topic
from psycopg.sql import SQL, Identifier

from services.common.settings import Settings

STORE_NAME = "coop_store"


class DateAsISO(Transcoding):
    """Effective dates are calendar dates, not instants: store them as YYYY-MM-DD."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class OrderedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The library's recorder with its DB function, plus the table lock.

    The library's plain insert path locks the events table so that notification ids
    are committed in order (a follower can then never skip an id that commits later).
    Its faster DB-function path (POSTGRES_ENABLE_DB_FUNCTIONS) does not take that lock,
    so two concurrent transactions can commit ids out of order. We keep the function
    (one round trip per save) and put the lock back inside it.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.pg_function_name_insert_events = (
            f"coop_insert_events_ordered_{self.datastore.originator_id_type}"
        )
        self.sql_invoke_pg_function_insert_events = SQL("SELECT * FROM {schema}.{fn}((%s))").format(
            schema=Identifier(self.datastore.schema),
            fn=Identifier(self.pg_function_name_insert_events),
        )
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{fn}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
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
            lock_timeout=self.datastore.lock_timeout,
            channel=Identifier(self.channel_name),
            table=Identifier(self.events_table_name),
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )


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
            POSTGRES_PRE_PING="n",
            APPLICATION_RECORDER_TOPIC=get_topic(OrderedPostgresApplicationRecorder),
        )
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
    else:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(path),
            SQLITE_LOCK_TIMEOUT="30",
        )
    return env


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

"""Read-only access to the event store and the chain, for audit commands.

Audit commands run while the system is live: they read through their own engine, in
one read-only snapshot transaction (PostgreSQL: REPEATABLE READ READ ONLY; SQLite: a
deferred transaction on a `query_only` connection, which sees one WAL snapshot and
never takes the write lock the projector's engine takes with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    TableClause,
    column,
    create_engine,
    event,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.pool import NullPool

from services.audit.domain import PublishedHead, StoredRecord
from services.audit.projections.tables import audit_chain, audit_published_heads
from services.common.database import SQLITE_BUSY_TIMEOUT_S, store_schema
from services.common.eventstore import STORE_NAME
from services.common.idempotency import IdempotencyClaim
from services.common.settings import Settings
from services.ledger.domain.donations import (
    DONATION_TOPICS,
    OPERATIONS_NAMING_A_DONOR,
    may_name_a_donor,
)
from services.welfare_fund.domain import is_an_operation_on_a_beneficiary, names_a_beneficiary

READ_PAGE_SIZE = 10_000  # rows per keyset page: bounded memory, few round trips


def create_snapshot_engine(settings: Settings) -> Engine:
    """An engine whose transactions are read-only snapshots of the live database."""
    if settings.is_postgres:
        search_path = f"{settings.database_schema},public" if settings.database_schema else "public"
        return create_engine(
            settings.sync_url,
            poolclass=NullPool,
            isolation_level="REPEATABLE READ",
            connect_args={
                "options": f"-csearch_path={search_path} -cdefault_transaction_read_only=on"
            },
        )
    engine = create_engine(
        settings.sync_url,
        poolclass=NullPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def store_exists(settings: Settings) -> bool:
    """Whether the configured address holds an event store, found without creating
    anything: neither the SQLite file (sqlite3 makes a missing one; here it is opened
    read-only, by URI) nor the PostgreSQL schema (the runtime's set-up makes both, and
    a mistyped address once got a fresh store and an "OK" from the audit commands)."""
    events_name = events_table(settings)[0].name
    if settings.is_postgres:
        engine = create_engine(settings.sync_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    text("SELECT to_regclass(:name)"),
                    {"name": f'"{store_schema(settings)}"."{events_name}"'},
                ).scalar()
        finally:
            engine.dispose()
        return found is not None
    path = settings.sqlite_path
    if not path.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (events_name,)
            ).fetchone()
    except sqlite3.DatabaseError:  # not a database at all (a mistyped path to a file)
        return False
    return found is not None


def events_table(settings: Settings) -> tuple[TableClause, Any]:
    """The library's events table and its position column on this backend."""
    if settings.is_postgres:
        events = table(
            f"{STORE_NAME}_events",
            column("notification_id"),
            column("originator_id"),
            column("originator_version"),
            column("topic"),
            column("state"),
        )
        return events, events.c.notification_id
    # SQLite: the notification id is the table's rowid.
    events = table(
        "stored_events",
        column("rowid"),
        column("originator_id"),
        column("originator_version"),
        column("topic"),
        column("state"),
    )
    return events, events.c.rowid


def snapshots_table(settings: Settings) -> TableClause:
    """The library's snapshots table on this backend (no position: snapshots are not
    in the notification log, hence not in the chain)."""
    name = f"{STORE_NAME}_snapshots" if settings.is_postgres else "stored_snapshots"
    return table(
        name,
        column("originator_id"),
        column("originator_version"),
        column("topic"),
        column("state"),
    )


def snapshot_keys(conn: Connection, settings: Settings) -> list[tuple[UUID, int]]:
    """(aggregate id, version) of every stored snapshot, by aggregate and version; none
    when the store has no snapshots table (no context ever snapshotted)."""
    snapshots = snapshots_table(settings)
    if not inspect(conn).has_table(snapshots.name):
        return []
    rows = conn.execute(
        select(snapshots.c.originator_id, snapshots.c.originator_version).order_by(
            snapshots.c.originator_id, snapshots.c.originator_version
        )
    ).all()
    return [(_as_uuid(aggregate_id), int(version)) for aggregate_id, version in rows]


def read_snapshot(
    conn: Connection, settings: Settings, aggregate_id: UUID, version: int
) -> tuple[str, bytes] | None:
    """One stored snapshot's topic and stored bytes (None if there is none)."""
    snapshots = snapshots_table(settings)
    row = conn.execute(
        select(snapshots.c.topic, snapshots.c.state)
        .where(snapshots.c.originator_id == _stored_id(settings, aggregate_id))
        .where(snapshots.c.originator_version == version)
    ).first()
    return None if row is None else (str(row[0]), _as_bytes(row[1]))


def iter_aggregate_records(
    conn: Connection,
    settings: Settings,
    aggregate_id: UUID,
    *,
    until_version: int,
    page_size: int = READ_PAGE_SIZE,
) -> Iterator[StoredRecord]:
    """One aggregate's stored events with version <= until_version, in version order."""
    events, position = events_table(settings)
    key = _stored_id(settings, aggregate_id)
    last = 0
    while True:
        rows = conn.execute(
            select(position, events.c.originator_version, events.c.topic, events.c.state)
            .where(events.c.originator_id == key)
            .where(events.c.originator_version > last)
            .where(events.c.originator_version <= until_version)
            .order_by(events.c.originator_version)
            .limit(page_size)
        ).all()
        for notification_id, version, topic, state in rows:
            yield StoredRecord(
                int(notification_id), aggregate_id, int(version), str(topic), _as_bytes(state)
            )
        if len(rows) < page_size:
            return
        last = int(rows[-1][1])


def _stored_id(settings: Settings, aggregate_id: UUID) -> object:
    # SQLite stores ids as 32 hex digits (the library writes UUID.hex).
    return aggregate_id if settings.is_postgres else aggregate_id.hex


def _as_bytes(value: Any) -> bytes:
    # A hand-edited SQLite row can hold TEXT where the library wrote a BLOB; hash
    # what is there rather than fail, so verification can say where it differs.
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def iter_records(
    conn: Connection,
    settings: Settings,
    *,
    after: int = 0,
    until: int | None = None,
    page_size: int = READ_PAGE_SIZE,
) -> Iterator[StoredRecord]:
    """Every stored event with position in (after, until], in order."""
    events, position = events_table(settings)
    last = after
    while True:
        query = (
            select(
                position,
                events.c.originator_id,
                events.c.originator_version,
                events.c.topic,
                events.c.state,
            )
            .where(position > last)
            .order_by(position)
            .limit(page_size)
        )
        if until is not None:
            query = query.where(position <= until)
        rows = _fetch_all(conn, query)
        for notification_id, originator_id, version, topic, state in rows:
            yield StoredRecord(
                notification_id,
                originator_id if type(originator_id) is UUID else _as_uuid(originator_id),
                version,
                topic,
                state if type(state) is bytes else _as_bytes(state),
            )
        if len(rows) < page_size:
            return
        last = int(rows[-1][0])


def _fetch_all(conn: Connection, query: Select[Any]) -> list[Any]:
    """Rows as driver tuples, in `conn`'s transaction (its snapshot). A replay reads
    every stored event: on PostgreSQL in binary (bytea arrives as bytes, not hex text
    to decode), measured at less than half the time of SQLAlchemy's rows. The query's
    bounds are integers, rendered inline."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor(binary=True) as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    return list(driver.execute(sql).fetchall())


def iter_chain(
    conn: Connection, *, after: int = 0, page_size: int = READ_PAGE_SIZE
) -> Iterator[tuple[int, bytes]]:
    """The stored chain: (position, hash) with position > after, in order."""
    c = audit_chain.c
    last = after
    while True:
        rows = conn.execute(
            select(c.position, c.hash)
            .where(c.position > last)
            .order_by(c.position)
            .limit(page_size)
        ).all()
        for position, digest in rows:
            yield int(position), bytes(digest)
        if len(rows) < page_size:
            return
        last = int(rows[-1][0])


@dataclass(frozen=True)
class ChainHead:
    position: int
    hash: bytes


def chain_head(conn: Connection) -> ChainHead | None:
    row = conn.execute(
        select(audit_chain.c.position, audit_chain.c.hash)
        .order_by(audit_chain.c.position.desc())
        .limit(1)
    ).first()
    return None if row is None else ChainHead(int(row[0]), bytes(row[1]))


def chain_hash_at(conn: Connection, position: int) -> bytes | None:
    digest = conn.execute(
        select(audit_chain.c.hash).where(audit_chain.c.position == position)
    ).scalar_one_or_none()
    return None if digest is None else bytes(digest)


@dataclass(frozen=True)
class PublishedHeadRow:
    position: int
    hash: str
    published_at: datetime
    actor: str
    chain_format: int


def published_heads(conn: Connection) -> list[PublishedHeadRow]:
    h = audit_published_heads.c
    rows = conn.execute(
        select(h.position, h.hash, h.published_at, h.actor, h.chain_format).order_by(h.position)
    ).all()
    return [PublishedHeadRow(int(p), str(d), at, str(a), int(f)) for p, d, at, a, f in rows]


_PUBLISHED_TOPIC = get_topic(PublishedHead.Published)


def heads_to_meet(conn: Connection, settings: Settings, *, after: int = 0) -> list[ChainHeadToMeet]:
    """Every published head after position `after` that a recomputed chain must pass
    through: the rows of the heads table, and the heads the chained PublishedHead
    events record. The table alone is one DELETE away from saying nothing; its rows
    and the events disagreeing fail the run as a head not met. A state that cannot
    be read is left out (its bytes are still chained)."""
    found = {
        ChainHeadToMeet(row.position, bytes.fromhex(row.hash), row.chain_format)
        for row in published_heads(conn)
        if row.position > after
    }
    events, position = events_table(settings)
    query = select(events.c.state).where(events.c.topic == _PUBLISHED_TOPIC, position > after)
    for (stored,) in conn.execute(query):
        try:
            state = json.loads(bytes(stored))
            head = ChainHeadToMeet(
                int(state["position"]),
                bytes.fromhex(state["head_hash"]),
                int(state.get("chain_format", 1)),
            )
        except (ValueError, TypeError, KeyError):
            continue
        if head.position > after:
            found.add(head)
    return sorted(found, key=lambda head: (head.position, head.hash))


@dataclass(frozen=True)
class ChainHeadToMeet:
    position: int
    hash: bytes
    chain_format: int


def head_position(conn: Connection, settings: Settings) -> int:
    _events, position = events_table(settings)
    value = conn.execute(select(position).order_by(position.desc()).limit(1)).scalar()
    return int(value or 0)


# -- peeking into stored state without decoding it into classes -------------------


def peek_state(mapper: Mapper[Any], state: bytes) -> dict[str, Any] | None:
    """The stored JSON object, or None if it cannot be read (e.g. unknown cipher).

    Only the library's own framing (cipher, compressor) is undone; fields a context
    encrypts itself (beneficiary data) stay ciphertext. Topics need not be importable,
    so events of every context can be shown.
    """
    try:
        if mapper.cipher is not None:
            state = mapper.cipher.decrypt(state)
        if mapper.compressor is not None:
            state = mapper.compressor.decompress(state)
        value = json.loads(state)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


CLAIM_TOPIC = get_topic(IdempotencyClaim.Claimed)


def claims_for_a_beneficiary(topic: str, state: dict[str, Any] | None) -> bool:
    """Whether a stored event is the idempotency claim of a command on one beneficiary
    (its result reference names her, or its request did): the export withholds it,
    and the history does not list it. Claim ids are uuid5 of the client's key, so
    anyone who guesses a key (`enrol-7`) would otherwise learn whether and when a
    command ran on her; and a request's digest, with her reference, confirms which
    commitments are hers. A state that cannot be read is not known to name her:
    shown as the rest."""
    if topic != CLAIM_TOPIC or state is None:
        return False
    ref = state.get("result_ref")
    if isinstance(ref, dict) and names_a_beneficiary(ref):
        return True
    return is_an_operation_on_a_beneficiary(state.get("operation"))


def names_a_donor(topic: str, state: dict[str, Any] | None) -> bool:
    """Whether a stored event may name a donor (`may_name_a_donor`), or is the claim
    of a command whose request may have: the export withholds it. A state that
    cannot be read is not known to name anyone: shown as the rest."""
    if state is None:
        return False
    if topic == CLAIM_TOPIC:
        return state.get("operation") in OPERATIONS_NAMING_A_DONOR
    return may_name_a_donor(topic, state)


def may_concern_a_donor(topic: str) -> bool:
    """Whether `names_a_donor` needs this event's state read (cheap, by topic)."""
    return topic == CLAIM_TOPIC or topic in DONATION_TOPICS


def _typed(value: Any, type_name: str) -> str | None:
    # The library's JSON transcoder writes custom types as {"_type_": ..., "_data_": ...}.
    if isinstance(value, dict) and value.get("_type_") == type_name:
        data = value.get("_data_")
        return data if isinstance(data, str) else None
    return None


def recorded_at(state: dict[str, Any] | None) -> datetime | None:
    if state is None:
        return None
    text = _typed(state.get("timestamp"), "datetime_iso")
    return datetime.fromisoformat(text) if text else None


EFFECTIVE_DATE_FIELDS = (
    "effective_date",
    "business_date",
    "committed_on",
    "approved_on",
    "paid_on",
    "reversed_on",
    "cancelled_on",
    "on",
)


def effective_date(state: dict[str, Any] | None) -> date | None:
    if state is None:
        return None
    # Each context names its day after what happened on it (a payment's paid_on, a
    # booking step's on, a sale's business_date); the first present is the one.
    value = next(
        (state[name] for name in EFFECTIVE_DATE_FIELDS if state.get(name) is not None), None
    )
    text = _typed(value, "date_iso") or (value if isinstance(value, str) else None)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def text_field(state: dict[str, Any] | None, *names: str) -> str | None:
    if state is None:
        return None
    for name in names:
        value = state.get(name)
        if isinstance(value, str):
            return value
    return None

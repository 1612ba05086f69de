"""Crypto-shredding: personal data sealed under a key per data subject, the keys kept
in a table outside the event store.

A text is sealed with AES-256-GCM under its subject's key, the subject's id bound as
associated data (a sealed text copied onto another subject does not open). Deleting
the key makes every copy of the sealed text unreadable (events, snapshots, read
models, exports, backups of those) while the facts recorded beside it stay. A key
table is NOT a read model: `coop projections rebuild` never empties it; back it up on
its own and expire those backups.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Delete,
    Engine,
    LargeBinary,
    Table,
    Uuid,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.database import metadata
from services.common.eventstore import CoopApplication
from services.common.projections import DomainEvent, Process

KEY_BYTES = 32
NONCE_BYTES = 12
SEAL_VERSION = "v1:"

log = logging.getLogger("coop.sealing")


def key_table(name: str, subject_column: str) -> Table:
    """A table of one key per subject (its id in `subject_column`)."""
    return Table(
        name,
        metadata,
        Column(subject_column, Uuid, primary_key=True),
        Column("key_bytes", LargeBinary(KEY_BYTES), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def seal(key: bytes, subject_id: UUID, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), subject_id.bytes)
    return SEAL_VERSION + base64.b64encode(nonce + sealed).decode()


def keyed_digest(key: bytes, subject_id: UUID, text: str) -> str:
    """A digest of `text` that only the subject's key can reproduce: comparable while
    the key lives, and meaningless once it is shredded (a plain hash of a name and a
    birth date could be confirmed by anyone who guesses them). The HMAC key is derived
    from the sealing key, so the AES key itself never signs anything."""
    mac_key = hmac.new(key, b"coop:keyed-digest:" + subject_id.bytes, hashlib.sha256).digest()
    return hmac.new(mac_key, text.encode(), hashlib.sha256).hexdigest()


def unseal(key: bytes, subject_id: UUID, sealed: str) -> str | None:
    """The plaintext, or None if the text was not sealed with this key for this subject."""
    if not sealed.startswith(SEAL_VERSION):
        return None
    try:
        raw = base64.b64decode(sealed[len(SEAL_VERSION) :], validate=True)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject_id.bytes).decode()
    except (InvalidTag, binascii.Error, ValueError):
        return None


def _subject_column(table: Table) -> Column[UUID]:
    (column,) = table.primary_key.columns
    return column


class KeyStore:
    """The synchronous side, used by applications: create, fetch and delete keys."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self.engine = engine
        self.table = table
        self.subject = _subject_column(table)

    def create(self, subject_id: UUID) -> bytes:
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        with self.engine.begin() as conn:
            conn.execute(
                insert(self.table).values(
                    {
                        self.subject.name: subject_id,
                        "key_bytes": key,
                        "created_at": datetime.now(UTC),
                    }
                )
            )
        return key

    def get_or_create(self, subject_id: UUID) -> bytes:
        """The subject's key, created if it has none. A retried command (same subject)
        seals under the key its first attempt created; of two racing creates, one
        inserts and the other reads that key."""
        key = self.get(subject_id)
        if key is not None:
            # A key in use again is as recent as its use: a sweep of keys whose subject
            # was never stored (`delete(..., created_before=...)`) must not take the
            # key of a command being decided now on a key an old refusal created.
            with self.engine.begin() as conn:
                conn.execute(
                    update(self.table)
                    .where(self.subject == subject_id)
                    .values(created_at=datetime.now(UTC))
                )
            return key
        try:
            return self.create(subject_id)
        except IntegrityError:
            key = self.get(subject_id)
            if key is None:  # created and deleted in between: start again
                return self.create(subject_id)
            return key

    def get(self, subject_id: UUID) -> bytes | None:
        with self.engine.connect() as conn:
            key = conn.execute(
                select(self.table.c.key_bytes).where(self.subject == subject_id)
            ).scalar_one_or_none()
        return None if key is None else bytes(key)

    def delete(self, subject_id: UUID, *, created_before: datetime | None = None) -> None:
        """`created_before`: only a key not used since (in the same statement, so that
        a key taken into use meanwhile stays)."""
        query = delete(self.table).where(self.subject == subject_id)
        if created_before is not None:
            query = query.where(self.table.c.created_at < created_before)
        self._delete(query)
        self._scrub_copies()

    def delete_existing(self, subject_ids: Sequence[UUID]) -> int:
        """Delete whichever of these subjects' keys still exist; return how many did.
        The files are scrubbed only if one did (a sweep mostly finds none)."""
        if not subject_ids:
            return 0
        deleted = self._delete(delete(self.table).where(self.subject.in_(subject_ids)))
        if deleted:
            self._scrub_copies()
        return deleted

    def _delete(self, query: Delete) -> int:
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.begin() as conn:
            if sqlite:
                # A deleted row's bytes stay in its page until overwritten: zero them.
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            try:
                return conn.execute(query).rowcount
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA secure_delete = OFF")

    def _scrub_copies(self) -> None:
        """Deleted is not yet gone from the files: the key's page, as it was, is still in
        SQLite's write-ahead log until a checkpoint moves the zeroed page in and the log
        is truncated; PostgreSQL keeps the dead row until VACUUM. (Best effort: a
        checkpoint that readers hold back truncates at a later one. The server's own WAL
        archives and base backups keep the key until they expire, as docs/hotel.md says
        of backups.)"""
        if self.engine.dialect.name == "sqlite":
            # On the driver's connection: through SQLAlchemy it would run inside the
            # BEGIN IMMEDIATE every transaction starts with, where it is refused. With no
            # busy timeout: TRUNCATE waits for every reader (an audit replay holds one
            # for its whole run) and holds back every writer while it waits, so with
            # the store's 30 s a forget and every sale behind it waited that long.
            raw = self.engine.raw_connection()
            try:
                raw.execute("PRAGMA busy_timeout = 0")
                busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError:
                busy = 1
            finally:
                raw.close()
            if busy:  # readers or a writer held it back: a later checkpoint truncates
                log.info("key store: write-ahead log not truncated yet")
        elif self.engine.dialect.name == "postgresql":
            table = self.engine.dialect.identifier_preparer.format_table(self.table)
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"VACUUM {table}")


async def read_keys(
    conn: AsyncConnection, table: Table, subject_ids: Iterable[UUID]
) -> dict[UUID, bytes]:
    """The asynchronous side, for resolvers that open sealed data: the keys that still
    exist for these subjects (an erased subject has none)."""
    ids = list(subject_ids)
    if not ids:
        return {}
    subject = _subject_column(table)
    rows = await conn.execute(select(subject, table.c.key_bytes).where(subject.in_(ids)))
    return {subject_id: bytes(key) for subject_id, key in rows}


CATCH_UP_PAGE = 1000  # erasure events per read when a shredder first starts


class KeyShredder(Process):
    """Deletes the key of every subject whose erasure event (`topics`) is in the log.

    The command that erases saves its event, then deletes the key: a process that died
    in between left the sealed data readable until someone sent the command again.
    Run by the projector with the read models, this finishes it from the log, whichever
    process saved the event, crash or not (deleting a deleted key does nothing). It
    writes no events."""

    catches_up_on_its_own: ClassVar[bool] = True

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def handle(self, events: Sequence[tuple[int, DomainEvent]]) -> int | None:
        self.keys.delete_existing([event.originator_id for _position, event in events])
        return None

    def catch_up(self, app: CoopApplication, up_to: int) -> None:
        """The erasure events up to `up_to`, read by topic (one pass over the log, at
        the first start of the release that added the shredder), their keys deleted."""
        start = 1
        while start <= up_to:
            page = app.recorder.select_notifications(
                start, CATCH_UP_PAGE, stop=up_to, topics=sorted(self.topics)
            )
            if not page:
                break
            # The library types ids UUID | str; this store keeps UUIDs.
            self.keys.delete_existing([UUID(str(n.originator_id)) for n in page])
            start = page[-1].id + 1

    def record(self, conn: Connection, written: int) -> None:
        raise AssertionError("it writes no events, so nothing is recorded")

"""The chain projector (every notification, raw) and the published-heads projector.

The chain is extended exactly once per event: the runner commits the page's rows and
the tracking position together, and the previous hash is read in that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Table, insert, select

from services.audit.domain import CHAIN_FORMAT, GENESIS_HASH, PublishedHead, StoredRecord, link_hash
from services.audit.projections.tables import audit_chain, audit_published_heads
from services.common.bulk import insert_rows
from services.common.projections import DomainEvent, Projection, RawProjection


def as_record(notification: Notification) -> StoredRecord:
    originator_id = notification.originator_id
    return StoredRecord(
        position=notification.id,
        aggregate_id=originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
        version=notification.originator_version,
        topic=notification.topic,
        state=bytes(notification.state),
    )


_LAST_LINK = select(audit_chain.c.hash).order_by(audit_chain.c.position.desc()).limit(1)


def last_link(conn: Connection) -> bytes:
    """The hash of the newest chained event (genesis on an empty chain)."""
    row = conn.execute(_LAST_LINK).first()
    return bytes(row[0]) if row is not None else GENESIS_HASH


class AuditChainProjection(RawProjection):
    name: ClassVar[str] = "audit_chain"
    tables: ClassVar[tuple[Table, ...]] = (audit_chain,)

    def apply_notifications(self, conn: Connection, notifications: Sequence[Notification]) -> None:
        previous_hash = last_link(conn)
        rows: list[tuple[int, bytes, int]] = []
        for notification in notifications:
            previous_hash = link_hash(previous_hash, as_record(notification))
            rows.append((notification.id, previous_hash, CHAIN_FORMAT))
        insert_rows(conn, audit_chain, rows)


class AuditHeadsProjection(Projection):
    name: ClassVar[str] = "audit_heads"
    tables: ClassVar[tuple[Table, ...]] = (audit_published_heads,)
    topics: ClassVar[frozenset[str]] = frozenset({get_topic(PublishedHead.Published)})

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        rows = [
            {
                "position": event.position,
                "hash": event.head_hash,
                "published_at": event.timestamp,
                "actor": event.actor,
                "head_id": event.originator_id,
                "chain_format": event.chain_format,
            }
            for _position, event in events
            if isinstance(event, PublishedHead.Published)
        ]
        if rows:
            conn.execute(insert(audit_published_heads), rows)

"""Audit read models. Rebuildable from the event log (the chain from the stored bytes)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, SmallInteger, String, Table, Uuid

from services.common.database import metadata

# One row per stored event: its position and chain hash (32 bytes of SHA-256), and
# the chain format the hash is in (services/audit/domain/chain.py). A store whose
# table predates the column is rechained from event 0 in the current format when
# its projector starts (a changed shape resets the read model).
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
    Column("chain_format", SmallInteger, nullable=False),
)

# Heads handed to auditors (each one is also a PublishedHead event in the store).
audit_published_heads = Table(
    "audit_published_heads",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("head_id", Uuid, nullable=False),
    Column("chain_format", SmallInteger, nullable=False),
)

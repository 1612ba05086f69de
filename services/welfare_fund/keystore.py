"""Per-beneficiary keys, kept outside the event store (crypto-shredding).

A case note is sealed with AES-256-GCM under a key that exists only in this table.
`forgetBeneficiary` deletes the key: every copy of the sealed note (events,
snapshots, read models, backups of those) becomes unreadable, while the accounting
facts stay. The table is NOT a read model: it is never rebuilt or emptied by
`coop projections rebuild`; back it up separately and expire its backups.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, DateTime, Engine, LargeBinary, Table, Uuid, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.database import metadata

KEY_BYTES = 32
NONCE_BYTES = 12
SEAL_VERSION = "v1:"

welfare_beneficiary_keys = Table(
    "welfare_beneficiary_keys",
    metadata,
    Column("beneficiary_id", Uuid, primary_key=True),
    Column("key_bytes", LargeBinary(KEY_BYTES), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

KEY_TABLES = (welfare_beneficiary_keys,)


def seal(key: bytes, beneficiary_id: UUID, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), beneficiary_id.bytes)
    return SEAL_VERSION + base64.b64encode(nonce + sealed).decode()


def unseal(key: bytes, beneficiary_id: UUID, sealed: str) -> str | None:
    """The plaintext, or None if the text was not sealed with this key."""
    if not sealed.startswith(SEAL_VERSION):
        return None
    try:
        raw = base64.b64decode(sealed[len(SEAL_VERSION) :], validate=True)
        return (
            AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], beneficiary_id.bytes).decode()
        )
    except (InvalidTag, binascii.Error, ValueError):
        return None


class KeyStore:
    """Synchronous side, used by the application (create, delete)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, beneficiary_id: UUID) -> bytes:
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        with self.engine.begin() as conn:
            conn.execute(
                insert(welfare_beneficiary_keys).values(
                    beneficiary_id=beneficiary_id, key_bytes=key, created_at=datetime.now(UTC)
                )
            )
        return key

    def get(self, beneficiary_id: UUID) -> bytes | None:
        with self.engine.connect() as conn:
            key = conn.execute(
                select(welfare_beneficiary_keys.c.key_bytes).where(
                    welfare_beneficiary_keys.c.beneficiary_id == beneficiary_id
                )
            ).scalar_one_or_none()
        return None if key is None else bytes(key)

    def delete(self, beneficiary_id: UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(welfare_beneficiary_keys).where(
                    welfare_beneficiary_keys.c.beneficiary_id == beneficiary_id
                )
            )


async def read_key(conn: AsyncConnection, beneficiary_id: UUID) -> bytes | None:
    """Asynchronous side, used by GraphQL resolvers to open a note for a fund officer."""
    key = (
        await conn.execute(
            select(welfare_beneficiary_keys.c.key_bytes).where(
                welfare_beneficiary_keys.c.beneficiary_id == beneficiary_id
            )
        )
    ).scalar_one_or_none()
    return None if key is None else bytes(key)

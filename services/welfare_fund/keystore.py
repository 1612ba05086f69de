"""Per-beneficiary keys, kept outside the event store (crypto-shredding, see
services/common/sealing.py).

A case note is sealed under its beneficiary's key. `forgetBeneficiary` deletes the
key: every copy of the sealed note becomes unreadable, while the accounting facts stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import sealing
from services.common.sealing import key_table

welfare_beneficiary_keys = key_table("welfare_beneficiary_keys", "beneficiary_id")

KEY_TABLES = (welfare_beneficiary_keys,)


class KeyStore(sealing.KeyStore):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, welfare_beneficiary_keys)


async def read_keys(conn: AsyncConnection, beneficiary_ids: Iterable[UUID]) -> dict[UUID, bytes]:
    """Used by GraphQL resolvers to open notes for a fund officer: the keys that still
    exist (a forgotten beneficiary has none)."""
    return await sealing.read_keys(conn, welfare_beneficiary_keys, beneficiary_ids)

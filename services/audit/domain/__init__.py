"""Audit domain: the hash chain and published heads (pure Python, no I/O)."""

from services.audit.domain.chain import (
    GENESIS_HASH,
    StoredRecord,
    VerifyResult,
    chain,
    link_hash,
    verify,
)
from services.audit.domain.heads import PublishedHead, head_id_for

__all__ = [
    "GENESIS_HASH",
    "PublishedHead",
    "StoredRecord",
    "VerifyResult",
    "chain",
    "head_id_for",
    "link_hash",
    "verify",
]

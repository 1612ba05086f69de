"""Audit domain: the hash chain and published heads (pure Python, no I/O)."""

from services.audit.domain.chain import (
    CHAIN_FORMAT,
    GENESIS_HASH,
    NOT_THROUGH_EXPECTED,
    ChainCheck,
    StoredRecord,
    VerifyResult,
    chain,
    event_digest,
    link_digest,
    link_hash,
    link_hash_v1,
    verify,
)
from services.audit.domain.heads import PublishedHead, head_id_for
from services.audit.domain.snapshots import SNAPSHOTS_FAILED, SnapshotFinding

__all__ = [
    "CHAIN_FORMAT",
    "GENESIS_HASH",
    "NOT_THROUGH_EXPECTED",
    "SNAPSHOTS_FAILED",
    "ChainCheck",
    "PublishedHead",
    "SnapshotFinding",
    "StoredRecord",
    "VerifyResult",
    "chain",
    "event_digest",
    "head_id_for",
    "link_digest",
    "link_hash",
    "link_hash_v1",
    "verify",
]

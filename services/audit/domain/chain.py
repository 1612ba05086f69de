"""The hash chain over every stored event. Pure: bytes in, bytes out.

    h(first) = SHA-256(GENESIS ‖ link(first)),  h(n) = SHA-256(h(n-1) ‖ link(n))
    link     = position       8 bytes, unsigned big-endian
             ‖ event digest   32 bytes
    digest   = SHA-256(aggregate id  16 bytes, the UUID's bytes (RFC 4122 order)
                     ‖ version       8 bytes, signed big-endian
                     ‖ len(topic)    4 bytes, unsigned big-endian ‖ topic, UTF-8
                     ‖ len(state)    8 bytes, unsigned big-endian ‖ state, the stored bytes)

where h(n-1) is the hash of the previous stored event in notification order (positions
may have gaps on PostgreSQL: a rolled-back insert consumes a sequence number).

Every variable-length field is length-prefixed and every other field has a fixed
width, so two different events can never encode to the same bytes. The stored bytes
are hashed as they are (ciphertext where a context encrypts), so crypto-shredding a
person's key never breaks the chain. The chain links each event's digest rather than
its bytes so that an export can withhold an event (a beneficiary's: a timeline of a
protected person) and still be verified: it gives the digest in the event's place.

This is chain format 2. Format 1 (until 2026-11) hashed the event's fields in the
link itself; heads published under it still verify (`link_hash_v1`). See docs/audit.md.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from services.audit.domain.snapshots import SnapshotFinding

GENESIS_HASH = bytes(32)
CHAIN_FORMAT = 2
_LINK = struct.Struct(">32sQ32s")
_EVENT_FIXED = struct.Struct(">16sqI")
_STATE_LENGTH = struct.Struct(">Q")
_V1_FIXED = struct.Struct(">32sQ16sqI")


class StoredRecord(NamedTuple):
    """One stored event as the chain sees it (a tuple: a replay builds millions)."""

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes


def event_digest(record: StoredRecord) -> bytes:
    """SHA-256 of one event's identity and stored bytes (what an export may give in
    place of the event)."""
    topic = record.topic.encode("utf-8")
    digest = hashlib.sha256(
        _EVENT_FIXED.pack(record.aggregate_id.bytes, record.version, len(topic))
    )
    digest.update(topic)
    digest.update(_STATE_LENGTH.pack(len(record.state)))
    digest.update(record.state)
    return digest.digest()


def link_digest(previous_hash: bytes, position: int, digest: bytes) -> bytes:
    """The chain hash at `position`, given the previous hash and the event's digest."""
    return hashlib.sha256(_LINK.pack(previous_hash, position, digest)).digest()


def link_hash(previous_hash: bytes, record: StoredRecord) -> bytes:
    """The chain hash of `record`, given the hash of the record before it."""
    return link_digest(previous_hash, record.position, event_digest(record))


def link_hash_v1(previous_hash: bytes, record: StoredRecord) -> bytes:
    """The chain hash of `record` in chain format 1 (heads published before format 2)."""
    topic = record.topic.encode("utf-8")
    digest = hashlib.sha256(
        _V1_FIXED.pack(
            previous_hash, record.position, record.aggregate_id.bytes, record.version, len(topic)
        )
    )
    digest.update(topic)
    digest.update(_STATE_LENGTH.pack(len(record.state)))
    digest.update(record.state)
    return digest.digest()


def chain(records: Iterable[StoredRecord], previous_hash: bytes = GENESIS_HASH) -> Iterator[bytes]:
    """The hash of each record in turn."""
    for record in records:
        previous_hash = link_hash(previous_hash, record)
        yield previous_hash


NOT_THROUGH_EXPECTED = (
    "the chain does not pass through an expected head (published, or given to --expect)"
)
STORE_LACKS_EVENT = "the chain has an event the store no longer has"
CHAIN_LACKS_EVENT = "the store has an event the chain never had"
BYTES_CHANGED = "the event's stored bytes do not match the chain"
HEAD_NOT_IN_CHAIN = (
    "an expected head's position is not in the chain "
    "(cut short, or rewritten around removed events)"
)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_checked: int
    head_position: int  # the last position checked (the start position if none)
    head_hash: bytes  # the recomputed hash there
    first_bad_position: int | None
    reason: str | None
    # The event log's last position when checked: events after head_position are not
    # chained yet (the chain's projector is behind) and were not checked.
    log_head_position: int = 0
    # Where the recomputation started (0: event 0; else a published head).
    start_position: int = 0
    # Stored snapshots compared with the state their events produce (not chained,
    # so checked apart: services/audit/snapshots.py), how many of them failed, and
    # the first findings. `ok` is false when any failed.
    snapshots_checked: int = 0
    snapshots_failed: int = 0
    snapshot_findings: tuple[SnapshotFinding, ...] = ()


def verify(
    records: Iterable[StoredRecord],
    stored_hashes: Iterable[tuple[int, bytes]],
    *,
    start_position: int = 0,
    start_hash: bytes = GENESIS_HASH,
    expected: Mapping[int, Iterable[bytes]] | None = None,
    v1_until: int = 0,
) -> VerifyResult:
    """Recompute the chain from `records` and compare it with the stored chain.

    Both inputs are in ascending position order and start after `start_position`.
    Stored hashes may end before the records (the projector has not chained the
    newest events yet); those records are not checked. Any other difference is a
    failure at the first position where the two sides disagree:
    - an event whose bytes changed: the recomputed hash differs;
    - a deleted event: the chain has a position the store no longer has;
    - an inserted event: the store has a position the chain never had.
    `expected` maps positions to hashes published or held earlier; the recomputed
    chain must pass through each of them. A position before `start_position` cannot be
    checked from there: the caller chooses a start at or before every head it
    expects (ValueError otherwise; a head dropped in silence once let `--from-head`
    report OK without checking the head the auditor held).

    A head taken in chain format 1 is met by the format-1 hash at its position: up to
    `v1_until`, a run from event 0 recomputes both formats (a format-1 head can only
    be checked from the genesis hash, which both formats share).
    """
    check = ChainCheck(
        expected or {}, start_position=start_position, start_hash=start_hash, v1_until=v1_until
    )
    event = check.event  # bound once: this loop runs once per stored event
    record_iter = iter(records)
    record = next(record_iter, None)
    for stored_position, stored_hash in stored_hashes:
        if record is None or record.position > stored_position:
            check.chain_only(stored_position)
            break
        if record.position < stored_position:
            check.store_only(record.position)
            break
        if not event(record, event_digest(record), stored_hash):
            break
        record = next(record_iter, None)
    return check.result()


class ChainCheck:
    """The rules of `verify`, one event at a time: each recomputed hash as stored,
    every expected head passed through (format-1 heads up to `v1_until`, from event 0
    only), the first failure kept. Fed by `verify`, and by the export, which goes on
    reading after a failure (it writes every event, then says whether they verify).
    """

    def __init__(
        self,
        expected: Mapping[int, Iterable[bytes]],
        *,
        start_position: int = 0,
        start_hash: bytes = GENESIS_HASH,
        v1_until: int = 0,
    ) -> None:
        pending = {position: set(hashes) for position, hashes in expected.items()}
        unreachable = [p for p in pending if p < start_position]
        if unreachable:
            raise ValueError(
                f"expected head at {min(unreachable)} is before the start {start_position}"
            )
        self._start_position = start_position
        self._v1_until = 0 if start_position else v1_until
        self._head_position = start_position
        self._head_hash = start_hash
        self._previous_v1 = start_hash
        self._checked = 0
        self._failure: tuple[int, str] | None = None
        at_start = pending.pop(start_position, None)
        if at_start is not None and at_start != {start_hash}:
            self._failure = (start_position, NOT_THROUGH_EXPECTED)
        self._pending = pending

    def event(self, record: StoredRecord, digest: bytes, stored_hash: bytes | None) -> bool:
        """The next stored event (`digest`: its `event_digest`) and the chain's hash
        at its position (None: the chain has no row there). False once the chain has
        failed."""
        if self._failure is not None:
            return False  # after a failure, hashes recomputed from it would prove nothing
        position = record.position
        if stored_hash is None:
            self.store_only(position)
            return False
        head_hash = link_digest(self._head_hash, position, digest)
        if head_hash != stored_hash:
            self._failure = (position, BYTES_CHANGED)
            return False
        if position <= self._v1_until:
            self._previous_v1 = link_hash_v1(self._previous_v1, record)
        held = self._pending.pop(position, None)
        if held is not None:
            met = {head_hash}
            if position <= self._v1_until:
                met.add(self._previous_v1)
            if not held <= met:
                self._failure = (position, NOT_THROUGH_EXPECTED)
                return False
        self._head_position = position
        self._head_hash = head_hash
        self._checked += 1
        return True

    def chain_only(self, position: int) -> None:
        """A position the chain has and the store does not (a deleted event)."""
        if self._failure is None:
            self._failure = (position, STORE_LACKS_EVENT)

    def store_only(self, position: int) -> None:
        """A position the store has and the chain never had (an inserted event)."""
        if self._failure is None:
            self._failure = (position, CHAIN_LACKS_EVENT)

    def result(self) -> VerifyResult:
        """The outcome so far; head_hash is the recomputed hash at head_position,
        the last event that passed (start_hash if none did)."""
        failure = self._failure
        if failure is None and self._pending:
            # A published position the chain no longer has: events were removed and
            # the chain rewritten around them, or the history was cut short.
            failure = (min(self._pending), HEAD_NOT_IN_CHAIN)
        bad_position, reason = (None, None) if failure is None else failure
        return VerifyResult(
            failure is None,
            self._checked,
            self._head_position,
            self._head_hash,
            bad_position,
            reason,
            start_position=self._start_position,
        )

"""The hash chain over every stored event. Pure: bytes in, bytes out.

    h(first) = SHA-256(GENESIS ‖ record(first)),  h(n) = SHA-256(h(n-1) ‖ record(n))

where h(n-1) is the hash of the previous stored event in notification order (positions
may have gaps on PostgreSQL: a rolled-back insert consumes a sequence number), and

    record = position        8 bytes, unsigned big-endian
           ‖ aggregate id    16 bytes, the UUID's bytes (RFC 4122 order)
           ‖ version         8 bytes, signed big-endian
           ‖ len(topic)      4 bytes, unsigned big-endian ‖ topic, UTF-8
           ‖ len(state)      8 bytes, unsigned big-endian ‖ state, the stored bytes

Every variable-length field is length-prefixed and every other field has a fixed
width, so two different records can never encode to the same bytes. The stored bytes
are hashed as they are (ciphertext where a context encrypts), so crypto-shredding a
person's key never breaks the chain. See docs/audit.md.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

GENESIS_HASH = bytes(32)
_FIXED = struct.Struct(">32sQ16sqI")
_STATE_LENGTH = struct.Struct(">Q")


class StoredRecord(NamedTuple):
    """One stored event as the chain sees it (a tuple: a replay builds millions)."""

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes


def link_hash(previous_hash: bytes, record: StoredRecord) -> bytes:
    """The chain hash of `record`, given the hash of the record before it."""
    topic = record.topic.encode("utf-8")
    digest = hashlib.sha256(
        _FIXED.pack(
            previous_hash,
            record.position,
            record.aggregate_id.bytes,
            record.version,
            len(topic),
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


_NOT_THROUGH_EXPECTED = (
    "the chain does not pass through an expected head (published, or given to --expect)"
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


def verify(
    records: Iterable[StoredRecord],
    stored_hashes: Iterable[tuple[int, bytes]],
    *,
    start_position: int = 0,
    start_hash: bytes = GENESIS_HASH,
    expected: dict[int, bytes] | None = None,
) -> VerifyResult:
    """Recompute the chain from `records` and compare it with the stored chain.

    Both inputs are in ascending position order and start after `start_position`.
    Stored hashes may end before the records (the projector has not chained the
    newest events yet); those records are not checked. Any other difference is a
    failure at the first position where the two sides disagree:
    - an event whose bytes changed: the recomputed hash differs;
    - a deleted event: the chain has a position the store no longer has;
    - an inserted event: the store has a position the chain never had.
    `expected` maps positions to hashes published earlier; the recomputed chain
    must pass through each of them. A position before `start_position` cannot be
    checked from there: the caller chooses a start at or before every head it
    expects (ValueError otherwise; a head dropped in silence once let `--from-head`
    report OK without checking the head the auditor held).
    """
    expected = dict(expected or {})
    unreachable = [p for p in expected if p < start_position]
    if unreachable:
        raise ValueError(
            f"expected head at {min(unreachable)} is before the start {start_position}"
        )
    previous_hash = start_hash
    head_position = start_position
    checked = 0
    record_iter = iter(records)
    stored_iter = iter(stored_hashes)
    record = next(record_iter, None)
    stored = next(stored_iter, None)

    def failed(position: int, reason: str) -> VerifyResult:
        return VerifyResult(
            False,
            checked,
            head_position,
            previous_hash,
            position,
            reason,
            start_position=start_position,
        )

    at_start = expected.pop(start_position, None)
    if at_start is not None and at_start != start_hash:
        return failed(start_position, _NOT_THROUGH_EXPECTED)
    while stored is not None:
        stored_position, stored_hash = stored
        if record is None or record.position > stored_position:
            return failed(stored_position, "the chain has an event the store no longer has")
        if record.position < stored_position:
            return failed(record.position, "the store has an event the chain never had")
        previous_hash = link_hash(previous_hash, record)
        if previous_hash != stored_hash:
            return failed(record.position, "the event's stored bytes do not match the chain")
        published = expected.pop(record.position, None)
        if published is not None and published != previous_hash:
            return failed(record.position, _NOT_THROUGH_EXPECTED)
        head_position = record.position
        checked += 1
        record = next(record_iter, None)
        stored = next(stored_iter, None)
    if expected:
        # A published position the chain no longer has: events were removed and the
        # chain rewritten around them, or the history was cut short.
        return failed(
            min(expected),
            "an expected head's position is not in the chain "
            "(cut short, or rewritten around removed events)",
        )
    return VerifyResult(
        True, checked, head_position, previous_hash, None, None, start_position=start_position
    )

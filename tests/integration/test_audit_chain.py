"""The hash chain on real stores: maintained exactly once, tampering detected and located."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from sqlalchemy import text

from gateway.runtime import Runtime
from services.audit.application import parse_head
from services.audit.domain import GENESIS_HASH, StoredRecord, chain, verify
from services.audit.store import ChainHead, chain_head, iter_records, published_heads
from services.common.errors import Conflict
from services.common.settings import Settings
from services.ledger.domain import Posting, Side


def post(runtime: Runtime, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        runtime.ledger.post_entry(
            key=f"k-{i}",
            actor="person:test",
            effective_date=date(2025, 1, 1 + i % 28),
            description=f"sale {i}",
            postings=[
                Posting("1000", Side.DEBIT, 100 + i),
                Posting("4100", Side.CREDIT, 100 + i),
            ],
        )


def events_sql(settings: Settings) -> tuple[str, str]:
    """The events table and its position column (see services/audit/store.py)."""
    if settings.is_postgres:
        return f'"{settings.database_schema}".coop_store_events', "notification_id"
    return "stored_events", "rowid"


def tamper(runtime: Runtime, sql: str, **params: object) -> None:
    with runtime.sync_engine.begin() as conn:
        conn.execute(text(sql), params)


def test_chain_covers_every_event_exactly_once_and_matches_recomputation(
    runtime: Runtime,
) -> None:
    post(runtime, 5)
    runtime.projector.run_until_caught_up()
    post(runtime, 3, start=5)
    runtime.projector.run_until_caught_up()
    runtime.projector.run_until_caught_up()  # nothing new: nothing chained twice

    with runtime.audit.read_engine.connect() as conn:
        records = list(iter_records(conn, runtime.settings))
        stored = conn.execute(text("SELECT position, hash FROM audit_chain ORDER BY position"))
        chained = [(int(p), bytes(h)) for p, h in stored]
    head = runtime.ledger.recorder.max_notification_id()
    assert [p for p, _ in chained] == [r.position for r in records]
    assert chained[-1][0] == head
    assert [h for _, h in chained] == list(chain(records, GENESIS_HASH))

    result = runtime.audit.verify()
    assert result.ok
    assert result.events_checked == len(records)
    assert result.head_position == head
    assert result.head_hash == chained[-1][1]
    assert result.first_bad_position is None
    assert result.log_head_position == head

    # Events the chain's projector has not reached are not checked, and the answer
    # says so: the log's head is beyond the checked head (a stuck projector once
    # looked like a verified store).
    post(runtime, 2, start=8)
    behind = runtime.audit.verify()
    assert behind.ok
    assert behind.head_position == head
    assert behind.log_head_position == runtime.ledger.recorder.max_notification_id()
    assert behind.log_head_position > head


def _chained(runtime: Runtime, entries: int = 6) -> list[StoredRecord]:
    post(runtime, entries)
    runtime.projector.run_until_caught_up()
    with runtime.audit.read_engine.connect() as conn:
        return list(iter_records(conn, runtime.settings))


def test_flipping_one_byte_of_one_stored_event_is_detected_and_located(
    runtime: Runtime,
) -> None:
    records = _chained(runtime)
    victim = records[len(records) // 2]
    flipped = bytearray(victim.state)
    flipped[len(flipped) // 2] ^= 0x01
    table, position = events_sql(runtime.settings)
    tamper(
        runtime,
        f"UPDATE {table} SET state = :state WHERE {position} = :p",
        state=bytes(flipped),
        p=victim.position,
    )
    result = runtime.audit.verify()
    assert not result.ok
    assert result.first_bad_position == victim.position
    assert result.events_checked == records.index(victim)
    assert "bytes" in (result.reason or "")


def test_deleting_an_event_is_detected_and_located(runtime: Runtime) -> None:
    records = _chained(runtime)
    victim = records[3]
    table, position = events_sql(runtime.settings)
    tamper(runtime, f"DELETE FROM {table} WHERE {position} = :p", p=victim.position)
    result = runtime.audit.verify()
    assert not result.ok
    assert result.first_bad_position == victim.position


def test_inserting_an_event_into_the_history_is_detected_and_located(runtime: Runtime) -> None:
    records = _chained(runtime)
    table, position = events_sql(runtime.settings)
    # Make room after the third event by moving the later ones up (in two steps, so
    # no intermediate value collides), then put a forged event in the gap.
    at = records[2].position + 1
    tamper(
        runtime,
        f"UPDATE {table} SET {position} = {position} + 1000000 WHERE {position} >= :p",
        p=at,
    )
    tamper(
        runtime, f"UPDATE {table} SET {position} = {position} - 999999 WHERE {position} >= :p", p=at
    )
    forged = records[1]
    originator = str(forged.aggregate_id)
    tamper(
        runtime,
        f"INSERT INTO {table} ({position}, originator_id, originator_version, topic, state) "
        "VALUES (:p, :o, 99, :t, :s)",
        p=at,
        o=originator if not runtime.settings.is_postgres else forged.aggregate_id,
        t=forged.topic,
        s=forged.state,
    )
    result = runtime.audit.verify()
    assert not result.ok
    assert result.first_bad_position == at


def _rechain(runtime: Runtime) -> list[StoredRecord]:
    """What an operator with database access does after changing events: recompute the
    stored chain to match them. Returns the events as they now are."""
    with runtime.audit.read_engine.connect() as conn:
        records = list(iter_records(conn, runtime.settings))
    for record, digest in zip(records, chain(records), strict=True):
        tamper(
            runtime,
            "UPDATE audit_chain SET hash = :h WHERE position = :p",
            h=digest,
            p=record.position,
        )
    return records


def test_a_rewritten_chain_is_caught_by_a_published_head(runtime: Runtime) -> None:
    records = _chained(runtime)
    outcome = runtime.audit.publish_head(key="publish-1", actor="person:auditor")
    head = outcome.result
    assert head.position == records[-1].position
    runtime.projector.run_until_caught_up()
    assert runtime.audit.verify(from_published_head=True).ok

    # An operator changes an event and recomputes the whole stored chain to match.
    victim = next(r for r in records if b"sale 2" in r.state)
    table, position = events_sql(runtime.settings)
    tamper(
        runtime,
        f"UPDATE {table} SET state = :s WHERE {position} = :p",
        s=victim.state.replace(b"sale 2", b"sale 9"),
        p=victim.position,
    )
    _rechain(runtime)
    result = runtime.audit.verify()
    assert not result.ok
    assert result.first_bad_position == head.position
    assert "expected head" in (result.reason or "")
    # Emptying the heads table is not enough: the chained event that published the
    # head still names it.
    tamper(runtime, "DELETE FROM audit_published_heads")
    emptied = runtime.audit.verify()
    assert not emptied.ok
    assert emptied.first_bad_position == head.position
    # Rewriting that event too (and the chain once more) leaves the database agreeing
    # with itself: only a head kept outside it can tell.
    forged_records = _rechain(runtime)
    forged_hash = dict(
        zip((r.position for r in forged_records), chain(forged_records), strict=True)
    )
    published = next(r for r in forged_records if r.topic.endswith("PublishedHead.Published"))
    tamper(
        runtime,
        f"UPDATE {table} SET state = :s WHERE {position} = :p",
        s=published.state.replace(
            head.head_hash.encode(), forged_hash[head.position].hex().encode()
        ),
        p=published.position,
    )
    _rechain(runtime)
    assert runtime.audit.verify(expect=None).ok  # without any held head it cannot tell
    held = parse_head(f"{head.position}:{head.head_hash}")
    assert not runtime.audit.verify(expect=held).ok


def test_publishing_is_idempotent_and_refused_on_an_empty_chain(
    settings: Settings,
) -> None:
    runtime = Runtime(settings)
    try:
        # The chart of accounts is the first history; nothing is chained until projected.
        with pytest.raises(Conflict):
            runtime.audit.publish_head(key="early", actor="person:a")
        runtime.projector.run_until_caught_up()
        first = runtime.audit.publish_head(key="p-1", actor="person:a")
        again = runtime.audit.publish_head(key="p-1", actor="person:a")
        assert again.result.id == first.result.id
        assert again.replayed
        # Same head under another key: the existing publication, not a second one.
        other = runtime.audit.publish_head(key="p-2", actor="person:b")
        assert other.result.id == first.result.id
        runtime.projector.run_until_caught_up()
        assert runtime.audit.verify().ok
        # That answer is p-2's for good: retried after the chain grew, it is the
        # same head, not a second publication (the copy kept outside must match).
        post(runtime, 2)
        runtime.projector.run_until_caught_up()
        retried = runtime.audit.publish_head(key="p-2", actor="person:b")
        assert retried.result.id == first.result.id
        with runtime.audit.read_engine.connect() as conn:
            assert [head.position for head in published_heads(conn)] == [first.result.position]
        assert isinstance(parse_head(f"1:{'00' * 32}"), ChainHead)
    finally:
        runtime.close_sync()


def test_a_held_head_before_the_latest_published_one_is_checked_from_a_published_head(
    runtime: Runtime,
) -> None:
    """`--from-head --expect P:H` with P before the latest published head once dropped
    the held head and said OK: it is recomputed, from a published head at or before P."""
    post(runtime, 4)
    runtime.projector.run_until_caught_up()
    early = runtime.audit.publish_head(key="publish-early", actor="person:auditor").result
    runtime.projector.run_until_caught_up()
    post(runtime, 4, start=4)
    runtime.projector.run_until_caught_up()
    with runtime.audit.read_engine.connect() as conn:
        held = chain_head(conn)
    assert held is not None
    post(runtime, 4, start=8)
    runtime.projector.run_until_caught_up()
    latest = runtime.audit.publish_head(key="publish-latest", actor="person:auditor").result
    runtime.projector.run_until_caught_up()
    assert early.position < held.position < latest.position

    wrong = ChainHead(held.position, bytes(32))
    result = runtime.audit.verify(from_published_head=True, expect=wrong)
    assert not result.ok
    assert result.first_bad_position == held.position
    assert "expected head" in (result.reason or "")
    # Started from the published head before the held one, not from event 0.
    assert result.start_position == early.position
    genuine = runtime.audit.verify(from_published_head=True, expect=held)
    assert genuine.ok
    assert genuine.start_position == early.position
    assert runtime.audit.verify(from_published_head=True).start_position == latest.position
    # A held head before every published head: from event 0.
    first = ChainHead(1, bytes(32))
    from_zero = runtime.audit.verify(from_published_head=True, expect=first)
    assert not from_zero.ok
    assert from_zero.first_bad_position == 1
    assert from_zero.start_position == 0
    # A held head at a published head's position is checked there.
    assert not runtime.audit.verify(
        from_published_head=True, expect=ChainHead(early.position, bytes(32))
    ).ok

    # An insider rewrites an event after the early head, recomputes the stored chain
    # and rewrites the published heads to match: only the held head catches it.
    with runtime.audit.read_engine.connect() as conn:
        records = list(iter_records(conn, runtime.settings))
    victim = next(r for r in records if b"sale 5" in r.state)
    assert early.position < victim.position < held.position
    table, position = events_sql(runtime.settings)
    tamper(
        runtime,
        f"UPDATE {table} SET state = :s WHERE {position} = :p",
        s=victim.state.replace(b"sale 5", b"sale 8"),
        p=victim.position,
    )
    with runtime.audit.read_engine.connect() as conn:
        forged_records = list(iter_records(conn, runtime.settings))
    forged = dict(zip((r.position for r in forged_records), chain(forged_records), strict=True))
    for at, digest in forged.items():
        tamper(runtime, "UPDATE audit_chain SET hash = :h WHERE position = :p", h=digest, p=at)
    tamper(
        runtime,
        "UPDATE audit_published_heads SET hash = :h WHERE position = :p",
        h=forged[latest.position].hex(),
        p=latest.position,
    )
    assert runtime.audit.verify(from_published_head=True).ok  # nothing held: cannot tell
    caught = runtime.audit.verify(from_published_head=True, expect=held)
    assert not caught.ok
    assert caught.first_bad_position == held.position


def test_verify_refuses_to_drop_an_expected_head_before_its_start() -> None:
    records = [StoredRecord(p, UUID(int=p), 1, "t", b"state") for p in range(1, 4)]
    hashes = list(chain(records))
    stored = list(zip(range(1, 4), hashes, strict=True))
    with pytest.raises(ValueError, match="before the start"):
        verify(
            records[2:],
            stored[2:],
            start_position=2,
            start_hash=hashes[1],
            expected={1: [hashes[0]]},
        )
    at_start = verify(
        records[2:], stored[2:], start_position=2, start_hash=hashes[1], expected={2: [bytes(32)]}
    )
    assert not at_start.ok
    assert at_start.first_bad_position == 2

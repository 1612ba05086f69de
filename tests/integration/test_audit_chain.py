"""The hash chain on real stores: maintained exactly once, tampering detected and located."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from gateway.runtime import Runtime
from services.audit.application import parse_head
from services.audit.domain import GENESIS_HASH, StoredRecord, chain
from services.audit.store import ChainHead, iter_records
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
    with runtime.audit.read_engine.connect() as conn:
        forged_records = list(iter_records(conn, runtime.settings))
    for record, digest in zip(forged_records, chain(forged_records), strict=True):
        tamper(
            runtime,
            "UPDATE audit_chain SET hash = :h WHERE position = :p",
            h=digest,
            p=record.position,
        )
    result = runtime.audit.verify()
    assert not result.ok
    assert result.first_bad_position == head.position
    assert "expected head" in (result.reason or "")
    # A head kept outside the database catches it too, even if the heads table is emptied.
    tamper(runtime, "DELETE FROM audit_published_heads")
    held = parse_head(f"{head.position}:{head.head_hash}")
    assert not runtime.audit.verify(expect=held).ok
    assert runtime.audit.verify(expect=None).ok  # without any held head it cannot tell


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
        assert isinstance(parse_head(f"1:{'00' * 32}"), ChainHead)
    finally:
        runtime.close_sync()

"""Crypto-shredding a beneficiary (welfare fund) never breaks the audit hash chain.

The chain hashes stored bytes, and forgetting deletes only the beneficiary's key,
which lives outside the event store: every event, and so every hash, stays as it was.
"""

from __future__ import annotations

import threading
from datetime import date
from uuid import uuid4

import pytest
from sqlalchemy import text

from gateway.runtime import Runtime
from services.audit.store import create_snapshot_engine
from services.ledger.domain import Posting, Side
from services.welfare_fund.domain import Program

SECRET_NOTE = "Refuge in Via Segreta 7, Breno; contact via anti-violence centre"


def test_forgetting_a_beneficiary_keeps_the_chain_verifying_and_totals_equal(
    runtime: Runtime,
) -> None:
    enrolled = runtime.welfare.enroll(
        key="enrol-1",
        actor="person:officer",
        program=Program.HOUSING,
        enrolled_on=date(2025, 3, 1),
        case_note=SECRET_NOTE,
    ).result
    runtime.projector.run_until_caught_up()
    published = runtime.audit.publish_head(key="head-1", actor="person:auditor").result
    runtime.projector.run_until_caught_up()
    before = runtime.audit.verify()
    assert before.ok

    # The library's SQLite table numbers notifications by rowid.
    table, position = (
        ("coop_store_events", "notification_id")
        if runtime.settings.is_postgres
        else ("stored_events", "rowid")
    )
    with runtime.sync_engine.connect() as conn:
        stored_before = conn.execute(
            text(f"SELECT {position}, state FROM {table} ORDER BY {position}")
        ).all()
    assert all(b"Via Segreta" not in bytes(state) for _id, state in stored_before)

    runtime.welfare.forget(key="forget-1", actor="person:officer", beneficiary_id=enrolled.id)
    runtime.projector.run_until_caught_up()

    after = runtime.audit.verify(from_published_head=True)
    assert after.ok, after.reason
    assert after.head_position > published.position
    with runtime.sync_engine.connect() as conn:
        stored_after = conn.execute(
            text(f"SELECT {position}, state FROM {table} ORDER BY {position}")
        ).all()
    # History is untouched: the forget event is appended, nothing earlier changed.
    assert stored_after[: len(stored_before)] == stored_before


@pytest.mark.parametrize("backend", ["sqlite"])
def test_deleting_a_key_does_not_wait_for_an_auditor_s_snapshot(runtime: Runtime) -> None:
    """Second reading: the key's scrub (a checkpoint truncating SQLite's write-ahead
    log) waited, with the store's 30 s busy timeout, for every reader to move on (an
    audit replay holds one snapshot for its whole run), and held back every writer
    meanwhile: a forget and each sale behind it waited that long. It gives up at once
    now; a later checkpoint truncates."""
    keys = runtime.welfare.keys
    subject = uuid4()
    keys.create(subject)
    snapshot = create_snapshot_engine(runtime.settings)
    try:
        with snapshot.connect() as auditor:  # as `coop audit replay` reads the live store
            auditor.exec_driver_sql("SELECT count(*) FROM projection_tracking").all()
            deleting = threading.Thread(target=keys.delete, args=(subject,))
            deleting.start()
            deleting.join(10)  # 0.1 s when it gives up at once; 30 s when it waits
            assert not deleting.is_alive()
            runtime.ledger.post_entry(
                key="a-sale",
                actor="t",
                effective_date=date(2025, 3, 1),
                description="sale",
                postings=[Posting("1000", Side.DEBIT, 100), Posting("4100", Side.CREDIT, 100)],
            )
    finally:
        deleting.join(60)
        snapshot.dispose()
    assert keys.get(subject) is None

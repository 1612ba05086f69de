"""The event store: versioned events, ordered commits on PostgreSQL, snapshots."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import CHART_ID, AccountType, Cause, JournalEntry, Posting, Side
from services.ledger.domain.journal import UNKNOWN_ACTOR
from tests.conftest import postgres_url


def test_a_stored_v1_posted_event_is_upcast_on_load(ledger: LedgerApplication) -> None:
    entry = ledger.prepare_entry(
        effective_date=date(2024, 12, 31),
        description="Entry recorded by the first release",
        postings=[Posting("1010", Side.DEBIT, 500), Posting("4400", Side.CREDIT, 500)],
        cause=Cause("legacy:1", "someone"),
    )
    stored = ledger.mapper.to_stored_event(entry.collect_events()[0])
    state = ledger.mapper.transcoder.decode(stored.state)
    # Make it what release 1 wrote: no class_version, no actor.
    assert state.pop("class_version") == 2
    del state["actor"]
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=ledger.mapper.transcoder.encode(state),
            )
        ]
    )
    loaded = ledger.get_entry(entry.id)
    assert loaded.actor == UNKNOWN_ACTOR
    assert loaded.total_cents == 500


def test_the_chart_is_snapshotted(ledger: LedgerApplication) -> None:
    assert ledger.snapshots is not None
    for i in range(20):
        ledger.open_account(
            key=f"open-{i}",
            actor="admin",
            code=f"58{i:02d}",
            name=f"Expense {i}",
            account_type=AccountType.EXPENSE,
        )
    snapshots = list(ledger.snapshots.get(CHART_ID))
    assert snapshots, "no snapshot after 50 chart events"
    assert ledger.chart().accounts["5819"].name == "Expense 19"


@pytest.mark.postgres
def test_postgres_saves_wait_for_earlier_uncommitted_inserts(tmp_path: object) -> None:
    """Notification ids commit in order: a save waits while a lower id is uncommitted.

    Without the table lock inside the insert function, the second save would commit a
    higher id first, and a follower reading between the two commits would skip one.
    """
    from tests.conftest import drop_schema, make_settings

    settings = make_settings("postgres", tmp_path)  # type: ignore[arg-type]
    ledger = LedgerApplication(settings)
    ledger.ensure_chart()
    holder = psycopg.connect(postgres_url(), autocommit=False)
    try:
        holder.execute(f"SET search_path TO {settings.database_schema}")
        holder.execute(
            "INSERT INTO coop_store_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, 'test:Uncommitted', '\\x7b7d')",
            (uuid.uuid4(),),
        )
        held_id = holder.execute("SELECT max(notification_id) FROM coop_store_events").fetchone()
        done = threading.Event()
        saved_ids: list[int] = []

        def save() -> None:
            entry = ledger.prepare_entry(
                effective_date=date(2025, 1, 1),
                description="Concurrent save",
                postings=[Posting("1000", Side.DEBIT, 1), Posting("4100", Side.CREDIT, 1)],
                cause=Cause("ordered:1", "t"),
            )
            recordings = ledger.save(entry)
            saved_ids.extend(r.notification.id for r in recordings)
            done.set()

        thread = threading.Thread(target=save)
        thread.start()
        time.sleep(0.7)
        assert not done.is_set(), "the save did not wait for the uncommitted insert"
        holder.commit()
        thread.join(timeout=10)
        assert done.is_set()
        assert held_id is not None
        assert saved_ids[0] > held_id[0]
    finally:
        holder.close()
        ledger.close()
        drop_schema(settings)


def test_journal_entry_topic_is_stable() -> None:
    # Stored events name their class by topic: renaming it would orphan history.
    assert JournalEntry.Posted.__module__ == "services.ledger.domain.journal"
    assert JournalEntry.Posted.__qualname__ == "JournalEntry.Posted"


def test_every_context_writes_to_one_store(ledger: LedgerApplication, settings: Settings) -> None:
    from services.common.eventstore import CoopApplication

    class OtherContext(CoopApplication):
        pass

    other = OtherContext(settings)
    try:
        assert other.recorder.max_notification_id() == ledger.recorder.max_notification_id()
        assert other.repository.get(CHART_ID).accounts.keys() == ledger.chart().accounts.keys()
    finally:
        other.close()


def test_contexts_can_share_one_connection_pool(
    ledger: LedgerApplication, settings: Settings
) -> None:
    from services.common.eventstore import CoopApplication

    class OtherContext(CoopApplication):
        pass

    other = OtherContext(settings, share_store_with=ledger)
    assert other.factory is ledger.factory
    other.close()  # closing a sharer leaves the owner's store open
    ledger.ensure_chart()
    assert ledger.chart().accounts


@pytest.mark.postgres
def test_the_store_connections_wait_for_a_slow_client_as_long_as_production_conf(
    tmp_path: object,
) -> None:
    """The library SETs its own idle-in-transaction timeout on each connection (5 s
    unless told), over the server's: a `coop users add` starved of CPU for 5 s in one
    of the store's transactions was killed on a busy CI machine."""
    from tests.conftest import drop_schema, make_settings
    from tests.unit.test_infra import production_settings

    name = "idle_in_transaction_session_timeout"
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f"SET {name} = '{production_settings()[name]}'")
        expected = conn.execute(f"SHOW {name}").fetchone()
    settings = make_settings("postgres", tmp_path)  # type: ignore[arg-type]
    ledger = LedgerApplication(settings)
    try:
        with ledger.factory.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            shown = conn.execute(f"SHOW {name}").fetchone()
    finally:
        ledger.close()
        drop_schema(settings)
    assert expected is not None
    assert shown == {name: expected[0]}

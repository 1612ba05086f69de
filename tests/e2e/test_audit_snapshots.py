"""Verification covers the stored snapshots: the applications load an aggregate from
its latest snapshot, which the hash chain does not cover (docs/audit.md, "Snapshots")."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.settings import Settings, get_settings
from services.hotel.domain import HotelConfiguration, Room
from services.ledger.domain import CHART_ID
from services.shop.domain.config import CONFIG_ID as SHOP_CONFIG_ID
from services.welfare_fund.domain import FUND_ID
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_welfare_graphql import _income, _policy

VERIFY = "{ verifyLedger { ok firstBadPosition reason } }"
SNAPSHOTS = """
query V($fromHead: Boolean!) { verifyLedger(fromPublishedHead: $fromHead) {
  ok reason snapshotsChecked snapshotsFailed
  snapshotFindings { aggregateId aggregateType version reason attributes withheld }
} }
"""
DIFFERS = "the stored snapshot differs from the state its events produce"
BEYOND = "the stored snapshot's version is not one the aggregate's events reach"


def _snapshots_table(runtime: Runtime) -> str:
    settings = runtime.settings
    if settings.is_postgres:
        return f'"{settings.database_schema}".coop_store_snapshots'
    return "stored_snapshots"


def _key(runtime: Runtime, aggregate_id: UUID) -> object:
    # SQLite keeps ids as 32 hex digits, PostgreSQL as uuid.
    return aggregate_id if runtime.settings.is_postgres else aggregate_id.hex


def _latest_snapshot(runtime: Runtime, aggregate_id: UUID) -> tuple[int, bytes]:
    with runtime.sync_engine.connect() as conn:
        version, state = conn.execute(
            text(
                f"SELECT originator_version, state FROM {_snapshots_table(runtime)} "
                "WHERE originator_id = :id ORDER BY originator_version DESC LIMIT 1"
            ),
            {"id": _key(runtime, aggregate_id)},
        ).one()
    return int(version), bytes(state)


def _rewrite_snapshot(runtime: Runtime, aggregate_id: UUID, version: int, state: bytes) -> None:
    """What someone with database access can do: change a snapshot row in place."""
    with runtime.sync_engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {_snapshots_table(runtime)} SET state = :state "
                "WHERE originator_id = :id AND originator_version = :version"
            ),
            {"state": state, "id": _key(runtime, aggregate_id), "version": version},
        )


async def _verified(auditor: GraphQLClient, *, from_head: bool = False) -> dict[str, Any]:
    body = await auditor.data(SNAPSHOTS, {"fromHead": from_head})
    result: dict[str, Any] = body["verifyLedger"]
    return result


async def _store_with_snapshots(app_client: GraphQLClient) -> Runtime:
    """Income accrued at 10% of the hotel's, and a snapshot of the aggregates the
    applications snapshot that the set-up makes: the chart of accounts, the shop's
    configuration, and the fund's book twice (the second one taken, as the
    applications take them, from the first and the events after it). Not the hotel's
    configuration: its policies do not transcode, so it cannot be snapshotted yet."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    admin = app_client.as_person(Role.ADMIN)
    await _policy(officer, "p1", "2025-01-01", [{"stream": "HOTEL", "percent": "10"}])
    runtime = app_client.runtime
    for n in range(3):
        await _income(admin, f"s{n}", "2025-02-01", "4000", "100.00")
    runtime.welfare.take_snapshot(FUND_ID)
    for n in range(3, 5):
        await _income(admin, f"s{n}", "2025-02-02", "4000", "100.00")
    runtime.welfare.take_snapshot(FUND_ID)
    runtime.ledger.take_snapshot(CHART_ID)
    runtime.shop.take_snapshot(SHOP_CONFIG_ID)
    return runtime


async def test_snapshots_that_match_their_events_verify(app_client: GraphQLClient) -> None:
    await _store_with_snapshots(app_client)
    auditor = app_client.as_role(Role.AUDITOR)
    for from_head in (False, True):
        verified = await _verified(auditor, from_head=from_head)
        assert verified["ok"] is True, verified
        assert verified["snapshotsChecked"] == 4
        assert (verified["snapshotsFailed"], verified["snapshotFindings"]) == (0, [])
        assert verified["reason"] is None


async def test_a_changed_snapshot_fails_verification_naming_its_aggregate_and_version(
    app_client: GraphQLClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fund's book loaded from a snapshot whose hotel rate reads 1% instead of 10%
    would accrue a tenth of what it should from then on; the chain still verifies,
    verification does not."""
    runtime = await _store_with_snapshots(app_client)
    auditor = app_client.as_role(Role.AUDITOR)
    version, state = _latest_snapshot(runtime, FUND_ID)
    rate = b'"HOTEL":100000'  # parts per million, as the book keeps it
    assert rate in state
    _rewrite_snapshot(runtime, FUND_ID, version, state.replace(rate, b'"HOTEL":10000'))

    broken = (await auditor.data(VERIFY))["verifyLedger"]
    assert broken == {
        "ok": False,
        "firstBadPosition": None,  # every event is as chained
        "reason": "a stored snapshot differs from what its events produce",
    }
    for from_head in (False, True):
        verified = await _verified(auditor, from_head=from_head)
        assert verified["ok"] is False
        assert (verified["snapshotsChecked"], verified["snapshotsFailed"]) == (4, 1)
        assert verified["snapshotFindings"] == [
            {
                "aggregateId": str(FUND_ID),
                "aggregateType": "WelfareFund",
                "version": version,
                "reason": DIFFERS,
                "attributes": ["policies"],
                "withheld": None,
            }
        ]
    # Names, never values: nothing of what was written into the row is repeated.
    assert "10000" not in json.dumps(verified["snapshotFindings"])
    # `coop audit verify` says the same, and exits 1.
    monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
    get_settings.cache_clear()
    try:
        printed = CliRunner().invoke(cli, ["audit", "verify"])
    finally:
        get_settings.cache_clear()
    assert printed.exit_code == 1, printed.output
    said = " ".join(printed.output.split())  # the console folds long lines
    assert "FAILED: 1 of 4 stored snapshots do not match their events" in said
    assert f"WelfareFund {FUND_ID} version {version}: {DIFFERS} (policies)" in said

    # Put back as it was, the store verifies again.
    _rewrite_snapshot(runtime, FUND_ID, version, state)
    assert (await auditor.data(VERIFY))["verifyLedger"]["ok"] is True


async def test_a_changed_chart_snapshot_and_a_snapshot_ahead_of_its_events_fail(
    app_client: GraphQLClient,
) -> None:
    """An account renamed in the chart's snapshot, and a copy of the fund's snapshot
    under a version its events never reached (loaded as the latest, it would stand in
    for events that do not exist): each is a finding of its own."""
    runtime = await _store_with_snapshots(app_client)
    auditor = app_client.as_role(Role.AUDITOR)
    chart_version, chart_state = _latest_snapshot(runtime, CHART_ID)
    chart = json.loads(chart_state)
    accounts = chart["state"]["accounts"]
    code = next(iter(accounts))
    accounts[code]["_data_"]["name"] = "Renamed in the database"
    _rewrite_snapshot(runtime, CHART_ID, chart_version, json.dumps(chart).encode())
    fund_version, fund_state = _latest_snapshot(runtime, FUND_ID)
    with runtime.sync_engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {_snapshots_table(runtime)} "
                "(originator_id, originator_version, topic, state) "
                "VALUES (:id, :version, 'eventsourcing.domain:Snapshot', :state)"
            ),
            {"id": _key(runtime, FUND_ID), "version": fund_version + 100, "state": fund_state},
        )

    verified = await _verified(auditor)
    assert verified["ok"] is False
    assert (verified["snapshotsChecked"], verified["snapshotsFailed"]) == (5, 2)
    found = {
        (f["aggregateType"], f["version"]): (f["reason"], f["attributes"])
        for f in verified["snapshotFindings"]
    }
    assert found == {
        ("ChartOfAccounts", chart_version): (DIFFERS, ["accounts"]),
        ("WelfareFund", fund_version + 100): (BEYOND, []),
    }


async def test_the_hotel_configuration_is_snapshotted_and_its_snapshot_verifies(
    app_client: GraphQLClient,
) -> None:
    """The hotel's configuration snapshots every 50 changes: the 50th change used to
    record its event and then fail taking the snapshot (its policies and rooms were
    not encodable), and so every 50th after it."""
    runtime = app_client.runtime
    config_id = runtime.hotel.configuration().id
    for n in range(50):
        room = Room(f"2{n:02d}", "double", 2, 9_000 + n, True, date(2025, 1, 1))
        runtime.hotel.define_room(key=f"room-{n}", actor="person:admin", room=room)
    version, _state = _latest_snapshot(runtime, config_id)
    assert version == 50  # the 50th change took it (the seeded rooms and policy are the first)
    reloaded: HotelConfiguration = runtime.hotel.repository.get(
        config_id, deepcopy_from_cache=False
    )
    assert reloaded.rooms["249"][-1].nightly_rate_cents == 9_049
    verified = await _verified(app_client.as_person(Role.AUDITOR))
    assert (verified["ok"], verified["snapshotsFailed"]) == (True, 0)

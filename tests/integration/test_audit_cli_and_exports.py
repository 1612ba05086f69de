"""`coop audit ...` end to end on real stores, and the exports an auditor opens."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core.data import Transaction
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.common.settings import Settings, get_settings
from services.ledger.domain import Posting, Side
from tests.integration.test_audit_chain import events_sql, post

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def _populate(settings: Settings) -> None:
    runtime = Runtime(settings)
    try:
        post(runtime, 10)
        runtime.ledger.post_entry(
            key="odd-description",
            actor="person:test",
            effective_date=date(2025, 2, 3),
            description='Quote " and back\\slash\nand a new line',
            postings=[Posting("1010", Side.DEBIT, 5), Posting("4400", Side.CREDIT, 5)],
        )
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()


def test_verify_head_publish_replay_and_export(cli_env: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    _populate(cli_env)

    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "OK:" in verified.output

    published = runner.invoke(cli, ["audit", "head", "--publish"])
    assert published.exit_code == 0, published.output
    held = published.output.strip().splitlines()[-1]
    position, digest = held.split(":")
    assert int(position) > 0
    assert len(digest) == 64
    assert runner.invoke(cli, ["audit", "verify", "--expect", held]).exit_code == 0
    assert runner.invoke(cli, ["audit", "verify", "--from-head"]).exit_code == 0
    shown = runner.invoke(cli, ["audit", "head"])
    assert shown.exit_code == 0
    shown_head = shown.output.strip().splitlines()[-1]
    assert int(shown_head.split(":")[0]) > int(position)  # publishing is itself an event

    replayed = runner.invoke(cli, ["audit", "replay"])
    assert replayed.exit_code == 0, replayed.output
    assert "no difference" in replayed.output

    out = tmp_path / "export"
    exported = runner.invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert exported.exit_code == 0, exported.output

    # The auditor's script recomputes the chain from the export alone.
    script = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "verify_chain.py"), str(out / "events.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert f"head {held}" not in script.stdout  # the export goes beyond the published head
    lines = (out / "events.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert script.stdout.strip().endswith(f"{last['position']}:{last['hash']}")

    # Beancount accepts the journal and agrees with the ledger.
    entries, errors, _options = loader.load_file(str(out / "journal.beancount"))
    assert errors == []
    transactions = [e for e in entries if isinstance(e, Transaction)]
    assert len(transactions) == 11
    cash = sum(
        Decimal(str(p.units.number))
        for t in transactions
        for p in t.postings
        if p.account == "Assets:1000" and p.units is not None
    )
    assert cash == Decimal(sum(100 + i for i in range(10))) / 100
    odd = next(t for t in transactions if t.postings[0].account == "Assets:1010")
    assert odd.narration == 'Quote " and back\\slash and a new line'

    with (out / "journal.csv").open(newline="") as f:
        journal = list(csv.DictReader(f))
    assert len(journal) == 22
    with (out / "trial-balance-2025-12-31.csv").open(newline="") as f:
        trial = list(csv.DictReader(f))
    total = trial[-1]
    assert total["account"] == "TOTAL"
    assert total["debit"] == total["credit"] == "10.50"  # 10.45 cash + 0.05 bank

    # A flipped byte makes verify fail with the position, and the script too.
    victim = json.loads(lines[15])["position"]
    table, column = events_sql(cli_env)
    runtime = Runtime(cli_env)
    try:
        with runtime.sync_engine.begin() as conn:
            conn.execute(
                text(f"UPDATE {table} SET topic = topic || 'x' WHERE {column} = :p"), {"p": victim}
            )
    finally:
        runtime.close_sync()
    failed = runner.invoke(cli, ["audit", "verify"])
    assert failed.exit_code == 1
    assert f"FAILED at position {victim}" in failed.output

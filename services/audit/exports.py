"""Exports for auditors: events as JSON Lines with chain hashes, the journal as
Beancount and CSV, the trial balance as CSV.

Nothing is decrypted: events are exported as their stored bytes (base64), so what
a context encrypts per person stays ciphertext, and an auditor can recompute the
chain from the file alone (docs/audit.md). An event about one beneficiary is
withheld: its line gives only its position and digest, which the chain links, so the
file still verifies whole. Everything is read in one read-only snapshot, so the
files agree with each other while the system keeps running.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, and_, func, select

from services.audit.domain import ChainCheck, StoredRecord, VerifyResult, event_digest
from services.audit.store import (
    ChainHead,
    claims_for_a_beneficiary,
    head_position,
    heads_to_meet,
    iter_chain,
    iter_records,
    may_concern_a_donor,
    names_a_donor,
)
from services.common.errors import CoopError
from services.common.money import cents_to_decimal
from services.common.settings import Settings
from services.ledger.domain import AccountType
from services.ledger.domain.donations import DONOR_WITHHELD
from services.ledger.projections.tables import (
    ledger_accounts,
    ledger_daily_balances,
    ledger_entries,
    ledger_lines,
)
from services.welfare_fund.domain import BENEFICIARY_WITHHELD, concerns_a_beneficiary

ProgressCallback = Callable[[int, int], None]

BEANCOUNT_ROOTS = {
    AccountType.ASSET: "Assets",
    AccountType.LIABILITY: "Liabilities",
    AccountType.NET_ASSETS: "Equity",
    AccountType.REVENUE: "Income",
    AccountType.EXPENSE: "Expenses",
}


def export_events(
    conn: Connection,
    settings: Settings,
    out: IO[str],
    *,
    head: int,
    progress: ProgressCallback | None = None,
    check: ChainCheck | None = None,
) -> ChainHead | None:
    """One JSON object per event up to `head` (the chain's head), in order.

    Each carries its chain hash from the stored chain (null where the chain has no
    row for that position: `coop audit verify` reports why). An event about one
    beneficiary is written as its position and `event_sha256` only, with `withheld`
    saying why. Returns the last head. `check` is given every event and chain row as
    they are written (the chain verified in the same read, at the cost of one more
    hash per event); every event is written whatever it finds.
    """
    chain = iter_chain(conn)
    link = next(chain, None)
    last: ChainHead | None = None
    for count, record in enumerate(iter_records(conn, settings, until=head), start=1):
        while link is not None and link[0] < record.position:
            if check is not None:
                check.chain_only(link[0])
            link = next(chain, None)
        digest = None
        if link is not None and link[0] == record.position:
            digest = link[1]
            link = next(chain, None)
        event_sha256 = event_digest(record)
        if check is not None:
            check.event(record, event_sha256, digest)
        line: dict[str, Any]
        withheld = _withheld(record)
        if withheld is not None:
            line = {
                "position": record.position,
                "withheld": withheld,
                "event_sha256": event_sha256.hex(),
            }
        else:
            line = {
                "position": record.position,
                "aggregate_id": str(record.aggregate_id),
                "version": record.version,
                "topic": record.topic,
                "state": base64.b64encode(record.state).decode("ascii"),
            }
        line["hash"] = None if digest is None else digest.hex()
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        if digest is not None:
            last = ChainHead(record.position, digest)
        if progress is not None and count % 10_000 == 0:
            progress(record.position, head)
    while link is not None and link[0] <= head:
        # Chained positions after the last stored event: events deleted from the end.
        if check is not None:
            check.chain_only(link[0])
        link = next(chain, None)
    if progress is not None:
        progress(head, head)
    return last


def _withheld(record: StoredRecord) -> str | None:
    """Why an event is withheld, if it is: about one beneficiary, or the claim of a
    command on one ("beneficiary"); naming a donor, or the claim of a command that
    may have ("donor"). A state that is not plain JSON is ciphertext: nothing to
    withhold."""
    if concerns_a_beneficiary(record.topic):
        return BENEFICIARY_WITHHELD
    if not may_concern_a_donor(record.topic):
        return None  # only these are parsed: the export reads every event
    try:
        state = json.loads(record.state)
    except ValueError:
        return None
    state = state if isinstance(state, dict) else None
    if claims_for_a_beneficiary(record.topic, state):
        return BENEFICIARY_WITHHELD
    if names_a_donor(record.topic, state):
        return DONOR_WITHHELD
    return None


# Beancount account names take letters, digits and '-', not '.'. The ledger's codes
# are digits, capital letters, '.' and '-' (services/ledger/domain/accounts.py), so a
# '.' becomes a word in lower case, which no code can contain: `4100.1` and `4100-1`
# stay apart (as "Income:4100-dot-1" and "Income:4100-1"), where turning '.' into
# '-' made them collide and the export fail for good (accounts are never removed).
BEANCOUNT_DOT = "-dot-"


def beancount_account(code: str, account_type: AccountType) -> str:
    """`Assets:1000`: the account code under its Beancount root, one-to-one for every
    code the ledger accepts ('.' becomes "-dot-"; the open directive keeps the code)."""
    return f"{BEANCOUNT_ROOTS[account_type]}:{code.replace('.', BEANCOUNT_DOT)}"


def _quoted(value: str) -> str:
    flat = re.sub(r"[\r\n\t]+", " ", value)
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _amount(cents: int) -> str:
    return f"{cents_to_decimal(cents):.2f}"


def _entries(conn: Connection, until: date | None) -> Iterator[tuple[Any, list[Any]]]:
    """Journal entries effective on or before `until` (all with None) in (effective
    date, position) order, each with its lines."""
    e, line = ledger_entries.c, ledger_lines.c
    query = select(ledger_entries).order_by(e.effective_date, e.position)
    if until is not None:
        query = query.where(e.effective_date <= until)
    entries = conn.execution_options(yield_per=2_000).execute(query)
    for chunk in entries.mappings().partitions():
        positions = [row["position"] for row in chunk]
        lines: dict[Any, list[Any]] = {p: [] for p in positions}
        for row in conn.execute(
            select(ledger_lines)
            .where(line.position.in_(positions))
            .order_by(line.position, line.line_no)
        ).mappings():
            lines[row["position"]].append(row)
        for row in chunk:
            yield row, lines[row["position"]]


def export_beancount(conn: Connection, out: IO[str], until: date) -> int:
    """The journal up to `until` as a Beancount ledger (`bean-check` accepts it);
    returns entries written. The accounts open on the first entry's day or, with no
    entry, on `until` (the server's own calendar day made the file depend on its TZ)."""
    a = ledger_accounts.c
    accounts = conn.execute(select(a.code, a.name, a.account_type).order_by(a.code)).all()
    first_day = conn.execute(select(func.min(ledger_entries.c.effective_date))).scalar()
    opened_on: date = until if first_day is None else min(first_day, until)
    names: dict[str, str] = {}
    out.write('option "title" "Cooperative journal (exported by coop audit export)"\n')
    out.write('option "operating_currency" "EUR"\n\n')
    for code, name, kind in accounts:
        account = beancount_account(code, AccountType(kind))
        names[code] = account
        # Opened at the first entry's date: the chart's events carry no effective date.
        out.write(
            f"{opened_on.isoformat()} open {account} EUR\n"
            f"  code: {_quoted(code)}\n  name: {_quoted(name)}\n"
        )
    out.write("\n")
    written = 0
    for entry, lines in _entries(conn, until):
        out.write(f"{entry['effective_date'].isoformat()} * {_quoted(entry['description'])}\n")
        out.write(f"  entry-id: {_quoted(str(entry['entry_id']))}\n")
        out.write(f"  position: {int(entry['position'])}\n")
        out.write(f"  cause: {_quoted(entry['cause_id'])}\n")
        out.write(f"  actor: {_quoted(entry['actor'])}\n")
        if entry["reverses_entry_id"] is not None:
            out.write(f"  reverses: {_quoted(str(entry['reverses_entry_id']))}\n")
        for line in lines:
            cents = int(line["debit_cents"]) - int(line["credit_cents"])
            out.write(f"  {names[line['account_code']]}  {_amount(cents)} EUR\n")
        out.write("\n")
        written += 1
    return written


JOURNAL_CSV_COLUMNS = (
    "entry_id",
    "position",
    "effective_date",
    "recorded_at",
    "description",
    "cause_id",
    "actor",
    "reverses_entry_id",
    "reversed_by_entry_id",
    "line_no",
    "account",
    "debit",
    "credit",
)


# A spreadsheet runs a cell that starts with one of these as a formula (a description
# typed as `=HYPERLINK(...)` would become a link in the accountant's Excel); tab and
# CR are on OWASP's list too. "'" is there so that the rule can be undone: a text cell
# that starts with "'" had one added, and only then.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_text(value: object) -> str:
    """A text cell that a spreadsheet shows as text: a leading "'" where it would
    start a formula (docs/audit.md). Only for text columns: amounts stay numbers."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_journal_csv(conn: Connection, out: IO[str], until: date | None = None) -> int:
    """One row per journal line up to `until` (amounts as decimal EUR); returns lines
    written.

    Text cells go through `spreadsheet_text`; numbers, dates and amounts as they are
    (an amount is never negative here: debit and credit have their own columns). An
    entry reversed only after `until` shows no reversal: the file stops where the
    trial balance beside it does."""
    writer = csv.writer(out)
    writer.writerow(JOURNAL_CSV_COLUMNS)
    later_reversed = _reversed_after(conn, until)
    written = 0
    for entry, lines in _entries(conn, until):
        reversed_by = entry["reversed_by_entry_id"]
        if entry["entry_id"] in later_reversed:
            reversed_by = None
        for line in lines:
            writer.writerow(
                [
                    spreadsheet_text(entry["entry_id"]),
                    entry["position"],
                    entry["effective_date"].isoformat(),
                    entry["recorded_at"].isoformat(),
                    spreadsheet_text(entry["description"]),
                    spreadsheet_text(entry["cause_id"]),
                    spreadsheet_text(entry["actor"]),
                    spreadsheet_text(entry["reverses_entry_id"]),
                    spreadsheet_text(reversed_by),
                    line["line_no"],
                    spreadsheet_text(line["account_code"]),
                    _amount(int(line["debit_cents"])),
                    _amount(int(line["credit_cents"])),
                ]
            )
            written += 1
    return written


def _reversed_after(conn: Connection, until: date | None) -> set[Any]:
    """Ids of the entries whose reversal takes effect after `until`."""
    if until is None:
        return set()
    e = ledger_entries.c
    rows = conn.execute(
        select(e.reverses_entry_id).where(
            e.reverses_entry_id.is_not(None), e.effective_date > until
        )
    )
    return {row[0] for row in rows}


def trial_balance_rows(conn: Connection, as_of: date) -> list[tuple[str, str, str, int]]:
    """(code, name, type, net cents = debits - credits) of non-zero accounts on `as_of`.

    The same rule as GraphQL's trialBalance: entries effective on or before the day.
    """
    d = ledger_daily_balances.c
    latest = (
        select(d.account_code, func.max(d.day).label("day"))
        .where(d.day <= as_of)
        .group_by(d.account_code)
        .subquery()
    )
    closing = dict(
        conn.execute(
            select(d.account_code, d.closing_cents).join(
                latest, and_(d.account_code == latest.c.account_code, d.day == latest.c.day)
            )
        ).all()
    )
    a = ledger_accounts.c
    return [
        (code, name, kind, int(closing[code]))
        for code, name, kind in conn.execute(
            select(a.code, a.name, a.account_type).order_by(a.code)
        ).all()
        if closing.get(code)
    ]


def export_trial_balance_csv(conn: Connection, out: IO[str], as_of: date) -> tuple[int, int]:
    """account, name, type, debit, credit, then a TOTAL row; returns the totals in cents.

    Text cells go through `spreadsheet_text` (an account's name is typed by a person);
    amounts are never negative (debit and credit have their own columns)."""
    writer = csv.writer(out)
    writer.writerow(("as_of", "account", "name", "type", "debit", "credit"))
    total_debit = total_credit = 0
    for code, name, kind, net in trial_balance_rows(conn, as_of):
        debit, credit = (net, 0) if net > 0 else (0, -net)
        total_debit += debit
        total_credit += credit
        writer.writerow(
            (
                as_of.isoformat(),
                spreadsheet_text(code),
                spreadsheet_text(name),
                spreadsheet_text(kind),
                _amount(debit),
                _amount(credit),
            )
        )
    writer.writerow(
        (as_of.isoformat(), "TOTAL", "", "", _amount(total_debit), _amount(total_credit))
    )
    return total_debit, total_credit


MANIFEST = "manifest.json"
EXPORTED_BY = "coop audit export"
# What an export of this tool writes, and nothing else: an earlier export's files,
# which a new export into the same directory replaces.
_EXPORT_FILE = re.compile(
    r"events\.jsonl|journal\.beancount|journal\.csv|trial-balance-\d{4}-\d{2}-\d{2}\.csv"
    + "|"
    + re.escape(MANIFEST)
)
_STAGING_PREFIX = ".coop-export-"


class ExportRefused(CoopError):
    """The directory holds something other than an earlier export of this tool: an
    export beside other files is one nobody can tell apart from them (an earlier
    trial balance stayed beside a new one)."""


@dataclass(frozen=True)
class ExportResult:
    files: dict[str, Path]  # by kind, the manifest included
    chain: VerifyResult  # the chain of the events written, from event 0
    # The event log's last position in the same snapshot: beyond the chain's head,
    # the files stop short of it (events not chained yet).
    log_head: int = 0

    @property
    def short_of_log(self) -> bool:
        return self.chain.head_position < self.log_head


def earlier_export(directory: Path) -> list[Path]:
    """The files of an earlier export in `directory` (none if it is empty or missing),
    which a new export replaces; ExportRefused if it holds anything else.

    An earlier export is known by its manifest, and holds only the names an export
    writes. (Staging directories of an export that was killed are left alone.)"""
    if not directory.is_dir():
        return []
    found = sorted(p for p in directory.iterdir() if not p.name.startswith(_STAGING_PREFIX))
    if not found:
        return []
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("exported_by") != EXPORTED_BY:
        raise ExportRefused(
            f"{directory} is not empty and holds no earlier export ({MANIFEST} of "
            f"{EXPORTED_BY}): export into an empty or new directory"
        )
    for path in found:
        if not (path.is_file() and not path.is_symlink() and _EXPORT_FILE.fullmatch(path.name)):
            raise ExportRefused(
                f"{directory} holds {path.name} beside an earlier export: export into an "
                "empty or new directory, or remove it"
            )
    return found


def write_all(
    conn: Connection,
    settings: Settings,
    directory: Path,
    *,
    as_of: date,
    head: int,
    progress: ProgressCallback | None = None,
    not_chained: str | None = None,
) -> ExportResult:
    """Every export into `directory`, with its manifest; returns the files and what
    the chain check of the events written found.

    The files are written into a hidden directory inside `directory` and moved into
    place only once all of them are complete: an export that fails half-way leaves
    `directory` as it was (no journal cut off after its accounts beside an events
    file of another snapshot), and the hidden directory is removed. An earlier
    export's files there are then removed (ExportRefused, before anything is written,
    for a directory that holds anything else); the manifest comes last.

    The events are checked against the chain as they are written, as `coop audit
    verify` checks them from event 0 (published heads included). A failure does not
    stop the export: the files are what the store holds, and the manifest and the
    result say where the chain fails.
    """
    earlier = earlier_export(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = {
        "events": "events.jsonl",
        "beancount": "journal.beancount",
        "journal": "journal.csv",
        "trial_balance": f"trial-balance-{as_of.isoformat()}.csv",
        "manifest": MANIFEST,
    }
    expected: dict[int, list[bytes]] = {}
    v1_until = 0
    for published in heads_to_meet(conn, settings):
        expected.setdefault(published.position, []).append(published.hash)
        if published.chain_format == 1:
            v1_until = max(v1_until, published.position)
    check = ChainCheck(expected, v1_until=v1_until)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=directory))
    try:
        staged = {kind: staging / name for kind, name in names.items()}
        with staged["events"].open("w", encoding="utf-8") as out:
            last = export_events(conn, settings, out, head=head, progress=progress, check=check)
        with staged["beancount"].open("w", encoding="utf-8") as out:
            export_beancount(conn, out, as_of)
        with staged["journal"].open("w", encoding="utf-8", newline="") as out:
            export_journal_csv(conn, out, as_of)
        with staged["trial_balance"].open("w", encoding="utf-8", newline="") as out:
            export_trial_balance_csv(conn, out, as_of)
        chain = check.result()
        with staged["manifest"].open("w", encoding="utf-8") as out:
            log_head = head_position(conn, settings)
            manifest = _manifest(as_of, last, chain, names, log_head)
            # Why the chain could not be brought to the log's head, when it could not:
            # the files then stop short of the log (`head` against `log_head`).
            manifest["not_chained"] = not_chained
            json.dump(manifest, out, indent=2)
            out.write("\n")
        files = {kind: directory / name for kind, name in names.items()}
        for kind, path in staged.items():
            if kind != "manifest":
                # Same file system: each rename is atomic, and nothing can fail in
                # between but the rename itself.
                path.replace(files[kind])
        for path in earlier:
            if path not in files.values():
                path.unlink(missing_ok=True)  # an earlier trial balance, as of another day
        staged["manifest"].replace(files["manifest"])
        return ExportResult(files, chain, log_head)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _manifest(
    as_of: date,
    last: ChainHead | None,
    chain: VerifyResult,
    names: dict[str, str],
    log_head: int,
) -> dict[str, Any]:
    """What the export is, for whoever receives the directory without the command's
    output: the head it runs to, whether its chain verified, the day of its journal,
    and the log's last position (beyond the head: the files stop short of the log)."""
    return {
        "exported_by": EXPORTED_BY,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "head": None if last is None else f"{last.position}:{last.hash.hex()}",
        "log_head": log_head,
        "chain_check": {
            "ok": chain.ok,
            "events_checked": chain.events_checked,
            "first_bad_position": chain.first_bad_position,
            "reason": chain.reason,
        },
        "files": sorted(name for name in names.values() if name != MANIFEST),
    }

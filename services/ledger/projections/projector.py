"""Fills the ledger read models from ChartOfAccounts and JournalEntry events.

A page of events is folded in memory first (balances per account, per account-day)
and then written with a handful of set-based statements, so replay cost grows with
the number of pages and rows, not with round trips per event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Dialect, Table, update
from sqlalchemy.dialects import postgresql, sqlite

from services.common.bulk import bind_rows, insert_bound, insert_rows, upsert_rows
from services.common.database import daily_rows_from
from services.common.projections import DomainEvent, PreparedProjection
from services.ledger.domain import ChartOfAccounts, JournalEntry, Side
from services.ledger.projections.tables import (
    ledger_account_balances,
    ledger_accounts,
    ledger_daily_balances,
    ledger_entries,
    ledger_lines,
)

# Below this many new daily-balance rows a page upserts them with the changed ones.
COPY_MIN_ROWS = 100


def upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT that supports ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass
class LedgerPage:
    """A page of ledger events as rows to write (`LedgerProjection.prepare`).

    `steps` in log order: ("rows", entries, lines, reversals) (`BoundRows`
    of the two tables), ("opened", code,
    name, account type) or ("closed", code). `activity`: (account, day) -> [debit
    cents, credit cents], which `write` folds into the stored balances."""

    steps: list[tuple[Any, ...]] = field(default_factory=list)
    activity: dict[tuple[str, date], list[int]] = field(default_factory=dict)


class LedgerProjection(PreparedProjection):
    name: ClassVar[str] = "ledger"
    tables: ClassVar[tuple[Table, ...]] = (
        ledger_accounts,
        ledger_entries,
        ledger_lines,
        ledger_account_balances,
        ledger_daily_balances,
    )
    insert_only_tables: ClassVar[tuple[Table, ...]] = (ledger_lines,)
    topics: ClassVar[frozenset[str]] = frozenset(
        get_topic(cls)
        for cls in (
            ChartOfAccounts.AccountOpened,
            ChartOfAccounts.AccountClosedEvent,
            JournalEntry.Posted,
            JournalEntry.Reversed,
        )
    )

    def prepare(self, events: Sequence[tuple[int, DomainEvent]], dialect: Dialect) -> LedgerPage:
        # Rows are tuples in the tables' column order, handed over bound for the
        # dialect (see services/common/bulk.py).
        page = LedgerPage()
        entry_rows: list[tuple[Any, ...]] = []
        line_rows: list[tuple[Any, ...]] = []
        reversals: list[tuple[Any, Any]] = []
        # (account, day) -> [debit, credit]
        activity = page.activity
        debit_side = Side.DEBIT.value
        add_line = line_rows.append

        def flush() -> None:
            if entry_rows or reversals:
                page.steps.append(
                    (
                        "rows",
                        bind_rows(dialect, ledger_entries, entry_rows),
                        bind_rows(dialect, ledger_lines, line_rows),
                        list(reversals),
                    )
                )
            for written in (entry_rows, line_rows, reversals):
                written.clear()  # in place: add_line appends to line_rows

        for position, event in events:
            if isinstance(event, JournalEntry.Posted):
                entry_id = event.originator_id
                effective_date = event.effective_date
                total_cents = 0
                # The innermost loop of a replay (3.6 postings an event): local names,
                # one dict probe per posting.
                for line_no, state in enumerate(event.postings):
                    cents = int(state["cents"])
                    account = state["account"]
                    key = (account, effective_date)
                    day_activity = activity.get(key)
                    if day_activity is None:
                        day_activity = activity[key] = [0, 0]
                    if state["side"] == debit_side:
                        total_cents += cents
                        day_activity[0] += cents
                        add_line((position, line_no, account, cents, 0, effective_date))
                    else:
                        day_activity[1] += cents
                        add_line((position, line_no, account, 0, cents, effective_date))
                entry_rows.append(
                    (
                        entry_id,
                        position,
                        effective_date,
                        event.timestamp,
                        event.description,
                        event.cause_id,
                        event.actor,
                        total_cents,
                        event.reverses_entry_id,
                        None,  # reversed_by_entry_id: set when the reversal is recorded
                    )
                )
            elif isinstance(event, JournalEntry.Reversed):
                reversals.append((event.originator_id, event.reversal_entry_id))
            elif isinstance(event, ChartOfAccounts.AccountOpened):
                # What came before is written first, so an account's rows follow its
                # opening.
                flush()
                page.steps.append(("opened", event.code, event.name, event.account_type))
            elif isinstance(event, ChartOfAccounts.AccountClosedEvent):
                flush()
                page.steps.append(("closed", event.code))
        flush()
        return page

    def write(self, conn: Connection, prepared: LedgerPage) -> None:
        for step in prepared.steps:
            if step[0] == "rows":
                _kind, entries, lines, reversals = step
                insert_bound(conn, ledger_entries, entries)
                insert_bound(conn, ledger_lines, lines)
                for entry_id, reversal_id in reversals:
                    conn.execute(
                        update(ledger_entries)
                        .where(ledger_entries.c.entry_id == entry_id)
                        .values(reversed_by_entry_id=reversal_id)
                    )
            elif step[0] == "opened":
                _kind, code, name, account_type = step
                conn.execute(
                    upsert(conn, ledger_accounts)
                    .values(code=code, name=name, account_type=account_type, is_open=True)
                    .on_conflict_do_nothing()
                )
            else:
                conn.execute(
                    update(ledger_accounts)
                    .where(ledger_accounts.c.code == step[1])
                    .values(is_open=False)
                )
        if prepared.activity:
            self._apply_balances(conn, prepared.activity)

    @staticmethod
    def _apply_balances(conn: Connection, activity: dict[tuple[str, date], list[int]]) -> None:
        # Current totals per account, added to the stored ones in one statement.
        per_account: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (account, _day), (debit, credit) in activity.items():
            per_account[account][0] += debit
            per_account[account][1] += credit
        upsert_rows(
            conn,
            ledger_account_balances,
            [(account, debit, credit) for account, (debit, credit) in per_account.items()],
            accumulate=True,
        )

        # Daily balances: load each touched account's rows from its earliest touched
        # day on, plus the row of its last day before (its opening closing balance),
        # and recompute in memory.
        first_day: dict[str, date] = {}
        for account, day in activity:
            if account not in first_day or day < first_day[account]:
                first_day[account] = day
        existing: dict[str, dict[date, list[int]]] = defaultdict(dict)
        opening: dict[str, int] = {}
        for account, day, debit, credit, closing in daily_rows_from(
            conn, ledger_daily_balances, ("account_code",), {(a,): d for a, d in first_day.items()}
        ):
            if day < first_day[account]:
                opening[account] = int(closing)
            else:
                existing[account][day] = [int(debit), int(credit)]
        # Every stored row of these accounts from their first touched day on was just
        # read, so a day not among them has no row yet: those are inserted (COPY on
        # PostgreSQL; a replay's rows are nearly all new), the others replaced.
        stored = {(account, day) for account, days in existing.items() for day in days}
        for (account, day), (debit, credit) in activity.items():
            day_totals = existing[account].setdefault(day, [0, 0])
            day_totals[0] += debit
            day_totals[1] += credit
        new_rows: list[tuple[Any, ...]] = []
        changed_rows: list[tuple[Any, ...]] = []
        for account, days in existing.items():
            closing = opening.get(account, 0)
            for day in sorted(days):
                debit, credit = days[day]
                closing += debit - credit
                row = (account, day, debit, credit, closing)
                (changed_rows if (account, day) in stored else new_rows).append(row)
        if len(new_rows) < COPY_MIN_ROWS:
            # A live page (a sale or two): one statement beats an upsert plus a COPY.
            upsert_rows(conn, ledger_daily_balances, changed_rows + new_rows)
        else:
            upsert_rows(conn, ledger_daily_balances, changed_rows)
            insert_rows(conn, ledger_daily_balances, new_rows)

"""Ledger read models. Rebuildable from the event log at any time."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Uuid,
    select,
)

from services.common.database import metadata

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("account_type", String(20), nullable=False),
    Column("is_open", Boolean, nullable=False),
)

# Keyed by position for the same reason as the lines below; on SQLite the key is
# the rowid itself (INTEGER PRIMARY KEY), so a row is one B-tree append plus its
# entry_id index entry.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("entry_id", Uuid, nullable=False),
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("effective_date", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("description", String(10_000), nullable=False),
    Column("cause_id", String(300), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("reverses_entry_id", Uuid, nullable=True),
    Column("reversed_by_entry_id", Uuid, nullable=True),
    Index("ux_ledger_entries_entry_id", "entry_id", unique=True),
    Index("ix_ledger_entries_date_position", "effective_date", "position"),
)

# Keyed by the entry's position in the log (ledger_entries.position), not its UUID:
# lines are most of the rows a replay writes, and a key that only grows is appended at
# the B-tree's right edge instead of landing on a random page (on SQLite the table is
# that B-tree itself). Join to the entry on position.
ledger_lines = Table(
    "ledger_lines",
    metadata,
    Column("position", BigInteger, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("account_code", String(64), nullable=False),
    Column("debit_cents", BigInteger, nullable=False),
    Column("credit_cents", BigInteger, nullable=False),
    Column("effective_date", Date, nullable=False),
    PrimaryKeyConstraint("position", "line_no", name="pk_ledger_lines"),
    Index("ix_ledger_lines_account_date", "account_code", "effective_date", "position"),
    sqlite_with_rowid=False,
)

# Current totals per account (one row per account that has postings).
ledger_account_balances = Table(
    "ledger_account_balances",
    metadata,
    Column("account_code", String(64), primary_key=True),
    Column("debit_cents", BigInteger, nullable=False),
    Column("credit_cents", BigInteger, nullable=False),
)

# One row per account and day with postings: that day's activity and the closing
# balance (debits minus credits, cumulative). A balance as of D is the latest row
# on or before D: one index lookup, however long the history.
ledger_daily_balances = Table(
    "ledger_daily_balances",
    metadata,
    Column("account_code", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("debit_cents", BigInteger, nullable=False),
    Column("credit_cents", BigInteger, nullable=False),
    Column("closing_cents", BigInteger, nullable=False),
)


def closing_balances_statement(days_by_account: dict[str, date], *, inclusive: bool) -> Select[Any]:
    """One row: each account's latest closing balance before (or on) its day.

    One scalar subquery per account, each an index lookup on (account_code, day)
    read backwards with LIMIT 1: the cost does not grow with the length of history
    (a GROUP BY over the daily rows would).
    """
    d = ledger_daily_balances.c
    columns = []
    for index, (account, day) in enumerate(days_by_account.items()):
        bound = d.day <= day if inclusive else d.day < day
        columns.append(
            select(d.closing_cents)
            .where(d.account_code == account, bound)
            .order_by(d.day.desc())
            .limit(1)
            .scalar_subquery()
            .label(f"c{index}")
        )
    return select(*columns)

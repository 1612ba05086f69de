"""Read-side queries over the ledger read models (async; asyncpg / aiosqlite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.cursors import dated_after, dated_cursor
from services.common.errors import NotFound
from services.ledger.domain import AccountType
from services.ledger.projections.tables import (
    closing_balances_statement,
    ledger_account_balances,
    ledger_accounts,
    ledger_daily_balances,
    ledger_entries,
    ledger_lines,
)


@dataclass(frozen=True)
class AccountRow:
    code: str
    name: str
    account_type: AccountType
    is_open: bool
    debit_cents: int
    credit_cents: int

    @property
    def balance_cents(self) -> int:
        """Balance in the account's normal direction (positive = normal)."""
        net = self.debit_cents - self.credit_cents
        return net if self.account_type.is_debit_normal else -net


@dataclass(frozen=True)
class LineRow:
    line_no: int
    account_code: str
    debit_cents: int
    credit_cents: int


@dataclass(frozen=True)
class EntryRow:
    entry_id: UUID
    position: int
    effective_date: date
    recorded_at: Any
    description: str
    cause_id: str
    actor: str
    total_cents: int
    reverses_entry_id: UUID | None
    reversed_by_entry_id: UUID | None
    lines: tuple[LineRow, ...]


@dataclass(frozen=True)
class EntryPage:
    entries: list[EntryRow]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class BalanceRow:
    code: str
    name: str
    account_type: AccountType
    net_cents: int  # debits minus credits

    @property
    def debit_cents(self) -> int:
        return self.net_cents if self.net_cents > 0 else 0

    @property
    def credit_cents(self) -> int:
        return -self.net_cents if self.net_cents < 0 else 0

    @property
    def balance_cents(self) -> int:
        return self.net_cents if self.account_type.is_debit_normal else -self.net_cents


@dataclass(frozen=True)
class PeriodRow:
    """One account over a period: where it stood before, what moved, where it ended."""

    code: str
    name: str
    account_type: AccountType
    opening_net_cents: int  # debits minus credits dated before the period
    debit_cents: int  # posted in the period
    credit_cents: int

    @property
    def opening(self) -> BalanceRow:
        return BalanceRow(self.code, self.name, self.account_type, self.opening_net_cents)

    @property
    def closing(self) -> BalanceRow:
        closing_net_cents = self.opening_net_cents + self.debit_cents - self.credit_cents
        return BalanceRow(self.code, self.name, self.account_type, closing_net_cents)


async def list_accounts(conn: AsyncConnection) -> list[AccountRow]:
    a, b = ledger_accounts.c, ledger_account_balances.c
    rows = await conn.execute(
        select(
            a.code,
            a.name,
            a.account_type,
            a.is_open,
            func.coalesce(b.debit_cents, 0),
            func.coalesce(b.credit_cents, 0),
        )
        .select_from(ledger_accounts.outerjoin(ledger_account_balances, a.code == b.account_code))
        .order_by(a.code)
    )
    return [
        AccountRow(code, name, AccountType(kind), bool(is_open), int(d), int(c))
        for code, name, kind, is_open, d, c in rows
    ]


async def journal_page(
    conn: AsyncConnection,
    *,
    from_date: date | None,
    to_date: date | None,
    account_code: str | None,
    first: int,
    after: str | None,
) -> EntryPage:
    """Entries ordered by effective date then recording order; keyset pagination."""
    e = ledger_entries.c
    query = select(ledger_entries)
    if from_date is not None:
        query = query.where(e.effective_date >= from_date)
    if to_date is not None:
        query = query.where(e.effective_date <= to_date)
    if account_code is not None:
        touching = select(ledger_lines.c.position).where(
            ledger_lines.c.account_code == account_code
        )
        query = query.where(e.position.in_(touching))
    if after is not None:
        after_date, after_position = dated_after("journal", after)
        query = query.where(tuple_(e.effective_date, e.position) > (after_date, after_position))
    rows = (
        (await conn.execute(query.order_by(e.effective_date, e.position).limit(first + 1)))
        .mappings()
        .all()
    )
    has_next = len(rows) > first
    entries = await _with_lines(conn, rows[:first])
    end_cursor = (
        dated_cursor("journal", entries[-1].effective_date, entries[-1].position)
        if entries
        else None
    )
    return EntryPage(entries, has_next, end_cursor)


async def trial_balance(conn: AsyncConnection, as_of: date) -> list[BalanceRow]:
    """Every account with a non-zero balance on `as_of` (entries effective that day count)."""
    a = ledger_accounts.c
    accounts = (await conn.execute(select(a.code, a.name, a.account_type).order_by(a.code))).all()
    if not accounts:
        return []
    statement = closing_balances_statement(
        {code: as_of for code, _n, _t in accounts}, inclusive=True
    )
    closings = (await conn.execute(statement)).one()
    return [
        BalanceRow(code, name, AccountType(kind), int(closing))
        for (code, name, kind), closing in zip(accounts, closings, strict=True)
        if closing
    ]


async def period_trial_balance(conn: AsyncConnection, first: date, last: date) -> list[PeriodRow]:
    """Every account with a balance before `first` or postings from `first` to `last`
    (both included): its opening, its period's debits and credits."""
    a = ledger_accounts.c
    accounts = (await conn.execute(select(a.code, a.name, a.account_type).order_by(a.code))).all()
    if not accounts:
        return []
    openings = (
        await conn.execute(
            closing_balances_statement({code: first for code, _n, _t in accounts}, inclusive=False)
        )
    ).one()
    d = ledger_daily_balances.c
    moved = {
        code: (int(debit), int(credit))
        for code, debit, credit in await conn.execute(
            select(d.account_code, func.sum(d.debit_cents), func.sum(d.credit_cents))
            .where(d.day >= first, d.day <= last)
            .group_by(d.account_code)
        )
    }
    rows = [
        PeriodRow(code, name, AccountType(kind), int(opening or 0), *moved.get(code, (0, 0)))
        for (code, name, kind), opening in zip(accounts, openings, strict=True)
    ]
    return [r for r in rows if r.opening_net_cents or r.debit_cents or r.credit_cents]


async def account_balance(conn: AsyncConnection, code: str, as_of: date) -> BalanceRow:
    a = ledger_accounts.c
    account = (
        await conn.execute(select(a.code, a.name, a.account_type).where(a.code == code))
    ).first()
    if account is None:
        raise NotFound(f"account {code!r} does not exist")
    closing = (await conn.execute(closing_balances_statement({code: as_of}, inclusive=True))).one()
    net = int(closing[0]) if closing[0] is not None else 0
    return BalanceRow(account[0], account[1], AccountType(account[2]), net)


async def entry_by_id(conn: AsyncConnection, entry_id: UUID) -> EntryRow | None:
    return (await entries_by_ids(conn, [entry_id])).get(entry_id)


async def entries_by_ids(conn: AsyncConnection, entry_ids: Sequence[UUID]) -> dict[UUID, EntryRow]:
    """The entries with these ids that the read model holds, with their lines: two
    statements whatever their number (a page of them read one by one was three each)."""
    if not entry_ids:
        return {}
    e = ledger_entries.c
    rows = (
        (await conn.execute(select(ledger_entries).where(e.entry_id.in_(list(entry_ids)))))
        .mappings()
        .all()
    )
    return {entry.entry_id: entry for entry in await _with_lines(conn, rows)}


async def _with_lines(conn: AsyncConnection, rows: Sequence[RowMapping]) -> list[EntryRow]:
    """`rows` of ledger_entries as entries, their lines read in one statement."""
    lines_by_entry: dict[int, list[LineRow]] = {row["position"]: [] for row in rows}
    if rows:
        line_result = await conn.execute(
            select(ledger_lines)
            .where(ledger_lines.c.position.in_([row["position"] for row in rows]))
            .order_by(ledger_lines.c.position, ledger_lines.c.line_no)
        )
        for line in line_result.mappings():
            lines_by_entry[line["position"]].append(
                LineRow(
                    line["line_no"],
                    line["account_code"],
                    int(line["debit_cents"]),
                    int(line["credit_cents"]),
                )
            )
    return [
        EntryRow(
            entry_id=row["entry_id"],
            position=int(row["position"]),
            effective_date=row["effective_date"],
            recorded_at=row["recorded_at"],
            description=row["description"],
            cause_id=row["cause_id"],
            actor=row["actor"],
            total_cents=int(row["total_cents"]),
            reverses_entry_id=row["reverses_entry_id"],
            reversed_by_entry_id=row["reversed_by_entry_id"],
            lines=tuple(lines_by_entry[row["position"]]),
        )
        for row in rows
    ]

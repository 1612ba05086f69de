"""GraphQL types of the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import strawberry

from services.common.graphql import Money, PageInfo, money
from services.ledger.domain import AccountType, BooksClosing, Side
from services.ledger.projections.queries import AccountRow, BalanceRow, EntryRow, PeriodRow

# Expose the domain enums as they are (registration only; the domain imports nothing).
strawberry.enum(AccountType, name="AccountType")
strawberry.enum(Side, name="Side")


@strawberry.type
class Account:
    code: str
    name: str
    type: AccountType
    is_open: bool
    debit_total: Money
    credit_total: Money
    balance: Money = strawberry.field(description="In the account's normal direction.")

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(
            code=row.code,
            name=row.name,
            type=row.account_type,
            is_open=row.is_open,
            debit_total=money(row.debit_cents),
            credit_total=money(row.credit_cents),
            balance=money(row.balance_cents),
        )


@strawberry.type
class JournalLine:
    account: str
    debit: Money
    credit: Money


@strawberry.type
class JournalEntry:
    id: strawberry.ID
    position: int = strawberry.field(description="Position in the event log.")
    effective_date: date
    recorded_at: datetime
    description: str
    cause: str
    actor: str
    total: Money
    reverses_entry_id: strawberry.ID | None
    reversed_by_entry_id: strawberry.ID | None
    lines: list[JournalLine]

    @classmethod
    def from_row(cls, row: EntryRow) -> JournalEntry:
        recorded_at = row.recorded_at
        if recorded_at.tzinfo is None:  # SQLite keeps no offset; we store UTC
            recorded_at = recorded_at.replace(tzinfo=UTC)
        return cls(
            id=strawberry.ID(str(row.entry_id)),
            position=row.position,
            effective_date=row.effective_date,
            recorded_at=recorded_at,
            description=row.description,
            cause=row.cause_id,
            actor=row.actor,
            total=money(row.total_cents),
            reverses_entry_id=_id(row.reverses_entry_id),
            reversed_by_entry_id=_id(row.reversed_by_entry_id),
            lines=[
                JournalLine(
                    account=line.account_code,
                    debit=money(line.debit_cents),
                    credit=money(line.credit_cents),
                )
                for line in row.lines
            ],
        )


def _id(value: object | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type
class JournalConnection:
    nodes: list[JournalEntry]
    page_info: PageInfo


@strawberry.type
class TrialBalanceLine:
    account: str
    name: str
    type: AccountType
    debit: Money
    credit: Money

    @classmethod
    def from_row(cls, row: BalanceRow) -> TrialBalanceLine:
        return cls(
            account=row.code,
            name=row.name,
            type=row.account_type,
            debit=money(row.debit_cents),
            credit=money(row.credit_cents),
        )


@strawberry.type
class TrialBalance:
    as_of: date
    lines: list[TrialBalanceLine]
    total_debit: Money
    total_credit: Money
    balanced: bool


@strawberry.type(description="One account in a period: opening, movements, closing.")
class PeriodTrialBalanceLine:
    account: str
    name: str
    type: AccountType
    opening_debit: Money
    opening_credit: Money
    debit: Money = strawberry.field(description="Debits dated in the period.")
    credit: Money = strawberry.field(description="Credits dated in the period.")
    closing_debit: Money
    closing_credit: Money

    @classmethod
    def from_row(cls, row: PeriodRow) -> PeriodTrialBalanceLine:
        return cls(
            account=row.code,
            name=row.name,
            type=row.account_type,
            opening_debit=money(row.opening.debit_cents),
            opening_credit=money(row.opening.credit_cents),
            debit=money(row.debit_cents),
            credit=money(row.credit_cents),
            closing_debit=money(row.closing.debit_cents),
            closing_credit=money(row.closing.credit_cents),
        )


@strawberry.type
class PeriodTrialBalance:
    from_: date = strawberry.field(name="from")
    to: date
    lines: list[PeriodTrialBalanceLine]
    total_opening_debit: Money
    total_opening_credit: Money
    total_debit: Money
    total_credit: Money
    total_closing_debit: Money
    total_closing_credit: Money
    balanced: bool = strawberry.field(
        description="Opening, movements and closing each have equal debit and credit totals."
    )

    @classmethod
    def from_rows(cls, first: date, last: date, rows: list[PeriodRow]) -> PeriodTrialBalance:
        totals = (
            sum(r.opening.debit_cents for r in rows),
            sum(r.opening.credit_cents for r in rows),
            sum(r.debit_cents for r in rows),
            sum(r.credit_cents for r in rows),
            sum(r.closing.debit_cents for r in rows),
            sum(r.closing.credit_cents for r in rows),
        )
        return cls(
            from_=first,
            to=last,
            lines=[PeriodTrialBalanceLine.from_row(r) for r in rows],
            total_opening_debit=money(totals[0]),
            total_opening_credit=money(totals[1]),
            total_debit=money(totals[2]),
            total_credit=money(totals[3]),
            total_closing_debit=money(totals[4]),
            total_closing_credit=money(totals[5]),
            balanced=totals[0] == totals[1] and totals[2] == totals[3] and totals[4] == totals[5],
        )


@strawberry.type
class AccountBalance:
    account: str
    name: str
    type: AccountType
    as_of: date
    debit: Money
    credit: Money
    balance: Money = strawberry.field(description="In the account's normal direction.")

    @classmethod
    def from_row(cls, row: BalanceRow, as_of: date) -> AccountBalance:
        return cls(
            account=row.code,
            name=row.name,
            type=row.account_type,
            as_of=as_of,
            debit=money(row.debit_cents),
            credit=money(row.credit_cents),
            balance=money(row.balance_cents),
        )


@strawberry.type(
    name="BooksClosing",
    description="The books are closed through a day: no entry is dated on or before it.",
)
class BooksClosingType:
    through: date = strawberry.field(description="The last day of the closed period.")
    closed_by: str
    closed_at: datetime

    @classmethod
    def of(cls, closing: BooksClosing) -> BooksClosingType:
        return cls(
            through=closing.through, closed_by=closing.closed_by, closed_at=closing.closed_at
        )

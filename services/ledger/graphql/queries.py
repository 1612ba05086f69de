"""Ledger queries: accounts, journal, trial balance, account balance, the books' closing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from gateway.context import Info
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import ValidationError
from services.common.graphql import PageInfo, as_of_date, check_page_size, money
from services.ledger.domain.accounts import check_account_code
from services.ledger.graphql.types import (
    Account,
    AccountBalance,
    BooksClosingType,
    JournalConnection,
    JournalEntry,
    PeriodTrialBalance,
    TrialBalance,
    TrialBalanceLine,
)
from services.ledger.projections import queries


@strawberry.type
class LedgerQuery:
    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="The chart of accounts with current balances.",
    )
    async def accounts(self, info: Info) -> list[Account]:
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.list_accounts(conn)
        return [Account.from_row(row) for row in rows]

    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="Journal entries by effective date, paginated.",
    )
    async def journal(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        account: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> JournalConnection:
        settings = info.context.runtime.settings
        check_page_size(first, settings.max_page_size)
        if from_ is not None and to is not None and from_ > to:
            # An empty page would read as "no entries in that period".
            raise ValidationError("to", "must be on or after `from`")
        if account is not None:
            check_account_code(
                account, field="account", max_length=settings.max_account_code_length
            )
        async with info.context.runtime.read_engine.connect() as conn:
            page = await queries.journal_page(
                conn, from_date=from_, to_date=to, account_code=account, first=first, after=after
            )
        return JournalConnection(
            nodes=[JournalEntry.from_row(row) for row in page.entries],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="Balances of every account as of an instant (default: now).",
    )
    async def trial_balance(self, info: Info, as_of: datetime | None = None) -> TrialBalance:
        day = as_of_date(as_of, info.context.runtime.settings.zone)
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.trial_balance(conn, day)
        total_debit = sum(row.debit_cents for row in rows)
        total_credit = sum(row.credit_cents for row in rows)
        return TrialBalance(
            as_of=day,
            lines=[TrialBalanceLine.from_row(row) for row in rows],
            total_debit=money(total_debit),
            total_credit=money(total_credit),
            balanced=total_debit == total_credit,
        )

    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="Every account's opening balance, debits and credits dated from `from` "
        "to `to` (both included) and closing balance: the year's revenue and expenses are "
        "the period's movements.",
    )
    async def period_trial_balance(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date
    ) -> PeriodTrialBalance:
        if to < from_:
            raise ValidationError("to", "must not be before from")
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.period_trial_balance(conn, from_, to)
        return PeriodTrialBalance.from_rows(from_, to, rows)

    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="One account's balance as of an instant (default: now).",
    )
    async def account_balance(
        self, info: Info, code: str, as_of: datetime | None = None
    ) -> AccountBalance:
        settings = info.context.runtime.settings
        check_account_code(code, field="code", max_length=settings.max_account_code_length)
        day = as_of_date(as_of, settings.zone)
        async with info.context.runtime.read_engine.connect() as conn:
            row = await queries.account_balance(conn, code, day)
        return AccountBalance.from_row(row, day)

    @strawberry.field(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="Through which day the books are closed, by whom and when (null: never).",
    )
    async def books_closing(self, info: Info) -> BooksClosingType | None:
        runtime = info.context.runtime
        # From the chart itself, as the hotel's and the shop's configurations are read:
        # the close is one fact of the chart, which no read model holds.
        closing = await runtime.run_sync(runtime.ledger.books_closing)
        return None if closing is None else BooksClosingType.of(closing)

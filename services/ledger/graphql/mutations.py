"""Ledger mutations: manual journal entries, reversals, opening and closing accounts,
closing the books."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import strawberry

from gateway.context import Info, run_mutation
from gateway.permissions import allow
from gateway.runtime import ProjectionLag
from services.common.auth import Role
from services.common.errors import NotFound, ValidationError
from services.common.graphql import (
    ConflictResult,
    IdempotencyKeyReusedResult,
    Money,
    NotFoundResult,
    ValidationErrorResult,
)
from services.common.idempotency import Outcome
from services.common.money import decimal_to_cents
from services.ledger.domain import Account as AccountModel
from services.ledger.domain import AccountType, BooksClosing, Posting, Side
from services.ledger.domain import JournalEntry as JournalEntryModel
from services.ledger.graphql.types import Account, BooksClosingType, JournalEntry
from services.ledger.projections import queries

JournalEntryResult = Annotated[
    JournalEntry
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("JournalEntryResult"),
]
AccountResult = Annotated[
    Account | ValidationErrorResult | NotFoundResult | ConflictResult | IdempotencyKeyReusedResult,
    strawberry.union("AccountResult"),
]

CloseBooksResult = Annotated[
    BooksClosingType
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("CloseBooksResult"),
]


@strawberry.input
class PostingInput:
    account: str
    side: Side
    amount: Money


@strawberry.input
class PostJournalEntryInput:
    idempotency_key: str
    effective_date: date
    description: str
    postings: list[PostingInput]


@strawberry.input
class ReverseJournalEntryInput:
    idempotency_key: str
    entry_id: strawberry.ID
    effective_date: date
    description: str


@strawberry.input
class OpenAccountInput:
    idempotency_key: str
    code: str
    name: str
    type: AccountType


@strawberry.input
class CloseAccountInput:
    idempotency_key: str
    code: str


@strawberry.input
class CloseBooksInput:
    idempotency_key: str
    through: date = strawberry.field(
        description="The last day to close: a day that has ended, after the current close."
    )


def _postings(inputs: list[PostingInput]) -> list[Posting]:
    return [
        Posting(
            account_code=posting.account,
            side=posting.side,
            amount_cents=decimal_to_cents(posting.amount, field=f"postings[{index}].amount"),
        )
        for index, posting in enumerate(inputs)
    ]


def _entry_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError("entryId", "not a journal entry id") from None


async def _entry_result(info: Info, outcome: Outcome[JournalEntryModel]) -> JournalEntry:
    async with info.context.runtime.read_engine.connect() as conn:
        row = await queries.entry_by_id(conn, outcome.result.id)
    if row is None:  # the wait above guarantees the projection has it
        raise NotFound(f"journal entry {outcome.result.id} is not projected yet")
    return JournalEntry.from_row(row)


async def _account_result(info: Info, outcome: Outcome[AccountModel]) -> Account:
    async with info.context.runtime.read_engine.connect() as conn:
        rows = await queries.list_accounts(conn)
    for row in rows:
        if row.code == outcome.result.code:
            return Account.from_row(row)
    # Only while a rebuild in another process has emptied the read models (the wait
    # above saw a position from before it): typed, as for an entry.
    raise NotFound(f"account {outcome.result.code!r} is not projected yet")


@strawberry.type
class LedgerMutation:
    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN), description="Post a balanced manual journal entry."
    )
    async def post_journal_entry(
        self, info: Info, input: PostJournalEntryInput
    ) -> JournalEntryResult:
        ledger = info.context.runtime.ledger
        actor = info.context.actor

        def command() -> Outcome[JournalEntryModel]:
            return ledger.post_entry(
                key=input.idempotency_key,
                actor=actor,
                effective_date=input.effective_date,
                description=input.description,
                postings=_postings(input.postings),
            )

        return await run_mutation(info, command, lambda o: _entry_result(info, o))

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN),
        description="Reverse an entry with a new, mirrored entry.",
    )
    async def reverse_journal_entry(
        self, info: Info, input: ReverseJournalEntryInput
    ) -> JournalEntryResult:
        ledger = info.context.runtime.ledger
        actor = info.context.actor

        def command() -> Outcome[JournalEntryModel]:
            return ledger.reverse_entry(
                key=input.idempotency_key,
                actor=actor,
                entry_id=_entry_id(input.entry_id),
                effective_date=input.effective_date,
                description=input.description,
            )

        return await run_mutation(info, command, lambda o: _entry_result(info, o))

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN), description="Add an account to the chart."
    )
    async def open_account(self, info: Info, input: OpenAccountInput) -> AccountResult:
        ledger = info.context.runtime.ledger
        actor = info.context.actor

        def command() -> Outcome[AccountModel]:
            return ledger.open_account(
                key=input.idempotency_key,
                actor=actor,
                code=input.code,
                name=input.name,
                account_type=input.type,
            )

        return await run_mutation(info, command, lambda o: _account_result(info, o))

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN),
        description="Close an account: no new postings; history stays.",
    )
    async def close_account(self, info: Info, input: CloseAccountInput) -> AccountResult:
        ledger = info.context.runtime.ledger
        actor = info.context.actor

        def command() -> Outcome[AccountModel]:
            return ledger.close_account(key=input.idempotency_key, actor=actor, code=input.code)

        return await run_mutation(info, command, lambda o: _account_result(info, o))

    @strawberry.mutation(
        permission_classes=allow(Role.ADMIN),
        description=(
            "Close the books through a day: no entry of any context may then be dated on "
            "or before it; a closed period is corrected by entries dated after it. Moves "
            "forward only; never reopened."
        ),
    )
    async def close_books(self, info: Info, input: CloseBooksInput) -> CloseBooksResult:
        runtime = info.context.runtime
        ledger = runtime.ledger
        actor = info.context.actor
        try:
            # The fund's accrual of income saved so far is dated on the income's day,
            # in the period about to close: closed first, the period's figures would
            # change after the close (the accrual is let in, see ACCRUAL_CAUSE_PREFIX).
            await runtime.fund_settled()
            settled = True
        except ProjectionLag:
            settled = False  # refused in the command, unless it retries a close done

        def command() -> Outcome[BooksClosing]:
            return ledger.close_books(
                key=input.idempotency_key,
                actor=actor,
                through=input.through,
                accruals_settled=settled,
            )

        async def present(outcome: Outcome[BooksClosing]) -> BooksClosingType:
            return BooksClosingType.of(outcome.result)

        return await run_mutation(info, command, present)

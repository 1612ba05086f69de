"""Ledger subscriptions (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from gateway.context import Info, projection_changes
from gateway.permissions import allow
from services.common.auth import Role
from services.ledger.domain.accounts import check_account_code
from services.ledger.graphql.types import AccountBalance
from services.ledger.projections import queries


@strawberry.type
class LedgerSubscription:
    @strawberry.subscription(
        permission_classes=allow(Role.ADMIN, Role.AUDITOR),
        description="An account's balance now, then each time it changes.",
    )
    async def account_balance_updates(
        self, info: Info, code: str
    ) -> AsyncGenerator[AccountBalance, None]:
        settings = info.context.runtime.settings
        check_account_code(code, field="code", max_length=settings.max_account_code_length)
        last: AccountBalance | None = None
        async for _position in projection_changes(info):
            today = datetime.now(UTC).astimezone(settings.zone).date()
            async with info.context.runtime.read_engine.connect() as conn:
                row = await queries.account_balance(conn, code, today)
            current = AccountBalance.from_row(row, today)
            if current != last:
                last = current
                yield current

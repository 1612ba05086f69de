"""Welfare fund subscriptions (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from gateway.context import Info, projection_changes
from gateway.permissions import allow
from services.welfare_fund.graphql.queries import AGGREGATE_READERS
from services.welfare_fund.graphql.types import FundBalance
from services.welfare_fund.projections import queries


@strawberry.type
class WelfareFundSubscription:
    @strawberry.subscription(
        permission_classes=allow(*AGGREGATE_READERS),
        description="The fund's balance now, then each time it changes.",
    )
    async def fund_balance_updates(self, info: Info) -> AsyncGenerator[FundBalance, None]:
        zone = info.context.runtime.settings.zone
        programs = info.context.runtime.welfare.programs.programs
        last: FundBalance | None = None
        async for _position in projection_changes(info):
            today = datetime.now(UTC).astimezone(zone).date()
            view, _ = await queries.fund_balance(info.context.runtime.lone_reads, today, programs)
            current = FundBalance.from_view(view)
            if current != last:
                last = current
                yield current

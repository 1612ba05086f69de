"""Live till totals over WebSocket (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID

import strawberry

from gateway.context import Info, projection_changes
from services.common.errors import NotFound
from services.shop.domain import check_scope, check_till_id
from services.shop.graphql.mutations import session_report
from services.shop.graphql.queries import SHOP_READERS, open_session_id, scope_of
from services.shop.graphql.types import XReport


@strawberry.type
class ShopSubscription:
    @strawberry.subscription(
        permission_classes=SHOP_READERS,
        description="The running totals (X report) of a till's open session now, then on "
        "every change; null while the till has no open session. Volunteers: own till only.",
    )
    async def till_totals(self, info: Info, till_id: str) -> AsyncGenerator[XReport | None, None]:
        check_till_id(till_id)
        check_scope(scope_of(info), till_id)
        first = True
        last: XReport | None = None
        last_session_id: UUID | None = None
        async for _position in projection_changes(info):
            session_id = await open_session_id(info, till_id)
            if last_session_id is not None and session_id != last_session_id:
                # Closed since the last update: its final totals first. A last sale and
                # the Z close within one update would otherwise never be shown; the
                # last snapshot of a session is its report.
                try:
                    final: XReport | None = XReport.of(
                        await session_report(info, last_session_id, written=False)
                    )
                except NotFound:  # a rebuild in another process emptied the read models
                    final = last
                if final != last:
                    last = final
                    yield final
            last_session_id = session_id
            current = XReport.of(await session_report(info, session_id)) if session_id else None
            if first or current != last:
                first = False
                last = current
                yield current

"""Shop queries: sessions and their X report, sales, totals, daily close, sell-through."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

import strawberry
from sqlalchemy import select

from gateway.context import Info
from gateway.permissions import allow
from services.common.auth import Role
from services.common.errors import Conflict, NotFound, ValidationError
from services.common.graphql import PageInfo, check_page_size
from services.shop.domain import check_scope, check_till_id
from services.shop.graphql.mutations import parse_id, session_report
from services.shop.graphql.types import (
    CashSession,
    Sale,
    SaleConnection,
    SellThrough,
    ShopPolicyVersion,
    ShopTotals,
    TillDailyClose,
    XReport,
    ZReport,
    ZReportConnection,
)
from services.shop.projections import queries
from services.shop.projections.tables import shop_sessions

SHOP_READERS = allow(Role.VOLUNTEER, Role.ADMIN, Role.AUDITOR)
# A report over more than this many days is a job for the ledger's queries.
MAX_REPORT_DAYS = 366 * 5


def scope_of(info: Info) -> str | None:
    """Volunteers read their own till's sessions; admins and auditors read all."""
    principal = info.context.principal
    assert principal is not None
    if principal.roles & {Role.ADMIN, Role.AUDITOR}:
        return None
    return principal.till_id or ""


def _period(from_: date | None, to: date | None) -> None:
    if from_ is not None and to is not None:
        if to < from_:
            raise ValidationError("to", "must not be before from")
        if (to - from_).days > MAX_REPORT_DAYS:
            raise ValidationError("to", f"a period covers at most {MAX_REPORT_DAYS} days")


async def open_session_id(info: Info, till_id: str) -> UUID | None:
    s = shop_sessions.c
    async with info.context.runtime.read_engine.connect() as conn:
        session_id: UUID | None = (
            await conn.execute(
                select(s.session_id).where(s.till_id == till_id, s.is_open.is_(True))
            )
        ).scalar_one_or_none()
    return session_id


def _readable_till(info: Info, till_id: str | None) -> str | None:
    """The till a listing or report covers: any (None) or the one asked for, for
    admins and auditors; a volunteer's own till, which asking for another refuses
    (reports carry other volunteers' names)."""
    if till_id is not None:
        check_till_id(till_id)
    scope = scope_of(info)
    if scope is None:
        return till_id
    check_scope(scope, till_id if till_id is not None else scope)
    return scope


@strawberry.type
class ShopQuery:
    @strawberry.field(permission_classes=SHOP_READERS, description="A cash session by id.")
    async def cash_session(self, info: Info, id: strawberry.ID) -> CashSession:
        report = await session_report(info, parse_id(id, "id"), written=False)
        check_scope(scope_of(info), report.session.till_id)
        return CashSession.of(report)

    @strawberry.field(
        permission_classes=SHOP_READERS, description="The open cash session of a till, if any."
    )
    async def open_cash_session_of(self, info: Info, till_id: str) -> CashSession | None:
        check_till_id(till_id)
        check_scope(scope_of(info), till_id)
        session_id = await open_session_id(info, till_id)
        if session_id is None:
            return None
        return CashSession.of(await session_report(info, session_id, written=False))

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Totals of a session so far (open or closed); changes nothing.",
    )
    async def x_report(self, info: Info, session_id: strawberry.ID) -> XReport:
        report = await session_report(info, parse_id(session_id, "sessionId"), written=False)
        check_scope(scope_of(info), report.session.till_id)
        return XReport.of(report)

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="A closed session's Z report, as its close answered it.",
    )
    async def z_report(self, info: Info, session_id: strawberry.ID) -> ZReport:
        report = await session_report(info, parse_id(session_id, "sessionId"), written=False)
        check_scope(scope_of(info), report.session.till_id)
        if report.session.is_open:
            raise Conflict(
                f"cash session {report.session.session_id} is open: its totals so far are "
                "in xReport"
            )
        return ZReport.of(report)

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Z reports of the sessions opened on those business dates (inclusive), "
        "in the order closed, paginated. needsReview: true for those to review only "
        "(cash beyond the tolerance, card terminal differing), false for the others.",
    )
    async def z_reports(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        till_id: str | None = None,
        needs_review: bool | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ZReportConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        _period(from_, to)
        till_id = _readable_till(info, till_id)
        async with info.context.runtime.read_engine.connect() as conn:
            page = await queries.z_reports_page(
                conn,
                from_date=from_,
                to_date=to,
                till_id=till_id,
                needs_review=needs_review,
                first=first,
                after=after,
            )
        return ZReportConnection(
            nodes=[ZReport.of(report) for report in page.reports],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(permission_classes=SHOP_READERS, description="One sale with its refunds.")
    async def sale(self, info: Info, id: strawberry.ID) -> Sale:
        sale_id = parse_id(id, "id")
        async with info.context.runtime.read_engine.connect() as conn:
            document = await queries.document_by_id(conn, sale_id)
            if document is None or document.kind != "sale":
                raise NotFound(f"sale {sale_id} does not exist")
            check_scope(scope_of(info), document.till_id)
            refunds = await queries.refunds_of(conn, [sale_id])
        return Sale.of(document, refunds.get(sale_id, []))

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Sales by business date (inclusive), in the order rung, paginated.",
    )
    async def sales(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        till_id: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> SaleConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        _period(from_, to)
        till_id = _readable_till(info, till_id)
        async with info.context.runtime.read_engine.connect() as conn:
            page = await queries.documents_page(
                conn,
                kind="sale",
                from_date=from_,
                to_date=to,
                till_id=till_id,
                first=first,
                after=after,
            )
            refunds = await queries.refunds_of(conn, [d.document_id for d in page.documents])
        return SaleConnection(
            nodes=[Sale.of(d, refunds.get(d.document_id, [])) for d in page.documents],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Sales, refunds and net by category, volunteer, payment method and VAT rate.",
    )
    async def shop_totals(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        till_id: str | None = None,
    ) -> ShopTotals:
        _period(from_, to)
        till_id = _readable_till(info, till_id)
        filters = {"from_date": from_, "to_date": to, "till_id": till_id}
        async with info.context.runtime.read_engine.connect() as conn:
            breakdown = await queries.breakdown(conn, **filters)
            volunteers = await queries.volunteer_totals(conn, **filters)
        return ShopTotals.of(from_, to, till_id, breakdown, volunteers)

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Per till, a day's receipts as the electronic-receipt daily close sends them.",
    )
    async def daily_close(
        self, info: Info, date: date, till_id: str | None = None
    ) -> list[TillDailyClose]:
        till_id = _readable_till(info, till_id)
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.daily_close(conn, date, till_id)
        return [TillDailyClose.of(row) for row in rows]

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="Donated items received vs sold, per category, over a period.",
    )
    async def sell_through(
        self,
        info: Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> list[SellThrough]:
        _period(from_, to)
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.sell_through(conn, from_, to)
        return [SellThrough.of(row) for row in rows]

    @strawberry.field(
        permission_classes=SHOP_READERS,
        description="The shop configuration in force on a day (default: today).",
    )
    async def shop_policy(self, info: Info, on: date | None = None) -> ShopPolicyVersion:
        runtime = info.context.runtime
        day = on or datetime.now(UTC).astimezone(runtime.settings.zone).date()
        policy = await runtime.run_sync(lambda: runtime.shop.policy_on(day, field="on"))
        return ShopPolicyVersion.of(policy)

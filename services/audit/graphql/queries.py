"""Audit queries: verification, heads, event history, entries by cause."""

from __future__ import annotations

from uuid import UUID

import strawberry

from gateway.context import Info
from gateway.permissions import allow
from services.audit.application import HistoryEvent, parse_head
from services.audit.domain import GENESIS_HASH, VerifyResult
from services.audit.graphql.types import (
    AuditEvent,
    AuditHead,
    EventHistoryConnection,
    PublishedAuditHead,
    PublishedAuditHeadConnection,
    VerifyLedgerResult,
)
from services.audit.projections import queries
from services.audit.store import ChainHead
from services.common.auth import Role
from services.common.cursors import position_after, position_cursor
from services.common.errors import NotFound, ValidationError
from services.common.graphql import PageInfo, check_page_size
from services.ledger.graphql.types import JournalConnection, JournalEntry
from services.ledger.projections import queries as ledger_queries

MAX_CAUSE_LENGTH = 300  # the ledger's limit on cause ids


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(field, "not an id") from None


def _version_cursor(after: str | None) -> int:
    if after is None:
        return 0
    return position_after("eventHistory", after)


@strawberry.type
class AuditQuery:
    @strawberry.field(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description=(
            "Recompute the hash chain from event 0 (or from the latest published head: "
            "with `expectHead` before it, from the latest published head at or before "
            "`expectHead`, so the held head is always checked) and compare it with the "
            "stored chain and every published head after the start. "
            "`expectHead` (POSITION:HASH) is a head you kept outside this system."
        ),
    )
    async def verify_ledger(
        self,
        info: Info,
        from_published_head: bool = False,
        expect_head: str | None = None,
    ) -> VerifyLedgerResult:
        expect = parse_head(expect_head, field="expectHead") if expect_head is not None else None
        audit = info.context.runtime.audit

        def run() -> VerifyResult:
            return audit.verify(from_published_head=from_published_head, expect=expect)

        return VerifyLedgerResult.from_result(await info.context.runtime.run_sync(run))

    @strawberry.field(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description="The chain's current head (position 0 and the genesis hash while empty).",
    )
    async def audit_head(self, info: Info) -> AuditHead:
        async with info.context.runtime.read_engine.connect() as conn:
            head = await queries.current_head(conn)
        return AuditHead.from_head(head or ChainHead(0, GENESIS_HASH))

    @strawberry.field(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description="Published heads, newest first (paginated).",
    )
    async def published_audit_heads(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> PublishedAuditHeadConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        before = None if after is None else position_after("publishedAuditHeads", after)
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.list_published_heads(conn, first + 1, before_position=before)
        page = rows[:first]
        return PublishedAuditHeadConnection(
            nodes=[PublishedAuditHead.from_row(row) for row in page],
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=(
                    position_cursor("publishedAuditHeads", page[-1].position) if page else None
                ),
            ),
        )

    @strawberry.field(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description="Every event of one aggregate in version order, as stored (paginated).",
    )
    async def event_history(
        self, info: Info, aggregate_id: strawberry.ID, first: int = 100, after: str | None = None
    ) -> EventHistoryConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        aggregate = _uuid(aggregate_id, "aggregateId")
        after_version = _version_cursor(after)
        audit = info.context.runtime.audit

        def run() -> list[HistoryEvent]:
            return audit.history(aggregate, after_version=after_version, first=first + 1)

        events = await info.context.runtime.run_sync(run)
        has_next = len(events) > first
        events = events[:first]
        if not events and after is None:
            raise NotFound(f"aggregate {aggregate} has no events")
        return EventHistoryConnection(
            nodes=[AuditEvent.from_event(e) for e in events],
            page_info=PageInfo(
                has_next_page=has_next,
                end_cursor=(
                    position_cursor("eventHistory", events[-1].version) if events else None
                ),
            ),
        )

    @strawberry.field(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description=(
            "Journal entries caused by a business fact: the exact cause id, or any cause "
            'id with ":<cause>" as one of its segments (so a booking id finds its checkout '
            "entry, a grant id its tranches)."
        ),
    )
    async def ledger_entries_by_cause(
        self, info: Info, cause: str, first: int = 50, after: str | None = None
    ) -> JournalConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        if not cause or len(cause) > MAX_CAUSE_LENGTH:
            raise ValidationError("cause", f"must be 1 to {MAX_CAUSE_LENGTH} characters")
        after_position = 0 if after is None else position_after("ledgerEntriesByCause", after)
        async with info.context.runtime.read_engine.connect() as conn:
            found = await queries.entry_ids_by_cause(
                conn, cause, first + 1, after_position=after_position
            )
            page = found[:first]
            by_id = await ledger_queries.entries_by_ids(conn, [entry_id for entry_id, _ in page])
        return JournalConnection(
            nodes=[JournalEntry.from_row(by_id[i]) for i, _ in page if i in by_id],
            page_info=PageInfo(
                has_next_page=len(found) > first,
                end_cursor=(position_cursor("ledgerEntriesByCause", page[-1][1]) if page else None),
            ),
        )

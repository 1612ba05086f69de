"""Async reads over the audit read models and the ledger's cause links (GraphQL)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.audit.projections.tables import audit_chain, audit_published_heads
from services.audit.store import ChainHead, PublishedHeadRow
from services.ledger.projections.tables import ledger_entries


async def current_head(conn: AsyncConnection) -> ChainHead | None:
    row = (
        await conn.execute(
            select(audit_chain.c.position, audit_chain.c.hash)
            .order_by(audit_chain.c.position.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else ChainHead(int(row[0]), bytes(row[1]))


async def list_published_heads(
    conn: AsyncConnection, limit: int, *, before_position: int | None = None
) -> list[PublishedHeadRow]:
    """Published heads newest first, those below `before_position` (a page's cursor:
    one head per position, the table's key)."""
    h = audit_published_heads.c
    query = select(h.position, h.hash, h.published_at, h.actor, h.chain_format)
    if before_position is not None:
        query = query.where(h.position < before_position)
    rows = await conn.execute(query.order_by(h.position.desc()).limit(limit))
    return [PublishedHeadRow(int(p), str(d), at, str(a), int(f)) for p, d, at, a, f in rows]


async def published_head(conn: AsyncConnection, head_id: UUID) -> PublishedHeadRow | None:
    h = audit_published_heads.c
    row = (
        await conn.execute(
            select(h.position, h.hash, h.published_at, h.actor, h.chain_format).where(
                h.head_id == head_id
            )
        )
    ).first()
    if row is None:
        return None
    return PublishedHeadRow(int(row[0]), str(row[1]), row[2], str(row[3]), int(row[4]))


async def entry_ids_by_cause(
    conn: AsyncConnection, cause: str, limit: int, *, after_position: int = 0
) -> list[tuple[UUID, int]]:
    """Entries caused by `cause`: its exact cause id, or a cause id with ":<cause>" as
    one of its segments after the first.

    So a business object's id finds its entries wherever its id stands: a booking id
    "hotel:checkout:<booking id>", a grant id "funding:grant:<grant id>:tranche:1:
    received", a disbursement id "welfare:payment:<disbursement id>:1"; and an entry
    id finds its reversal ("reversal-of:<entry id>"). The reversals of the entries
    found come with them. The segment match scans the entries table (no index serves
    it); `limit` bounds it. Each id comes with its entry's log position, the order and
    a page's cursor (entries after `after_position`).
    """
    e = ledger_entries.c
    escaped = cause.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    segment = f":{cause}"
    # LIKE ignores case on SQLite (not on PostgreSQL): it only narrows; the match
    # itself is by `=` and replace(), case-sensitive on both stores.
    caused = select(e.entry_id).where(
        or_(
            e.cause_id == cause,
            and_(
                e.cause_id.like(f"%:{escaped}", escape="\\"),
                func.substr(e.cause_id, func.length(e.cause_id) - len(segment) + 1) == segment,
            ),
            and_(
                e.cause_id.like(f"%:{escaped}:%", escape="\\"),
                func.replace(e.cause_id, f"{segment}:", "") != e.cause_id,
            ),
        )
    )
    # And their reversals (a hotel void's cause names the charge's entry, not the
    # booking): without them a settled booking's receivable did not net to zero.
    rows = await conn.execute(
        select(e.entry_id, e.position)
        .where(
            or_(e.entry_id.in_(caused), e.reverses_entry_id.in_(caused)),
            e.position > after_position,
        )
        .order_by(e.position)
        .limit(limit)
    )
    return [(r[0], int(r[1])) for r in rows]

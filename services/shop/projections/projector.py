"""Fills the shop read models from session, sale and intake events.

A page is folded into row lists and written with one insert per table
(services/common/bulk.py); session closes are updates, applied after the page's inserts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Table, update

from services.common.bulk import insert_mappings
from services.common.projections import DomainEvent, Projection
from services.shop.domain import CashSession, GoodsIntake, Sale
from services.shop.domain.sale import tendered_cents
from services.shop.projections.tables import (
    SHOP_TABLES,
    shop_cash_movements,
    shop_documents,
    shop_intakes,
    shop_lines,
    shop_payments,
    shop_sessions,
)


class ShopProjection(Projection):
    name: ClassVar[str] = "shop"
    tables: ClassVar[tuple[Table, ...]] = SHOP_TABLES
    topics: ClassVar[frozenset[str]] = frozenset(
        get_topic(cls)
        for cls in (
            CashSession.Opened,
            CashSession.CashMoved,
            CashSession.Closed,
            Sale.Rung,
            Sale.Refunded,
            GoodsIntake.Received,
        )
    )

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {
            "sessions": [],
            "documents": [],
            "lines": [],
            "payments": [],
            "movements": [],
            "intakes": [],
        }
        closes: list[dict[str, Any]] = []
        for position, event in events:
            if isinstance(event, CashSession.Opened):
                rows["sessions"].append(
                    {
                        "session_id": event.originator_id,
                        "till_id": event.till_id,
                        "z_number": event.z_number,
                        "business_date": event.business_date,
                        "opened_at": _utc(event.opened_at),
                        "opened_by": event.opened_by,
                        "opening_float_cents": event.opening_float_cents,
                        "is_open": True,
                    }
                )
            elif isinstance(event, Sale.Rung):
                _document(
                    rows,
                    position,
                    kind="sale",
                    document_id=event.originator_id,
                    sale_id=None,
                    change_cents=event.change_cents,
                    state=event.__dict__,
                    recorded_at=_utc(event.rung_at),
                )
            elif isinstance(event, Sale.Refunded):
                _document(
                    rows,
                    position,
                    kind="refund",
                    document_id=event.refund_id,
                    sale_id=event.originator_id,
                    change_cents=0,
                    state=event.__dict__,
                    recorded_at=_utc(event.refunded_at),
                )
            elif isinstance(event, CashSession.CashMoved):
                rows["movements"].append(
                    {
                        "movement_id": event.movement_id,
                        "session_id": event.originator_id,
                        "till_id": event.till_id,
                        "business_date": event.business_date,
                        "direction": event.direction,
                        "amount_cents": event.amount_cents,
                        "reason": event.reason,
                        "note": event.note,
                        "recorded_at": _utc(event.moved_at),
                        "actor": event.actor,
                    }
                )
            elif isinstance(event, CashSession.Closed):
                closes.append(
                    {
                        "session_id": event.originator_id,
                        "closed_at": _utc(event.closed_at),
                        "closed_by": event.closed_by,
                        "expected_cash_cents": event.expected_cash_cents,
                        "counted_cash_cents": event.counted_cash_cents,
                        "difference_cents": event.difference_cents,
                        "tolerance_cents": event.tolerance_cents,
                        "within_tolerance": event.within_tolerance,
                        "terminal_card_cents": event.terminal_card_cents,
                        "denominations_json": None
                        if event.denominations is None
                        else json.dumps(event.denominations),
                        "card_difference_cents": event.card_difference_cents,
                        "closed_position": position,
                    }
                )
            elif isinstance(event, GoodsIntake.Received):
                rows["intakes"].append(
                    {
                        "intake_id": event.originator_id,
                        "received_on": event.received_on,
                        "category": event.category,
                        "bags": event.bags,
                        "items": event.items,
                        "recorded_at": _utc(event.recorded_at),
                        "actor": event.actor,
                    }
                )
        for key, table in (
            ("sessions", shop_sessions),
            ("documents", shop_documents),
            ("lines", shop_lines),
            ("payments", shop_payments),
            ("movements", shop_cash_movements),
            ("intakes", shop_intakes),
        ):
            insert_mappings(conn, table, rows[key])
        for close in closes:
            session_id = close.pop("session_id")
            conn.execute(
                update(shop_sessions)
                .where(shop_sessions.c.session_id == session_id)
                .values(is_open=False, **close)
            )


def _utc(instant: datetime) -> datetime:
    """The instant in UTC: SQLite's DateTime drops the offset without converting and the
    read side takes what it stores as UTC, so a session opened at 09:00+02:00 (as the
    demo and a till's clock give it) answered openedAt 09:00Z. PostgreSQL's timestamptz
    gets the same."""
    return instant.astimezone(UTC) if instant.tzinfo is not None else instant


def _document(
    rows: dict[str, list[dict[str, Any]]],
    position: int,
    *,
    kind: str,
    document_id: Any,
    sale_id: Any,
    change_cents: int,
    state: dict[str, Any],
    recorded_at: Any,
) -> None:
    common = {
        "document_id": document_id,
        "kind": kind,
        "session_id": state["session_id"],
        "till_id": state["till_id"],
        "business_date": state["business_date"],
    }
    rows["documents"].append(
        {
            **common,
            "position": position,
            "z_number": state["z_number"],
            "receipt_number": state["receipt_number"],
            "recorded_at": recorded_at,
            "actor": state["actor"],
            "total_cents": state["total_cents"],
            "vat_cents": state["vat_cents"],
            "change_cents": change_cents,
            "sale_id": sale_id,
        }
    )
    for line in state["lines"]:
        rows["lines"].append(
            {
                **common,
                "line_no": int(line["line_no"]),
                "actor": state["actor"],
                "category": line["category"],
                "description": line["description"],
                "quantity": int(line["quantity"]),
                "unit_price_cents": int(line["unit_price_cents"]),
                "gross_cents": int(line["gross_cents"]),
                "net_cents": int(line["net_cents"]),
                "vat_cents": int(line["vat_cents"]),
                "vat_rate_bp": int(line["vat_rate_bp"]),
            }
        )
    for number, payment in enumerate(state["payments"], start=1):
        rows["payments"].append(
            {
                **common,
                "payment_no": number,
                "method": payment["method"],
                "tendered_cents": tendered_cents(payment),
                "amount_cents": int(payment["amount_cents"]),
            }
        )

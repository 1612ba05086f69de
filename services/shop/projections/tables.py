"""Shop read models. Rebuildable from the event log at any time.

Lines and payments carry their document's session, till, day and volunteer, so the
reports (X/Z, totals, daily close) are single grouped queries without joins.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from services.common.database import metadata

shop_sessions = Table(
    "shop_sessions",
    metadata,
    Column("session_id", Uuid, primary_key=True),
    Column("till_id", String(50), nullable=False),
    Column("z_number", Integer, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("opening_float_cents", BigInteger, nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(200), nullable=True),
    Column("expected_cash_cents", BigInteger, nullable=True),
    Column("counted_cash_cents", BigInteger, nullable=True),
    Column("difference_cents", BigInteger, nullable=True),
    Column("tolerance_cents", BigInteger, nullable=True),
    Column("within_tolerance", Boolean, nullable=True),
    Column("terminal_card_cents", BigInteger, nullable=True),
    # The Z close's count by denomination, JSON {value in cents: how many}; null when
    # counted by total alone.
    Column("denominations_json", Text, nullable=True),
    # The card terminal's total minus the till's, when given at the close.
    Column("card_difference_cents", BigInteger, nullable=True),
    # The close's position in the log: Z reports are listed in the order closed.
    Column("closed_position", BigInteger, nullable=True),
    UniqueConstraint("till_id", "z_number", name="uq_shop_sessions_till_z"),
    Index("ix_shop_sessions_closed_position", "closed_position"),
)

# Sales and refunds: one row per document. (till, day, receipt number) is unique:
# the read model would refuse a duplicate number if the write side ever produced one.
shop_documents = Table(
    "shop_documents",
    metadata,
    Column("document_id", Uuid, primary_key=True),
    Column("kind", String(10), nullable=False),  # "sale" or "refund"
    Column("position", BigInteger, nullable=False),
    Column("session_id", Uuid, nullable=False),
    Column("till_id", String(50), nullable=False),
    Column("z_number", Integer, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("receipt_number", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("change_cents", BigInteger, nullable=False),
    Column("sale_id", Uuid, nullable=True),  # refunds: the sale they reference
    UniqueConstraint("till_id", "business_date", "receipt_number", name="uq_shop_receipts"),
    Index("ix_shop_documents_day_position", "business_date", "position"),
    Index("ix_shop_documents_session", "session_id"),
    Index("ix_shop_documents_sale", "sale_id"),
)

shop_lines = Table(
    "shop_lines",
    metadata,
    Column("document_id", Uuid, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("session_id", Uuid, nullable=False),
    Column("till_id", String(50), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("category", String(30), nullable=False),
    Column("description", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("gross_cents", BigInteger, nullable=False),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("vat_rate_bp", Integer, nullable=False),
    Index("ix_shop_lines_session", "session_id"),
    Index("ix_shop_lines_day", "business_date"),
)

shop_payments = Table(
    "shop_payments",
    metadata,
    Column("document_id", Uuid, primary_key=True),
    Column("payment_no", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("session_id", Uuid, nullable=False),
    Column("till_id", String(50), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("method", String(10), nullable=False),
    Column("tendered_cents", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),  # kept (sale) or paid out (refund)
    Index("ix_shop_payments_session", "session_id"),
    Index("ix_shop_payments_day", "business_date"),
)

shop_cash_movements = Table(
    "shop_cash_movements",
    metadata,
    Column("movement_id", Uuid, primary_key=True),
    Column("session_id", Uuid, nullable=False),
    Column("till_id", String(50), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("direction", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", String(30), nullable=False),
    Column("note", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_shop_cash_movements_session", "session_id"),
)

shop_intakes = Table(
    "shop_intakes",
    metadata,
    Column("intake_id", Uuid, primary_key=True),
    Column("received_on", Date, nullable=False),
    Column("category", String(30), nullable=False),
    Column("bags", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_shop_intakes_day", "received_on"),
)

SHOP_TABLES = (
    shop_sessions,
    shop_documents,
    shop_lines,
    shop_payments,
    shop_cash_movements,
    shop_intakes,
)

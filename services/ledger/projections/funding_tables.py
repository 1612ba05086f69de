"""Funding read models: grants, donations, contracts, presence, invoices.

Rebuildable from the event log at any time; nothing is stored only here.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Uuid,
)

from services.common.database import metadata

funding_grants = Table(
    "funding_grants",
    metadata,
    Column("grant_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("funder", String(200), nullable=False),
    Column("purpose", String(500), nullable=False),
    Column("restricted", Boolean, nullable=False),
    Column("public_funder", Boolean, nullable=False),
    Column("awarded_on", Date, nullable=False),
    Column("original_cents", BigInteger, nullable=False),
    Column("reduced_on", Date, nullable=True),
    Column("closed_on", Date, nullable=True),
)

funding_tranches = Table(
    "funding_tranches",
    metadata,
    Column("grant_id", Uuid, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("condition", String(500), nullable=False),
    Column("expected_on", Date, nullable=True),
    Column("received_on", Date, nullable=True),
    Column("condition_met_on", Date, nullable=True),
    Column("cancelled_on", Date, nullable=True),
    # Receipts recorded, reversed ones included (the last one's number).
    Column("receipts", Integer, nullable=False),
    Index("ix_funding_tranches_received_on", "received_on"),
)

# Every receipt of a tranche, reversed or not (reverseGrantTrancheReceipt): the
# tranche's received_on is its current receipt's, NULL once that is reversed.
funding_tranche_receipts = Table(
    "funding_tranche_receipts",
    metadata,
    Column("grant_id", Uuid, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("receipt", Integer, primary_key=True),
    Column("received_on", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reversed_on", Date, nullable=True),
    Column("reversal_entry_id", Uuid, nullable=True),
    # Free text: shown to admins only (see graphql/funding_types.py).
    Column("reversal_reason", String(500), nullable=True),
)

funding_donations = Table(
    "funding_donations",
    metadata,
    Column("donation_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("received_on", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("restricted", Boolean, nullable=False),
    Column("method", String(10), nullable=False),
    # Personal data: shown to admins only (see graphql/funding_types.py).
    Column("donor", String(200), nullable=True),
    Column("purpose", String(500), nullable=True),
    # Set by reverseDonation (at most once); the reason is admin-only, like the donor.
    Column("reversed_on", Date, nullable=True),
    Column("reversal_entry_id", Uuid, nullable=True),
    Column("reversal_reason", String(500), nullable=True),
    Index("ix_funding_donations_received_on", "received_on", "position"),
    # The report's totals take reversals off in the period they are dated in.
    Index("ix_funding_donations_reversed_on", "reversed_on"),
)

funding_non_cash = Table(
    "funding_non_cash",
    metadata,
    Column("contribution_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("contributed_on", Date, nullable=False),
    Column("description", String(500), nullable=False),
    Column("fair_value_cents", BigInteger, nullable=False),
    Column("minutes", Integer, nullable=True),
    Column("restricted", Boolean, nullable=False),
    Column("donor", String(200), nullable=True),
    Column("reversed_on", Date, nullable=True),
    Column("reversal_reason", String(500), nullable=True),
    Index("ix_funding_non_cash_on", "contributed_on"),
    Index("ix_funding_non_cash_reversed_on", "reversed_on"),
)

funding_contracts = Table(
    "funding_contracts",
    metadata,
    Column("contract_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("authority", String(80), nullable=False),
    Column("cig", String(10), nullable=False, unique=True),
    Column("daily_rate_cents", BigInteger, nullable=False),
    Column("vat_rate_bp", Integer, nullable=False),
    Column("vat_nature", String(5), nullable=True),
    Column("split_payment", Boolean, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=True),
    Column("pass_through_items", JSON, nullable=False),
)

# The latest record of each contract-day (earlier revisions are in the event log).
funding_presence = Table(
    "funding_presence",
    metadata,
    Column("contract_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("persons_present", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
)

funding_invoices = Table(
    "funding_invoices",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("contract_id", Uuid, nullable=False),
    Column("month", String(7), nullable=False),
    Column("number", String(20), nullable=False, unique=True),
    Column("issued_on", Date, nullable=False),
    Column("presence_days", BigInteger, nullable=False),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("pass_through_cents", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("payable_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    # The Issued event's data, from which the FatturaPA document is rendered.
    Column("document", JSON, nullable=False),
    Index("ix_funding_invoices_contract_month", "contract_id", "month", unique=True),
)

# Every payment of an invoice, reversed or not (reverseContractPayment); the invoice's
# paid_cents is the sum of those not reversed.
funding_invoice_payments = Table(
    "funding_invoice_payments",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("paid_on", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reversed_on", Date, nullable=True),
    Column("reversal_entry_id", Uuid, nullable=True),
    # Free text: shown to admins only (see graphql/funding_types.py).
    Column("reversal_reason", String(500), nullable=True),
)

FUNDING_TABLES = (
    funding_grants,
    funding_tranches,
    funding_tranche_receipts,
    funding_donations,
    funding_non_cash,
    funding_contracts,
    funding_presence,
    funding_invoices,
    funding_invoice_payments,
)

"""Welfare fund read models. Rebuildable from the event log at any time.

Nothing here names a person: beneficiaries are pseudonymous ids, and a case note is
kept only sealed (and dropped when the beneficiary is forgotten).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)

from services.common.database import metadata

welfare_policies = Table(
    "welfare_policies",
    metadata,
    Column("effective_from", Date, primary_key=True),
    Column("policy_json", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
)

# Versions withdrawn before they governed anything, moved here from welfare_policies
# so that a day can hold a withdrawn version and the one set after it, and listed
# with them. A table of its own because read-model tables are never altered (no
# migrations: a new column would break existing databases); a new table is created
# on start. Keyed by the withdrawal's position, which also orders a day's versions.
welfare_policy_withdrawals = Table(
    "welfare_policy_withdrawals",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("policy_json", Text, nullable=False),
    Column("withdrawn_on", Date, nullable=False),
)

# One row per (scope, key, day) with activity: the day's movements and cumulative
# totals. scope "stream" (key = stream) carries base and accrued; scope "program"
# (key = program) carries accrued, committed (outstanding) and disbursed. A balance
# as of D is the latest row on or before D per key: one index lookup per key,
# however long the history. Back-dated facts rewrite the days after them.
welfare_daily = Table(
    "welfare_daily",
    metadata,
    Column("scope", String(10), primary_key=True),
    Column("key", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("base_cents", BigInteger, nullable=False),
    Column("accrued_cents", BigInteger, nullable=False),
    Column("committed_cents", BigInteger, nullable=False),
    Column("disbursed_cents", BigInteger, nullable=False),
    Column("base_total_cents", BigInteger, nullable=False),
    Column("accrued_total_cents", BigInteger, nullable=False),
    Column("committed_total_cents", BigInteger, nullable=False),
    Column("disbursed_total_cents", BigInteger, nullable=False),
)

# Each positive program share of an accrual, with its place in the program's FIFO
# queue of funding: [queue_start_cents, queue_end_cents), the queue in order of
# (effective date, log position), so that income never funds a commitment dated
# before it arrived (see docs/welfare_fund.md). The columns were fifo_*_cents when the
# queue followed the log alone: renamed so that a store projected that way is rebuilt
# on start (a changed table is; the same columns in another order would not be).
welfare_accrual_items = Table(
    "welfare_accrual_items",
    metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("stream", String(40), primary_key=True),
    Column("program", String(40), primary_key=True),
    Column("source_position", BigInteger, nullable=False),
    Column("effective_date", Date, nullable=False),
    Column("base_cents", BigInteger, nullable=False),
    Column("accrued_cents", BigInteger, nullable=False),
    Column("share_cents", BigInteger, nullable=False),
    Column("queue_start_cents", BigInteger, nullable=False),
    Column("queue_end_cents", BigInteger, nullable=False),
    Index("ix_welfare_accrual_items_queue", "program", "queue_end_cents"),
)

welfare_disbursements = Table(
    "welfare_disbursements",
    metadata,
    Column("disbursement_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("beneficiary_id", Uuid, nullable=False),
    Column("program", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("month", String(7), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("released_cents", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("committed_on", Date, nullable=False),
    Column("approved_on", Date, nullable=True),
    # The latest day among the payments still standing (a reversed payment is not
    # one). Named anew when reversals stopped counting, so that a store projected
    # by an older release is rebuilt and welfare_disbursement_payments filled.
    Column("latest_standing_payment_on", Date, nullable=True),
    Column("cancelled_on", Date, nullable=True),
    Index("ix_welfare_disbursements_program_position", "program", "position"),
    Index("ix_welfare_disbursements_beneficiary", "beneficiary_id"),
)

# A disbursement's payments by number (1, 2, ... as the aggregate counts them), so
# that reversing one can find the latest day among those left.
welfare_disbursement_payments = Table(
    "welfare_disbursement_payments",
    metadata,
    Column("disbursement_id", Uuid, primary_key=True),
    Column("payment", Integer, primary_key=True),
    Column("paid_on", Date, nullable=False),
    Column("reversed", Boolean, nullable=False),
)

welfare_beneficiaries = Table(
    "welfare_beneficiaries",
    metadata,
    Column("beneficiary_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("program", String(40), nullable=False),
    Column("enrolled_on", Date, nullable=False),
    Column("forgotten", Boolean, nullable=False),
    Column("case_note_sealed", Text, nullable=True),
)

welfare_attendance = Table(
    "welfare_attendance",
    metadata,
    Column("beneficiary_id", Uuid, primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("scheduled_days", Integer, nullable=False),
    Column("attended_days", Integer, nullable=False),
    Column("meals_provided", Boolean, nullable=False),
    Column("part_time", Boolean, nullable=False),
    Column("stipend_cents", BigInteger, nullable=False),
)

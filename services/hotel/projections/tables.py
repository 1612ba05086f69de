"""Hotel read models. Rebuildable from the event log at any time.

Guests' identities are here only sealed (as in the Booked event), opened with the
booking's key when the front desk or the police report reads them, and dropped when
they are erased. The facts kept in clear (age on arrival, residence) serve the tourist
tax and ISTAT. None of it goes to the ledger's tables.
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
    Uuid,
)

from services.common.database import metadata

hotel_bookings = Table(
    "hotel_bookings",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False),  # of the Booked event: a stable order
    Column("room_number", String(10), nullable=False),
    Column("arrival", Date, nullable=False),
    Column("departure", Date, nullable=False),
    # The end of the nights charged: the departure, or an early check-out's day.
    Column("stay_end", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("party_type", String(10), nullable=False),
    Column("guest_count", Integer, nullable=False),
    Column("nightly_rate_cents", BigInteger, nullable=False),
    Column("deposit_cents", BigInteger, nullable=False),
    # Folio totals, kept by deltas: total = stay + extras; paid = money in - money back.
    Column("stay_cents", BigInteger, nullable=False),
    Column("extras_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("tourist_tax_cents", BigInteger, nullable=False),
    Column("booked_on", Date, nullable=False),
    Column("checked_in_on", Date, nullable=True),
    Column("checked_in_at", DateTime(timezone=True), nullable=True),
    Column("checked_out_on", Date, nullable=True),
    Column("closed_on", Date, nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=True),
    # JSON list of the guests' identities, sealed under the booking's key; NULL once
    # erased. `_legacy`: bookings recorded before sealing (Booked v1), in clear.
    Column("guest_identities_sealed", Text, nullable=True),
    Column("guest_identities_legacy", Text, nullable=True),
    Column("guest_data_erased", Boolean, nullable=False),
    Index("ix_hotel_bookings_arrival", "arrival"),
    Index("ix_hotel_bookings_status_arrival", "status", "arrival"),
    Index("ix_hotel_bookings_checked_in_on", "checked_in_on"),
)

# section 0: the stay (room nights, tourist tax, or a cancellation's closing line),
# replaced as a whole when the stay is repriced; section 1: extra charges and their
# voids, seq being the charge's number.
STAY, EXTRA = 0, 1
hotel_folio_lines = Table(
    "hotel_folio_lines",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("section", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("description", String(300), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("vat_rate_bp", Integer, nullable=True),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
)

hotel_payments = Table(
    "hotel_payments",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("method", String(10), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("on_date", Date, nullable=False),
)

hotel_guests = Table(
    "hotel_guests",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("position", Integer, primary_key=True),  # 0 = the leader
    Column("age_on_arrival", Integer, nullable=False),
    Column("residence_country_code", String(9), nullable=False),
    Column("residence_municipality_code", String(9), nullable=True),
    Column("residence_province", String(2), nullable=True),
    Column("residence", String(12), nullable=False),  # ISTAT key: country, or IT-<province>
    Column("has_exemption_reason", Boolean, nullable=False),
)

# One row per room and night held by a booking (released nights are deleted).
hotel_room_nights = Table(
    "hotel_room_nights",
    metadata,
    Column("room_number", String(10), primary_key=True),
    Column("night", Date, primary_key=True),
    Column("booking_id", Uuid, nullable=False),
    Column("guest_count", Integer, nullable=False),
    Index("ix_hotel_room_nights_night", "night"),
)

# The tourist tax of each checked-out stay, dated on the check-out (when it is collected).
hotel_tourist_tax = Table(
    "hotel_tourist_tax",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("collected_on", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("taxed_guest_nights", Integer, nullable=False),
    Column("exempt_age", Integer, nullable=False),
    Column("exempt_resident", Integer, nullable=False),
    Column("exempt_other", Integer, nullable=False),
    Column("exempt_cap", Integer, nullable=False),
    Index("ix_hotel_tourist_tax_collected_on", "collected_on"),
)

HOTEL_TABLES = (
    hotel_bookings,
    hotel_folio_lines,
    hotel_payments,
    hotel_guests,
    hotel_room_nights,
    hotel_tourist_tax,
)

"""Per-booking keys for the guests' identities (crypto-shredding, see
services/common/sealing.py and docs/hotel.md). Not a read model: never rebuilt."""

from __future__ import annotations

from services.common.sealing import key_table

hotel_guest_keys = key_table("hotel_guest_keys", "booking_id")

KEY_TABLES = (hotel_guest_keys,)

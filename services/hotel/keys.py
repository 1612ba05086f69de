"""Per-booking keys for the guests' identities (crypto-shredding, see
services/common/sealing.py and docs/hotel.md). Not a read model: never rebuilt."""

from __future__ import annotations

from typing import ClassVar

from eventsourcing.utils import get_topic

from services.common.sealing import KeyShredder, key_table
from services.hotel.domain.booking import Booking

hotel_guest_keys = key_table("hotel_guest_keys", "booking_id")

KEY_TABLES = (hotel_guest_keys,)


class ErasedGuestKeyShredder(KeyShredder):
    """Deletes the guests' key of every booking erased (see KeyShredder):
    `eraseGuestData` deletes it itself, after saving the GuestDataErased event.
    (`coop hotel erase-guests` also sweeps keys created again after an erasure.)"""

    name: ClassVar[str] = "hotel_key_shredder"
    topics: ClassVar[frozenset[str]] = frozenset({get_topic(Booking.GuestDataErased)})

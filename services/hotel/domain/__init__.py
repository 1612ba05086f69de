"""Hotel domain: pure Python, no I/O."""

from services.hotel.domain.booking import (
    Booking,
    BookingStatus,
    PartyType,
    RoomNight,
    booking_id_for_key,
    room_night_id,
)
from services.hotel.domain.config import (
    CONFIG_ID,
    DEFAULT_POLICIES,
    DEFAULT_ROOMS,
    HotelConfiguration,
    HotelPolicy,
    HotelPolicyChange,
    Room,
)
from services.hotel.domain.errors import (
    BalanceDue,
    BookingNotFound,
    IllegalTransition,
    RoomUnavailable,
)
from services.hotel.domain.folio import FolioLine, Payment, TouristTax
from services.hotel.domain.guests import Guest, GuestFacts, make_guest

__all__ = [
    "CONFIG_ID",
    "DEFAULT_POLICIES",
    "DEFAULT_ROOMS",
    "BalanceDue",
    "Booking",
    "BookingNotFound",
    "BookingStatus",
    "FolioLine",
    "Guest",
    "GuestFacts",
    "HotelConfiguration",
    "HotelPolicy",
    "HotelPolicyChange",
    "IllegalTransition",
    "PartyType",
    "Payment",
    "Room",
    "RoomNight",
    "RoomUnavailable",
    "TouristTax",
    "booking_id_for_key",
    "make_guest",
    "room_night_id",
]

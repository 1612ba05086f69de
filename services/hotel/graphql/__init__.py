"""The hotel's part of the GraphQL schema."""

from services.hotel.graphql.mutations import HotelMutation
from services.hotel.graphql.queries import HotelQuery

__all__ = ["HotelMutation", "HotelQuery"]

"""Donated goods received: bags and items by category and day. No money moves.

No free-text note: who donated is personal data and has no place in the log.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.common.errors import ValidationError
from services.shop.domain.config import ShopPolicy

MAX_ITEMS = 100_000
MAX_BAGS = 10_000


class GoodsIntake(Aggregate):
    class Received(Aggregate.Created):
        received_on: date
        category: str
        bags: int
        items: int
        recorded_at: datetime
        actor: str

    def __init__(
        self,
        received_on: date,
        category: str,
        bags: int,
        items: int,
        recorded_at: datetime,
        actor: str,
    ) -> None:
        self.received_on = received_on
        self.category = category
        self.bags = bags
        self.items = items
        self.recorded_at = recorded_at
        self.actor = actor

    @classmethod
    def receive(
        cls,
        *,
        intake_id: UUID,
        today: date,
        policy: ShopPolicy,
        received_on: date,
        category: str,
        bags: int,
        items: int,
        recorded_at: datetime,
        actor: str,
    ) -> GoodsIntake:
        if received_on > today:
            raise ValidationError("receivedOn", "must not be in the future")
        code = policy.category(category, field="category").code
        if not 0 <= bags <= MAX_BAGS:
            raise ValidationError("bags", f"must be between 0 and {MAX_BAGS}")
        if not 1 <= items <= MAX_ITEMS:
            raise ValidationError("items", f"must be between 1 and {MAX_ITEMS}")
        return cls._create(
            cls.Received,
            id=intake_id,
            received_on=received_on,
            category=code,
            bags=bags,
            items=items,
            recorded_at=recorded_at,
            actor=actor,
        )

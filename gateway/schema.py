"""One schema composed from every context's GraphQL package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.errors import MaskUnexpectedErrors
from services.common.graphql import MONEY_SCALAR, Money
from services.hotel.graphql import HotelMutation, HotelQuery
from services.ledger.graphql import LedgerMutation, LedgerQuery

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")


@strawberry.type
class Query(LedgerQuery, HotelQuery):
    pass


@strawberry.type
class Mutation(LedgerMutation, HotelMutation):
    pass


class CoopSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # MaskUnexpectedErrors already logged what matters, without request data;
        # the default would log every message, including bad inputs' echoes.
        return None


def build_schema(**kwargs: Any) -> strawberry.Schema:
    return CoopSchema(
        query=Query,
        mutation=Mutation,
        extensions=[MaskUnexpectedErrors],
        config=StrawberryConfig(scalar_map={Money: MONEY_SCALAR}),
        **kwargs,
    )


schema = build_schema()


def printed_schema() -> str:
    return schema.as_str() + "\n"

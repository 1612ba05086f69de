"""One schema composed from every context's GraphQL package."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.document_cache import DocumentCache
from gateway.errors import MaskUnexpectedErrors
from gateway.settled_fields import settle_sibling_fields
from gateway.unstorable_text import NoUnstorableText
from services.audit.graphql import AuditMutation, AuditQuery
from services.common.graphql import MONEY_SCALAR, Money
from services.common.settings import Settings
from services.hotel.graphql import HotelMutation, HotelQuery
from services.ledger.graphql import (
    FundingMutation,
    FundingQuery,
    LedgerMutation,
    LedgerQuery,
    LedgerSubscription,
)
from services.shop.graphql import ShopMutation, ShopQuery, ShopSubscription
from services.welfare_fund.domain import Program
from services.welfare_fund.graphql import (
    PROGRAM_SCALAR,
    WelfareFundMutation,
    WelfareFundQuery,
    WelfareFundSubscription,
)

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")


@strawberry.type
class Query(LedgerQuery, FundingQuery, ShopQuery, HotelQuery, WelfareFundQuery, AuditQuery):
    pass


@strawberry.type
class Mutation(
    LedgerMutation,
    FundingMutation,
    ShopMutation,
    HotelMutation,
    WelfareFundMutation,
    AuditMutation,
):
    pass


@strawberry.type
class Subscription(LedgerSubscription, ShopSubscription, WelfareFundSubscription):
    pass


class CoopSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # MaskUnexpectedErrors already logged what matters, without request data;
        # the default would log every message, including bad inputs' echoes.
        return None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """One result, over HTTP: never a subscription. strawberry allows them on POST
        (for a multipart transport not served here) and ran one as a query, outside
        its permission check, answering null or an internal error. Refused instead,
        as a mutation over GET is: subscriptions live on the WebSocket (`stream`)."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the limits of `settings` (none when only printing it)."""
    settle_sibling_fields()
    # Factories, so each request gets fresh extension instances.
    extensions: list[Callable[[], SchemaExtension]] = [MaskUnexpectedErrors]
    if settings is not None:
        hide = settings.is_production
        extensions = [lambda: MaskUnexpectedErrors(hide_suggestions=hide)]
        # strawberry's limiter extensions, built once for their rule classes; the
        # document cache's extension applies them (gateway/document_cache.py).
        rules: list[type[ASTValidationRule]] = [
            NoUnstorableText,
            *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        ]
        if settings.is_production:
            rules += DisableIntrospection().validation_rules
        cache = DocumentCache(settings.max_cached_documents)
        extensions.append(cache.extension(rules, max_tokens=settings.max_query_tokens))
    return CoopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Money: MONEY_SCALAR, Program: PROGRAM_SCALAR}),
    )


def printed_schema() -> str:
    return build_schema().as_str() + "\n"

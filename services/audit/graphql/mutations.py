"""Audit mutations: publish the chain's head."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gateway.context import Info, run_command
from gateway.permissions import allow
from services.audit.domain import PublishedHead
from services.audit.graphql.types import PublishedAuditHead
from services.audit.projections import queries
from services.common.auth import Role
from services.common.errors import NotFound
from services.common.graphql import (
    ERROR_TYPES,
    ConflictResult,
    IdempotencyKeyReusedResult,
    NotFoundResult,
    ValidationErrorResult,
)
from services.common.idempotency import Outcome

ERRORS = ERROR_TYPES

PublishAuditHeadResult = Annotated[
    PublishedAuditHead
    | ValidationErrorResult
    | NotFoundResult
    | ConflictResult
    | IdempotencyKeyReusedResult,
    strawberry.union("PublishAuditHeadResult"),
]


@strawberry.input
class PublishAuditHeadInput:
    idempotency_key: str


@strawberry.type
class AuditMutation:
    @strawberry.mutation(
        permission_classes=allow(Role.AUDITOR, Role.ADMIN),
        description=(
            "Publish the chain's current head (position, hash, time). Keep a copy "
            "outside the system: it is what makes a rewritten history detectable."
        ),
    )
    async def publish_audit_head(
        self, info: Info, input: PublishAuditHeadInput
    ) -> PublishAuditHeadResult:
        audit = info.context.runtime.audit
        actor = info.context.actor

        def command() -> Outcome[PublishedHead]:
            return audit.publish_head(key=input.idempotency_key, actor=actor)

        outcome = await run_command(info, command)
        if isinstance(outcome, ERRORS):
            return outcome
        async with info.context.runtime.read_engine.connect() as conn:
            row = await queries.published_head(conn, outcome.result.id)
        if row is None:  # run_command waited for the projections
            raise NotFound(f"published head {outcome.result.id} is not projected yet")
        return PublishedAuditHead.from_row(row)

"""The typed GraphQL context and the mutation pipeline every context's resolvers use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from gateway.runtime import Runtime
from services.common.auth import Principal
from services.common.errors import CoopError
from services.common.graphql import ErrorResult, error_result
from services.common.idempotency import Outcome

T = TypeVar("T")


class CoopContext(BaseContext):
    def __init__(self, runtime: Runtime, principal: Principal | None, request_id: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.principal = principal
        self.request_id = request_id

    @property
    def actor(self) -> str:
        """The audit trail's name for the caller (resolvers run after the permission check)."""
        return self.principal.actor if self.principal else "anonymous"


Info = StrawberryInfo[CoopContext, None]


async def run_command(info: Info, command: Callable[[], Outcome[T]]) -> Outcome[T] | ErrorResult:
    """Run a command in the threadpool, map expected errors, then wait for read models.

    `command` also does the input conversion (money strings to cents and so on), so a
    bad input comes back as a ValidationError member and nothing is stored.
    """
    runtime = info.context.runtime
    try:
        outcome = await runtime.run_sync(command)
    except CoopError as exc:
        return error_result(exc)
    await runtime.wait_for_position(outcome.position)
    return outcome

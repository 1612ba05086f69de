"""The typed GraphQL context and the mutation pipeline every context's resolvers use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from gateway.auth import AuthenticationFailed, principal_for_key, principal_for_token
from gateway.permissions import Unauthenticated
from gateway.runtime import Runtime
from services.common.auth import Principal
from services.common.errors import CoopError
from services.common.graphql import ErrorResult, error_result
from services.common.idempotency import Outcome

T = TypeVar("T")
M = TypeVar("M")
E = TypeVar("E")


class CoopContext(BaseContext):
    """Per request (or per WebSocket connection): the runtime and who is asking.

    Over HTTP the principal comes from the headers before execution. Over WebSocket
    (graphql-transport-ws) it comes from the connection_init payload, which arrives
    after the context is built, and the context lives as long as the connection: so
    the credentials are checked again for every operation and every live update
    (`current_principal`). A key revoked, a user disabled or a token expired stops
    an open socket as it stops HTTP; checked once, they kept working for as long as
    the socket stayed open, mutations included.
    """

    def __init__(
        self,
        runtime: Runtime,
        principal: Principal | None,
        request_id: str,
        *,
        from_connection_params: bool = False,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self._principal = principal
        # WebSocket: read the credentials from connection_init at each use.
        self._from_connection_params = from_connection_params
        self.request_id = request_id

    async def current_principal(self) -> Principal | None:
        """Who is asking, as the credentials say now (read again over WebSocket)."""
        if self._from_connection_params:
            params = self.connection_params if isinstance(self.connection_params, dict) else {}
            # Named like the HTTP headers, and as case-insensitive as they are.
            named = {str(name).lower(): value for name, value in params.items()}
            fresh = await authenticate_credentials(
                self.runtime,
                authorization=str(named.get("authorization") or ""),
                api_key=str(named.get("x-api-key") or named.get("apikey") or "") or None,
            )
            if fresh is None:
                # The check that asked is refused. Operations of the socket already past
                # theirs keep the caller they were checked as: blanked, a mutation in
                # flight was recorded as "anonymous", a volunteer's without a till.
                return None
            self._principal = fresh
        return self._principal

    @property
    def principal(self) -> Principal | None:
        """Resolvers run after the permission check has resolved the principal."""
        return self._principal

    @property
    def actor(self) -> str:
        """The audit trail's name for the caller."""
        return self._principal.actor if self._principal else "anonymous"


async def authenticate_credentials(
    runtime: Runtime, *, authorization: str, api_key: str | None
) -> Principal | None:
    """The principal for a bearer token or an API key, or None.

    Wrong, expired and revoked credentials are all None: the answer never says which.
    """
    try:
        if authorization.lower().startswith("bearer "):
            return await principal_for_token(runtime.lone_reads, authorization[7:].strip())
        if api_key:
            return await principal_for_key(runtime.lone_reads, api_key.strip())
    except AuthenticationFailed:
        return None
    return None


Info = StrawberryInfo[CoopContext, None]


def _no_own_errors(_exc: CoopError) -> None:
    return None


async def run_command(
    info: Info,
    command: Callable[[], Outcome[T]],
    own_errors: Callable[[CoopError], E | None] = _no_own_errors,
) -> Outcome[T] | ErrorResult | E:
    """Run a command in the threadpool, map expected errors, then wait for read models.

    `command` also does the input conversion (money strings to cents and so on), so a
    bad input comes back as a ValidationError member and nothing is stored. A context
    with union members of its own (BalanceDue, WrongTill, InsufficientFunds...) maps
    them in `own_errors`; anything it returns None for gets the shared mapping.
    """
    runtime = info.context.runtime
    principal = info.context.principal
    runtime.rate_limiter.take(principal.actor if principal else "anonymous")
    try:
        outcome = await runtime.run_sync(command)
    except CoopError as exc:
        own = own_errors(exc)
        return own if own is not None else error_result(exc)
    await runtime.wait_for_position(outcome.position)
    return outcome


async def run_mutation(
    info: Info,
    command: Callable[[], Outcome[M]],
    present: Callable[[Outcome[M]], Awaitable[T]],
    own_errors: Callable[[CoopError], E | None] = _no_own_errors,
) -> T | ErrorResult | E:
    """run_command, then `present` the outcome (read from the read models); expected
    errors come back as their union members."""
    outcome = await run_command(info, command, own_errors)
    if not isinstance(outcome, Outcome):
        return outcome
    return await present(outcome)


async def projection_changes(info: Info) -> AsyncIterator[int]:
    """Yield the projections' position now and each time it moves (for subscriptions;
    see `Runtime.position_changes`), as long as the caller's credentials still hold:
    a revoked key, a disabled user or an expired token ends the subscription with
    UNAUTHENTICATED at its next update."""
    async for position in info.context.runtime.position_changes():
        if await info.context.current_principal() is None:
            raise Unauthenticated
        yield position

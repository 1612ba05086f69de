"""The ASGI app: FastAPI with /graphql, /auth/token, /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast, overload

from cross_web import HTTPException
from fastapi import Depends, FastAPI, Form
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from graphql import GraphQLError
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types.unset import UNSET, UnsetType

from gateway.auth import AuthenticationFailed, could_be_a_username
from gateway.context import CoopContext, authenticate_credentials
from gateway.observability import (
    Metrics,
    RequestContextMiddleware,
    record_access,
    request_id_var,
)
from gateway.runtime import Runtime
from gateway.schema import build_schema
from services.common.settings import Settings, get_settings

log = logging.getLogger("coop.gateway")


class SocketOperations(BaseGraphQLTransportWSHandler[CoopContext, None]):
    """Each operation over a WebSocket gets what an HTTP request gets: a request id in
    its log lines, one access-log line and a count in /metrics (method "WS", status
    complete, cancelled or failed; the duration is a subscription's whole life). Over
    the socket they went unlogged and uncounted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The last `next` payload sent per operation id (see `send_message`).
        self._last_payloads: dict[str, object] = {}

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """An unexpected failure while checking the credentials (the store down, a pool
        timed out) escaped the app: the socket died with no code of ours and the log had
        no error id. Masked as HTTP masks it: closed with 1011 (internal error) and an
        error id, which the log line also names."""
        try:
            await super().handle_connection_init(message)
        except Exception:
            error_id = uuid.uuid4().hex
            log.exception("internal error %s in connection_init", error_id)
            await self.websocket.close(code=1011, reason=f"Internal error {error_id}")

    async def send_message(self, message: Message) -> None:
        """A live update whose answer, as the client's selection shapes it, is the one
        it last got is not sent again. The subscriptions compare whole reports, so a
        till asking for { salesCount salesTotal } got the same numbers again at every
        cash movement, and the fund's { accrued } at every commitment."""
        operation_id = message.get("id")
        if isinstance(operation_id, str):
            if message["type"] == "next":
                payload = message.get("payload")
                if self._last_payloads.get(operation_id) == payload:
                    return
                self._last_payloads[operation_id] = payload
            else:  # complete or error: the operation is over
                self._last_payloads.pop(operation_id, None)
        await super().send_message(message)

    async def cleanup_operation(self, operation_id: str) -> None:
        self._last_payloads.pop(operation_id, None)  # the client completed it
        await super().cleanup_operation(operation_id)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """strawberry refuses an operation over the socket's limit with its own error,
        which carries no code (every other refusal has one, and clients switch on it):
        refused here first, in the same words, with TOO_MANY_OPERATIONS."""
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and self.max_subscriptions_per_connection is not None
            and len(self.operations) >= self.max_subscriptions_per_connection
        ):
            error = GraphQLError(
                "Subscription limit reached", extensions={"code": "TOO_MANY_OPERATIONS"}
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[CoopContext, None]) -> None:
        token = request_id_var.set(uuid.uuid4().hex)
        started = time.perf_counter()
        outcome = "complete"
        try:
            await super().run_operation(operation)
        except asyncio.CancelledError:
            outcome = "cancelled"  # the client's complete, or the socket closing
            raise
        except Exception:
            outcome = "failed"
            raise
        finally:
            router = cast(CoopGraphQLRouter, self.view)
            duration_s = time.perf_counter() - started
            record_access(router.metrics, "WS", "/graphql", outcome, duration_s)
            request_id_var.reset(token)


# strawberry's own words for a body that is not JSON; a body that is not UTF-8 gets them too.
MALFORMED_JSON = "Unable to parse request body as JSON"
_REFUSAL_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def refusal(status_code: int, message: str) -> JSONResponse:
    """A request refused before execution, in GraphQL's error shape."""
    code = _REFUSAL_CODES.get(status_code, "BAD_REQUEST")
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status_code
    )


def _wrong_username_or_password() -> JSONResponse:
    """A failed sign-in (OAuth2's invalid_grant), the same whatever was wrong."""
    return JSONResponse(
        {"error": "invalid_grant", "error_description": "wrong username or password"},
        status_code=400,
    )


class CoopGraphQLRouter(GraphQLRouter[CoopContext, None]):
    graphql_transport_ws_handler_class = SocketOperations

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def decode_json(self, data: str | bytes) -> object:
        """The request body as JSON: an object (one operation) or a list (a batch, which
        strawberry refuses next). Bytes are the body; text is a GET query parameter
        (`variables`, `extensions`), left to strawberry's own checks.

        strawberry took any JSON value and called `.get` on it, and let a body that is
        not UTF-8 escape as UnicodeDecodeError: `"hello"`, `42` or a stray 0xFF byte
        got a plain 500 with no request id and a traceback in the log."""
        try:
            decoded = json.loads(data)
        except UnicodeDecodeError as e:  # as malformed as broken JSON, and answered so
            raise HTTPException(400, MALFORMED_JSON) from e
        if isinstance(data, bytes) and not isinstance(decoded, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return decoded

    @overload
    async def run(
        self,
        request: Request,
        context: CoopContext = UNSET,
        root_value: None = UNSET,
    ) -> Response: ...

    @overload
    async def run(
        self,
        request: WebSocket,
        context: CoopContext = UNSET,
        root_value: None = UNSET,
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: CoopContext = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        """strawberry answers the requests it refuses (a batch, a query over GET,
        malformed JSON, no query, an unknown operation name) in plain text; every other
        refusal is GraphQL's JSON with a code, which clients switch on. Here they get
        that shape too: one place, for every refusal strawberry raises."""
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        try:
            return await super().run(request, context, root_value)
        except HTTPException as e:
            return refusal(e.status_code, e.reason)

    async def on_ws_connect(self, context: CoopContext) -> UnsetType | dict[str, object] | None:
        """A socket whose connection_init carries no valid credentials is closed with
        4403 Forbidden (graphql-transport-ws), where it was acknowledged and then had
        every operation refused: a till with a revoked key now learns it at once."""
        if await context.current_principal() is None:
            raise ConnectionRejectionError
        acknowledged: UnsetType = UNSET  # a plain connection_ack
        return acknowledged


class StallClock:
    """How long the read models have been behind without moving, as /readyz sees it.

    The clock starts at the first probe that finds them behind (or finds them moved
    but still behind) and stops when a probe finds them caught up. It once counted
    from when the projected position last moved: after a quiet spell longer than the
    threshold, the first probe landing between a commit and its projection answered
    "stalled" (503) on a healthy system, and a stopped projector was called stalled
    before the threshold had passed since it fell behind.
    """

    def __init__(self) -> None:
        self._position = -1
        self._behind_since_s: float | None = None  # monotonic; None while caught up

    def behind_for_s(self, projected: int, lag: int, now_s: float) -> float:
        """Record one probe's reading; the seconds behind without moving so far."""
        if lag == 0:
            self._behind_since_s = None
        elif self._behind_since_s is None or projected != self._position:
            self._behind_since_s = now_s
        self._position = projected
        return 0.0 if self._behind_since_s is None else now_s - self._behind_since_s


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    freeze_heap_after_start: bool = False,
) -> FastAPI:
    """The gateway. `freeze_heap_after_start`: for a server process (gateway/asgi.py),
    move what start-up built (schema, metadata, applications) out of the garbage
    collector's sight: the collector's full passes scanned all of it, stalling every
    request in flight; measured, fundBalance's p99 went from about 80 to 18 ms with
    the projector in the worker. Not for tests, which build many apps in one process
    and would keep each one's garbage for good."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or Runtime(settings)
        rt.rate_limiter.on_refusal(metrics.rate_limited.inc)
        if settings.run_projector_in_process:
            rt.start_projector()
        app.state.runtime = rt
        if freeze_heap_after_start:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if owned:
                await rt.aclose()

    app = FastAPI(
        title="Cooperative backend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None if settings.is_production else "/openapi.json",
    )

    async def get_context(connection: HTTPConnection) -> CoopContext:
        runtime_: Runtime = connection.app.state.runtime
        if connection.scope["type"] == "websocket":
            # Credentials arrive with connection_init; read again at each use.
            return CoopContext(runtime_, None, "", from_connection_params=True)
        return CoopContext(
            runtime=runtime_,
            principal=await authenticate_credentials(
                runtime_,
                authorization=connection.headers.get("Authorization", ""),
                api_key=connection.headers.get("X-Api-Key"),
            ),
            request_id=request_id_var.get(),
        )

    graphql_router = CoopGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=False,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        max_subscriptions_per_connection=settings.max_operations_per_socket,
        metrics=metrics,
    )
    app.include_router(graphql_router, prefix="/graphql")

    @app.post("/auth/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> JSONResponse:
        """OAuth2 password flow: username and password in, an expiring bearer token out."""
        rt: Runtime = app.state.runtime
        if not could_be_a_username(form.username):
            return _wrong_username_or_password()
        retry_after_s = rt.sign_in_limiter.retry_after_s(form.username.casefold())
        if retry_after_s is not None:
            metrics.sign_ins_throttled.inc()
            return JSONResponse(
                {
                    "error": "slow_down",
                    "error_description": "too many sign-in attempts for this user; retry later",
                },
                status_code=429,
                headers={"Retry-After": str(math.ceil(retry_after_s))},
            )
        try:
            issued = await rt.run_sync(
                lambda: rt.credentials.issue_token(form.username, form.password)
            )
        except AuthenticationFailed:
            return _wrong_username_or_password()
        return JSONResponse(
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "expires_in": settings.token_ttl_s,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/auth/revoke")
    async def revoke(token: Annotated[str, Form()]) -> JSONResponse:
        """Sign out (RFC 7009 token revocation): the bearer token in the form field
        `token` stops working at once. 200 whether or not it was a live token."""
        rt: Runtime = app.state.runtime
        await rt.run_sync(lambda: rt.credentials.revoke_token(token))
        return JSONResponse({}, headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    stall_clock = StallClock()

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: the store answers, and the read models are neither far behind
        nor behind and stuck (a projector failing on one event: every mutation then
        answers PROJECTION_LAG while the lag stays small)."""
        rt: Runtime = app.state.runtime
        try:
            async with rt.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            head = await rt.run_sync(rt.projector.head)
            projected = await rt.projected_position()
        except Exception:
            log.exception("readiness check failed")
            return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)
        lag = max(head - projected, 0)
        behind_s = stall_clock.behind_for_s(projected, lag, time.monotonic())
        status = "ready"
        if lag > settings.readyz_max_lag_events:
            status = "lagging"
        elif lag > 0 and behind_s > settings.readyz_max_stall_s:
            status = "stalled"
        return JSONResponse(
            {"status": status, "head": head, "projectorLag": lag},
            status_code=200 if status == "ready" else 503,
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        rt: Runtime = app.state.runtime
        statuses = await rt.run_sync(rt.projector.status)
        if statuses:
            metrics.events_appended.set(statuses[0].head)
        for status in statuses:
            metrics.projector_lag.labels(status.name).set(status.lag)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    return app

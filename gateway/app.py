"""The ASGI app: FastAPI with /graphql and /healthz."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from strawberry.fastapi import GraphQLRouter

from gateway.auth import AuthenticationFailed, principal_for_key, principal_for_token
from gateway.context import CoopContext
from gateway.runtime import Runtime
from gateway.schema import schema
from services.common.auth import Principal
from services.common.settings import Settings, get_settings

log = logging.getLogger("coop.gateway")

REQUEST_ID_HEADER = "X-Request-Id"


async def authenticate(runtime: Runtime, request: Request) -> Principal | None:
    """The caller's principal, or None (the permission check then answers UNAUTHENTICATED).

    Wrong, expired and revoked credentials are all None: the response never says which.
    """
    authorization = request.headers.get("Authorization", "")
    api_key = request.headers.get("X-Api-Key")
    try:
        async with runtime.read_engine.connect() as conn:
            if authorization.lower().startswith("bearer "):
                return await principal_for_token(conn, authorization[7:].strip())
            if api_key:
                return await principal_for_key(conn, api_key.strip())
    except AuthenticationFailed:
        return None
    return None


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or Runtime(settings)
        if settings.run_projector_in_process:
            rt.start_projector()
        app.state.runtime = rt
        try:
            yield
        finally:
            if owned:
                await rt.aclose()

    app = FastAPI(title="Cooperative backend", lifespan=lifespan, docs_url=None, redoc_url=None)

    async def get_context(request: Request) -> CoopContext:
        runtime: Runtime = request.app.state.runtime
        return CoopContext(
            runtime=runtime,
            principal=await authenticate(runtime, request),
            request_id=request.state.request_id,
        )

    graphql_router: GraphQLRouter[CoopContext, None] = GraphQLRouter(
        schema,
        context_getter=get_context,
        graphql_ide="graphiql" if not settings.is_production else None,
        allow_queries_via_get=False,
    )
    app.include_router(graphql_router, prefix="/graphql")

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = request.state.request_id
        return response

    @app.post("/auth/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> JSONResponse:
        """OAuth2 password flow: username and password in, an expiring bearer token out."""
        runtime: Runtime = app.state.runtime
        try:
            issued = await runtime.run_sync(
                lambda: runtime.credentials.issue_token(form.username, form.password)
            )
        except AuthenticationFailed:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "wrong username or password"},
                status_code=400,
            )
        return JSONResponse(
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "expires_in": runtime.settings.token_ttl_s,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app

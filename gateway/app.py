"""The ASGI app: FastAPI with /graphql and /healthz."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter

from gateway.context import CoopContext
from gateway.runtime import Runtime
from gateway.schema import schema
from services.common.settings import Settings, get_settings

log = logging.getLogger("coop.gateway")

REQUEST_ID_HEADER = "X-Request-Id"


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
        # Authentication arrives with the gateway issue; until then the actor is
        # the device or person the client says it is, for the audit trail only.
        actor = request.headers.get("X-Actor", "anonymous")[:100]
        return CoopContext(
            runtime=request.app.state.runtime,
            actor=actor,
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

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app

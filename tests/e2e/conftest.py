from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.runtime import Runtime
from services.common.settings import Settings


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    runtime: Runtime

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def head(self) -> int:
        return self.runtime.ledger.recorder.max_notification_id() or 0


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[GraphQLClient]:
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://coop.test") as http:
                yield GraphQLClient(http, runtime)
    finally:
        await runtime.aclose()

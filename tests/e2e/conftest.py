from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest

from gateway.app import create_app
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.settings import Settings


@dataclass
class GraphQLClient:
    """A GraphQL client over HTTP; `headers` carry its credentials."""

    http: httpx.AsyncClient
    runtime: Runtime
    headers: dict[str, str] = field(default_factory=dict)

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
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

    def as_role(self, role: Role, till_id: str | None = None) -> GraphQLClient:
        """Another client on the same app, authenticated with a new API key of `role`."""
        # A key's name is its device: one per role and till (see `issue_key`).
        name = f"test-{role.value}" + (f"-{till_id}" if till_id else "")
        issued = self.runtime.credentials.issue_key(name, role, till_id)
        return GraphQLClient(self.http, self.runtime, {"X-Api-Key": issued.key})

    def as_person(self, role: Role) -> GraphQLClient:
        """Another client on the same app, signed in as a new person with `role` (the
        fund's decisions take a person, not a device key)."""
        username = f"{role.value.lower()}-{uuid4().hex[:8]}"
        password = "a long enough password"
        self.runtime.credentials.add_user(username, password, frozenset({role}))
        issued = self.runtime.credentials.issue_token(username, password)
        return GraphQLClient(self.http, self.runtime, {"Authorization": f"Bearer {issued.token}"})

    def anonymous(self) -> GraphQLClient:
        return GraphQLClient(self.http, self.runtime, {})


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """The app for `settings`, in process, with an unauthenticated client."""
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://coop.test") as http:
                yield GraphQLClient(http, runtime)
    finally:
        await runtime.aclose()


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """An unauthenticated client; use `.as_role(...)` for credentials."""
    async with serving(settings) as client:
        yield client


@pytest.fixture
def client(app_client: GraphQLClient) -> GraphQLClient:
    """An admin device: allowed everything except beneficiary data."""
    return app_client.as_role(Role.ADMIN)


@pytest.fixture
def client_as(app_client: GraphQLClient) -> Callable[..., GraphQLClient]:
    """`client_as(Role.VOLUNTEER, till_id="till-1")`: a client with that role's key."""
    return app_client.as_role

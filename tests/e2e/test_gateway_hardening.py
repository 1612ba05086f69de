"""Abuse and bad requests at the edge: each refused with its documented error,
nothing stored, nothing leaked."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import SAWarning

from gateway.app import StallClock, create_app
from gateway.auth import auth_tokens, principal_for_key
from gateway.context import CoopContext
from gateway.observability import JsonFormatter
from gateway.runtime import Runtime
from gateway.unstorable_text import UNSTORABLE_MESSAGE
from services.common.auth import Role
from services.ledger.domain import Posting, Side
from tests.conftest import make_settings
from tests.e2e.conftest import GraphQLClient, serving

POST = """mutation($input: PostJournalEntryInput!) { postJournalEntry(input: $input) {
  __typename ... on JournalEntry { id } } }"""


def entry(key: str) -> dict[str, Any]:
    return {
        "input": {
            "idempotencyKey": key,
            "effectiveDate": "2025-01-10",
            "description": "Donation",
            "postings": [
                {"account": "1010", "side": "DEBIT", "amount": "5.00"},
                {"account": "4400", "side": "CREDIT", "amount": "5.00"},
            ],
        }
    }


def code_of(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def test_over_deep_queries_are_refused(tmp_path: Path, backend: str) -> None:
    settings = make_settings(backend, tmp_path, max_query_depth=2)
    async with serving(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        body = await admin.execute("{ journal { nodes { lines { account } } } }")
        assert "exceeds maximum operation depth" in body["errors"][0]["message"]
        assert body.get("data") is None


async def test_alias_floods_are_refused_also_through_fragments(client: GraphQLClient) -> None:
    flood = " ".join(f"a{i}: accounts {{ code }}" for i in range(16))
    body = await client.execute(f"{{ {flood} }}")
    assert "aliases" in body["errors"][0]["message"]
    fragment = f"query {{ ...F }} fragment F on Query {{ {flood} }}"
    body = await client.execute(fragment)
    assert "aliases" in body["errors"][0]["message"]
    nested = (
        "query { ...A ...B } fragment A on Query { "
        + " ".join(f"x{i}: accounts {{ code }}" for i in range(8))
        + " } fragment B on Query { "
        + " ".join(f"y{i}: accounts {{ code }}" for i in range(8))
        + " }"
    )
    body = await client.execute(nested)
    assert "aliases" in body["errors"][0]["message"]


async def test_token_floods_are_refused(client: GraphQLClient) -> None:
    fields = " ".join("code name" for _ in range(1200))
    body = await client.execute(f"{{ accounts {{ {fields} }} }}")
    assert "token" in body["errors"][0]["message"].lower()


async def test_text_a_store_cannot_hold_is_refused_and_nothing_is_stored(
    client: GraphQLClient,
) -> None:
    """PostgreSQL's text cannot hold U+0000: a donor's name with one was stored as an
    event and then stopped every projector at it, for good. It is refused before
    execution, in variables and in literals of the query, naming no value; nothing is
    stored and everything still answers."""
    donate = (
        "mutation($input: RecordDonationInput!) { recordDonation(input: $input) { __typename } }"
    )
    head = client.head()
    refused = [
        await client.execute(
            donate,
            {"input": {"idempotencyKey": "nul-1", "amount": "1.00", "donor": "Anna\x00Neri"}},
        ),
        await client.execute(
            'mutation { recordDonation(input: {idempotencyKey: "nul-2", amount: "1.00", '
            'donor: "Anna\\u0000Neri"}) { __typename } }'
        ),
        await client.execute(  # in a key, not only in free text
            donate, {"input": {"idempotencyKey": "nul\x00-3", "amount": "1.00"}}
        ),
        # An unpaired surrogate is no character: UTF-8 cannot encode it, so it comes
        # as JSON's escape (json.dumps writes it so; httpx's own encoder refuses it).
        (
            await client.http.post(
                "/graphql",
                content=json.dumps(
                    {
                        "query": donate,
                        "variables": {
                            "input": {
                                "idempotencyKey": "nul-4",
                                "amount": "1.00",
                                "donor": "Anna\ud800Neri",
                            }
                        },
                    }
                ),
                headers={**client.headers, "Content-Type": "application/json"},
            )
        ).json(),
    ]
    for body in refused:
        assert body.get("data") is None, body
        assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
            (UNSTORABLE_MESSAGE, "BAD_REQUEST")
        ]
        assert "Neri" not in json.dumps(body)
    # In a literal, graphql-core's parser refuses an unpaired surrogate itself.
    literal = await client.execute(
        'mutation { recordDonation(input: {idempotencyKey: "nul-5", amount: "1.00", '
        'donor: "Anna\\udc00Neri"}) { __typename } }'
    )
    assert literal.get("data") is None
    assert literal["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert client.head() == head
    data = await client.data(
        donate, {"input": {"idempotencyKey": "ok-1", "amount": "1.00", "donor": "Anna Neri"}}
    )
    assert data["recordDonation"]["__typename"] == "Donation"
    balance = await client.data("{ fundBalance { accrued } }")
    assert balance["fundBalance"]["accrued"] is not None


async def test_batches_are_refused(client: GraphQLClient) -> None:
    head = client.head()
    response = await client.http.post(
        "/graphql",
        json=[{"query": POST, "variables": entry(f"b{i}")} for i in range(3)],
        headers=client.headers,
    )
    assert response.status_code == 400
    assert code_of(response.json()) == "BAD_REQUEST"
    assert client.head() == head


async def test_mutation_via_get_is_refused(client: GraphQLClient) -> None:
    head = client.head()
    response = await client.http.get(
        "/graphql",
        params={"query": POST, "variables": json.dumps(entry("get-1"))},
        headers=client.headers,
    )
    assert response.status_code in (400, 405)
    assert code_of(response.json()) in ("BAD_REQUEST", "METHOD_NOT_ALLOWED")
    assert client.head() == head


async def test_oversize_body_is_refused_before_parsing(tmp_path: Path, backend: str) -> None:
    settings = make_settings(backend, tmp_path, max_body_bytes=2048)
    async with serving(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        head = admin.head()
        big = entry("big")
        big["input"]["description"] = "x" * 4000
        response = await admin.http.post(
            "/graphql", json={"query": POST, "variables": big}, headers=admin.headers
        )
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert admin.head() == head


async def test_malformed_json_unknown_operation_and_wrong_variable_types(
    client: GraphQLClient,
) -> None:
    malformed = await client.http.post(
        "/graphql",
        content=b'{"query": "{ accounts { code } ',
        headers={**client.headers, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["errors"] == [
        {"message": "Unable to parse request body as JSON", "extensions": {"code": "BAD_REQUEST"}}
    ]
    unknown = await client.http.post(
        "/graphql",
        json={"query": "query A { accounts { code } }", "operationName": "B"},
        headers=client.headers,
    )
    assert unknown.status_code == 400
    assert code_of(unknown.json()) == "BAD_REQUEST"
    assert "B" in unknown.json()["errors"][0]["message"]
    # Two operations and no name: the client must choose; neither runs.
    head = client.head()
    unnamed = await client.execute(
        "query A { accounts { code } } mutation B($input: PostJournalEntryInput!) "
        "{ postJournalEntry(input: $input) { __typename } }"
    )
    assert unnamed.get("data") is None
    assert unnamed["errors"][0]["message"].startswith("Must provide operation name")
    assert client.head() == head
    wrong = await client.execute(POST, {"input": {"idempotencyKey": 42}})
    assert wrong["errors"]
    assert wrong.get("data") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"hello"', "the request body must be a JSON object"),
        (b"42", "the request body must be a JSON object"),
        (b"null", "the request body must be a JSON object"),
        (b"[]", "Batching is not enabled"),
        (b'{"query": "{ accounts { code } \xff }"}', "Unable to parse request body as JSON"),
        (b"\xc3(", "Unable to parse request body as JSON"),
    ],
)
async def test_bodies_that_are_no_json_object_or_no_utf8_are_bad_requests(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture, body: bytes, message: str
) -> None:
    """JSON that is not an object, and bytes that are not UTF-8, got a plain-text 500
    without a request id (strawberry called `.get` on the value, or failed to decode
    it), and a traceback in the log. They are malformed requests, answered as
    malformed JSON is."""
    response = await client.http.post(
        "/graphql", content=body, headers={**client.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]
    }
    assert len(response.headers["x-request-id"]) == 32
    assert [r for r in caplog.records if r.exc_info] == []


@pytest.mark.parametrize(
    "subscription",
    [
        'subscription { tillTotals(tillId: "till-1") { salesTotal } }',
        'subscription { accountBalanceUpdates(code: "1010") { balance } }',
        "subscription { fundBalanceUpdates { available } }",
    ],
)
async def test_a_subscription_over_http_is_a_bad_request(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture, subscription: str
) -> None:
    """Subscriptions run on the WebSocket. Posted over HTTP, one ran as a query outside
    its permission check: null for anyone (no credentials needed), or an internal
    error logged with a traceback. Refused before it runs, as a mutation over GET."""
    for headers in ({}, client.headers):
        with caplog.at_level(logging.INFO):
            response = await client.http.post(
                "/graphql", json={"query": subscription}, headers=headers
            )
        assert response.status_code == 400, response.text
        assert response.json() == {
            "errors": [
                {
                    "message": "subscriptions are not allowed when using POST",
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ]
        }
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_user_name_no_store_can_hold_is_a_wrong_user_name(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses the NUL character even in a lookup: signing in as
    "ma\\x00ria" was a plain 500 with a traceback. It is a name no user can have."""
    client.runtime.credentials.add_user(
        "maria", "a long enough password", frozenset({Role.AUDITOR})
    )
    for username in ("ma\x00ria", "maria\x00"):
        response = await client.http.post(
            "/auth/token", data={"username": username, "password": "a long enough password"}
        )
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "wrong username or password",
        }
        assert len(response.headers["x-request-id"]) == 32
    assert [r for r in caplog.records if r.exc_info] == []


async def test_an_unexpected_failure_outside_graphql_is_masked_with_ids(
    tmp_path: Path, backend: str
) -> None:
    """An exception escaping the app went to Starlette's error middleware, outside the
    one that sets request ids: a plain-text 500 without one, and a log line without
    it. It is masked as GraphQL masks errors: an error id in the answer and the log."""
    settings = make_settings(backend, tmp_path)
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    lines: list[dict[str, Any]] = []

    class Lines(logging.Handler):  # formatted as they are emitted, as in production
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    handler = Lines()
    logging.getLogger("coop.gateway").addHandler(handler)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://coop.test") as http:
                response = await http.get("/broken")
    finally:
        logging.getLogger("coop.gateway").removeHandler(handler)
        await runtime.aclose()
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["message"] == "Internal error"
    assert error["extensions"]["code"] == "INTERNAL"
    [logged] = [line for line in lines if "exc" in line]
    assert error["extensions"]["errorId"] in logged["msg"]
    assert logged["request_id"] == response.headers["x-request-id"]


async def test_refused_fields_keep_their_path_and_location(tmp_path: Path, backend: str) -> None:
    """FORBIDDEN, UNAUTHENTICATED and RATE_LIMITED came without `path` and
    `locations`: in a query of several fields a client could not tell which one was
    refused (the GraphQL spec requires the path of a field error)."""
    settings = make_settings(backend, tmp_path, mutations_per_minute=1)
    async with serving(settings) as anon:
        till = anon.as_role(Role.VOLUNTEER, till_id="till-1")
        body = await till.execute(
            '{ openCashSessionOf(tillId: "till-1") { id }\n'
            '  booking(id: "00000000-0000-4000-8000-000000000000") { id } }'
        )
        assert body["data"] == {"openCashSessionOf": None, "booking": None}
        assert [(e["extensions"]["code"], e["path"], e["locations"]) for e in body["errors"]] == [
            ("FORBIDDEN", ["booking"], [{"line": 2, "column": 3}])
        ]

        unauthenticated = await anon.execute("{ accounts { code } }")
        [error] = unauthenticated["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("UNAUTHENTICATED", ["accounts"])
        assert error["locations"] == [{"line": 1, "column": 3}]

        admin = anon.as_role(Role.ADMIN)
        donate = (
            'recordDonation(input: {{idempotencyKey: "{key}", amount: "1.00"}}) {{ __typename }}'
        )
        both = await admin.execute(
            f"mutation {{ first: {donate.format(key='d1')} second: {donate.format(key='d2')} }}"
        )
        [limited] = both["errors"]
        assert (limited["extensions"]["code"], limited["path"]) == ("RATE_LIMITED", ["second"])
        assert limited["locations"][0]["line"] == 1


async def test_no_credentials_wrong_role_expired_token_and_revoked_key(
    app_client: GraphQLClient,
) -> None:
    query = "{ accounts { code } }"
    assert code_of(await app_client.execute(query)) == "UNAUTHENTICATED"

    front_desk = app_client.as_role(Role.FRONT_DESK)
    assert code_of(await front_desk.execute(query)) == "FORBIDDEN"
    head = app_client.head()
    assert code_of(await front_desk.execute(POST, entry("fd-1"))) == "FORBIDDEN"
    assert app_client.head() == head

    bogus = GraphQLClient(app_client.http, app_client.runtime, {"X-Api-Key": "coop_x_y"})
    assert code_of(await bogus.execute(query)) == "UNAUTHENTICATED"

    credentials = app_client.runtime.credentials
    credentials.add_user("aud", "a long enough password", frozenset({Role.AUDITOR}))
    issued = credentials.issue_token("aud", "a long enough password")
    auditor = GraphQLClient(
        app_client.http, app_client.runtime, {"Authorization": f"Bearer {issued.token}"}
    )
    assert "errors" not in await auditor.execute(query)
    with credentials.engine.begin() as conn:
        conn.execute(
            update(auth_tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert code_of(await auditor.execute(query)) == "UNAUTHENTICATED"

    key = credentials.issue_key("pc-1", Role.ADMIN)
    device = GraphQLClient(app_client.http, app_client.runtime, {"X-Api-Key": key.key})
    assert "errors" not in await device.execute(query)
    credentials.revoke_key(key.key_id)
    assert code_of(await device.execute(query)) == "UNAUTHENTICATED"

    credentials.disable_user("aud")
    fresh = credentials  # a disabled user cannot sign in again
    from gateway.auth import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        fresh.issue_token("aud", "a long enough password")


async def test_signing_out_revokes_the_token_at_once(app_client: GraphQLClient) -> None:
    query = "{ accounts { code } }"
    credentials = app_client.runtime.credentials
    credentials.add_user("aud", "a long enough password", frozenset({Role.AUDITOR}))

    async def sign_in() -> str:
        response = await app_client.http.post(
            "/auth/token", data={"username": "aud", "password": "a long enough password"}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def bearer(token: str) -> GraphQLClient:
        return GraphQLClient(
            app_client.http, app_client.runtime, {"Authorization": f"Bearer {token}"}
        )

    kept, signed_out = await sign_in(), await sign_in()
    for token in (kept, signed_out):
        assert "errors" not in await bearer(token).execute(query)
    revoked = await app_client.http.post("/auth/revoke", data={"token": signed_out})
    assert (revoked.status_code, revoked.json()) == (200, {})
    assert code_of(await bearer(signed_out).execute(query)) == "UNAUTHENTICATED"
    still = bearer(kept)
    assert "errors" not in await still.execute(query)  # the other device stays signed in
    # Revoking again, or a token that never was, says the same and changes nothing.
    for token in (signed_out, "not-a-token", "nul\x00"):
        again = await app_client.http.post("/auth/revoke", data={"token": token})
        assert (again.status_code, again.json()) == (200, {})
    assert "errors" not in await still.execute(query)


async def test_a_sign_in_clears_expired_tokens(app_client: GraphQLClient) -> None:
    credentials = app_client.runtime.credentials
    credentials.add_user("aud", "a long enough password", frozenset({Role.AUDITOR}))
    old = credentials.issue_token("aud", "a long enough password")
    with credentials.engine.begin() as conn:
        conn.execute(
            update(auth_tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    new = credentials.issue_token("aud", "a long enough password")
    with credentials.engine.connect() as conn:
        stored = set(conn.execute(select(auth_tokens.c.token_hash)).scalars())
    assert len(stored) == 1  # the expired one is gone, the new one is there
    assert old.token != new.token


async def test_introspection_and_graphiql_only_in_development(tmp_path: Path, backend: str) -> None:
    introspection = "{ __schema { queryType { name } } }"
    async with serving(make_settings(backend, tmp_path)) as dev:
        admin = dev.as_role(Role.ADMIN)
        assert (await admin.execute(introspection))["data"]["__schema"]["queryType"][
            "name"
        ] == "Query"
        page = await dev.http.get("/graphql", headers={"Accept": "text/html"})
        assert "GraphiQL" in page.text
    production = make_settings(backend, tmp_path / "prod", environment="production")
    async with serving(production) as prod:
        admin = prod.as_role(Role.ADMIN)
        body = await admin.execute(introspection)
        assert body["errors"]
        assert body.get("data") is None
        page = await prod.http.get("/graphql", headers={"Accept": "text/html"})
        assert "GraphiQL" not in page.text


async def test_mutations_are_rate_limited_per_key(tmp_path: Path, backend: str) -> None:
    settings = make_settings(backend, tmp_path, mutations_per_minute=3)
    async with serving(settings) as anon:
        till = anon.as_role(Role.ADMIN)
        other = anon.as_role(Role.ADMIN)
        for i in range(3):
            assert "errors" not in await till.execute(POST, entry(f"r{i}"))
        head = till.head()
        limited = await till.execute(POST, entry("r3"))
        assert code_of(limited) == "RATE_LIMITED"
        assert till.head() == head
        # Every context's mutations spend the same budget (the hotel's once did not).
        check_in = await till.execute(
            'mutation { checkIn(input: {idempotencyKey: "h1", bookingId: '
            '"00000000-0000-0000-0000-000000000000"}) { __typename } }'
        )
        assert code_of(check_in) == "RATE_LIMITED"
        # Another key has its own budget.
        assert "errors" not in await other.execute(POST, entry("o1"))
        metrics = (await anon.http.get("/metrics")).text
        assert "coop_rate_limited_total 2.0" in metrics


async def test_sign_ins_are_throttled_per_user(tmp_path: Path, backend: str) -> None:
    """Each sign-in costs a scrypt hash and a guess: beyond the per-user budget the
    answer is 429 with Retry-After, whatever the password, and no token is issued."""
    settings = make_settings(backend, tmp_path, sign_ins_per_minute=3)
    async with serving(settings) as anon:
        credentials = anon.runtime.credentials
        credentials.add_user("maria", "a long enough password", frozenset({Role.AUDITOR}))

        async def sign_in(username: str, password: str) -> httpx.Response:
            return await anon.http.post(
                "/auth/token", data={"username": username, "password": password}
            )

        for guess in ("guess one xx", "guess two xx"):
            assert (await sign_in("maria", guess)).status_code == 400
        assert (await sign_in("maria", "a long enough password")).status_code == 200
        throttled = await sign_in("Maria", "a long enough password")
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert "access_token" not in throttled.text
        # Another user has a budget of its own.
        assert (await sign_in("nobody", "guess three x")).status_code == 400
        metrics = (await anon.http.get("/metrics")).text
        assert "coop_sign_ins_throttled_total 1.0" in metrics


async def test_names_no_user_could_have_are_refused_before_the_throttle(
    tmp_path: Path, backend: str
) -> None:
    """A 200 kB username or one with a NUL in it: the same 400 as a wrong password, at
    once, and the throttle keeps nothing for it (such names cost neither memory nor a
    place among the throttled users)."""
    settings = make_settings(backend, tmp_path, sign_ins_per_minute=3)
    async with serving(settings) as anon:
        limiter = anon.runtime.sign_in_limiter
        for username in ("m" * 200_000, "maria\x00", "m" * 101, ""):
            answer = await anon.http.post(
                "/auth/token", data={"username": username, "password": "a long enough password"}
            )
            assert answer.status_code in (400, 422), answer.text
            if answer.status_code == 400:
                assert answer.json()["error"] == "invalid_grant"
        assert limiter.subject_count == 0
        # A name a user could have is throttled as before.
        answer = await anon.http.post(
            "/auth/token", data={"username": "m" * 100, "password": "a long enough password"}
        )
        assert answer.status_code == 400
        assert limiter.subject_count == 1


async def test_an_operation_checked_on_a_socket_keeps_its_caller_when_the_key_is_revoked(
    tmp_path: Path, backend: str
) -> None:
    """Operations on one socket share its context. A key revoked while one is past its
    check: the next check (another operation's, a live update's) is refused, and the
    one in flight still runs as the caller it was checked as, not as "anonymous"."""
    async with serving(make_settings(backend, tmp_path)) as anon:
        runtime = anon.runtime
        issued = runtime.credentials.issue_key("socket-volunteer", Role.VOLUNTEER, "till-1")
        socket = CoopContext(runtime, None, "", from_connection_params=True)
        socket.connection_params = {"X-Api-Key": issued.key}
        checked = await socket.current_principal()
        assert checked is not None

        runtime.credentials.revoke_key(issued.key_id)
        assert await socket.current_principal() is None
        assert socket.principal == checked
        assert (socket.actor, checked.till_id) == (checked.actor, "till-1")


async def test_read_your_writes_lag_is_a_clear_error(tmp_path: Path, backend: str) -> None:
    settings = make_settings(
        backend, tmp_path, run_projector_in_process=False, read_your_writes_timeout_s=0.2
    )
    async with serving(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        body = await admin.execute(POST, entry("lag-1"))
        error = body["errors"][0]
        assert error["extensions"]["code"] == "PROJECTION_LAG"
        assert "saved" in error["message"]
        # Once the projector catches up, the retry returns the original entry.
        await admin.runtime.run_sync(admin.runtime.projector.run_until_caught_up)
        retry = await admin.data(POST, entry("lag-1"))
        assert retry["postJournalEntry"]["__typename"] == "JournalEntry"


async def test_readyz_and_metrics(tmp_path: Path, backend: str) -> None:
    settings = make_settings(
        backend,
        tmp_path,
        run_projector_in_process=False,
        readyz_max_lag_events=0,
        read_your_writes_timeout_s=0.1,
    )
    async with serving(settings) as anon:
        admin = anon.as_role(Role.ADMIN)
        await admin.runtime.run_sync(admin.runtime.projector.run_until_caught_up)
        ready = await anon.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["projectorLag"] == 0
        await admin.execute(POST, entry("m1"))  # projector is off: lag grows
        lagging = await anon.http.get("/readyz")
        assert lagging.status_code == 503
        assert lagging.json()["projectorLag"] > 0
        metrics = (await anon.http.get("/metrics")).text
        assert 'coop_http_requests_total{method="POST",path="/graphql",status="200"}' in metrics
        assert 'coop_projector_lag_events{projection="ledger"}' in metrics
        assert "coop_events_appended" in metrics
        assert "coop_http_request_duration_seconds_bucket" in metrics


async def test_readyz_says_stalled_when_the_read_models_are_behind_and_do_not_move(
    tmp_path: Path, backend: str
) -> None:
    """A projector failing on one event is not far behind, but every mutation then
    answers PROJECTION_LAG: readiness must not say "ready" for long."""
    settings = make_settings(
        backend, tmp_path, run_projector_in_process=False, readyz_max_stall_s=0.3
    )
    async with serving(settings) as anon:
        runtime = anon.runtime
        await runtime.run_sync(runtime.projector.run_until_caught_up)
        assert (await anon.http.get("/readyz")).json()["status"] == "ready"
        await runtime.run_sync(
            lambda: runtime.ledger.post_entry(
                key="behind",
                actor="test",
                effective_date=date(2025, 1, 2),
                description="Donation",
                postings=[Posting("1010", Side.DEBIT, 500), Posting("4400", Side.CREDIT, 500)],
            )
        )
        behind = await anon.http.get("/readyz")  # behind, but only just
        assert (behind.status_code, behind.json()["status"]) == (200, "ready")
        await asyncio.sleep(0.5)
        stalled = await anon.http.get("/readyz")
        assert (stalled.status_code, stalled.json()["status"]) == (503, "stalled")
        assert stalled.json()["projectorLag"] > 0
        await runtime.run_sync(runtime.projector.run_until_caught_up)
        assert (await anon.http.get("/readyz")).status_code == 200


async def test_readyz_counts_a_stall_from_when_the_read_models_fell_behind(
    tmp_path: Path, backend: str
) -> None:
    """The stall clock counted from when the projected position last moved: after a
    quiet spell longer than the threshold, the first probe between a commit and its
    projection said "stalled" (503) on a healthy system, and a stopped projector was
    called stalled at once. It counts from the first probe that finds it behind."""
    settings = make_settings(
        backend, tmp_path, run_projector_in_process=False, readyz_max_stall_s=1.0
    )
    async with serving(settings) as anon:
        runtime = anon.runtime
        await runtime.run_sync(runtime.projector.run_until_caught_up)
        assert (await anon.http.get("/readyz")).json()["status"] == "ready"
        await asyncio.sleep(1.2)  # a quiet spell, longer than the threshold
        await runtime.run_sync(
            lambda: runtime.ledger.post_entry(
                key="after-quiet",
                actor="test",
                effective_date=date(2025, 1, 2),
                description="Donation",
                postings=[Posting("1010", Side.DEBIT, 500), Posting("4400", Side.CREDIT, 500)],
            )
        )
        # The projector is off from here on: the read models stay behind.
        behind = await anon.http.get("/readyz")
        assert (behind.status_code, behind.json()["status"]) == (200, "ready"), behind.json()
        assert behind.json()["projectorLag"] > 0
        await asyncio.sleep(0.3)
        still = await anon.http.get("/readyz")  # behind, not moving, under the threshold
        assert (still.status_code, still.json()["status"]) == (200, "ready"), still.json()
        await asyncio.sleep(1.0)
        stalled = await anon.http.get("/readyz")
        assert (stalled.status_code, stalled.json()["status"]) == (503, "stalled")
        await runtime.run_sync(runtime.projector.run_until_caught_up)
        assert (await anon.http.get("/readyz")).status_code == 200


def test_the_stall_clock_restarts_when_the_read_models_move_or_catch_up() -> None:
    clock = StallClock()
    assert clock.behind_for_s(projected=10, lag=0, now_s=100.0) == 0.0
    assert clock.behind_for_s(projected=10, lag=3, now_s=500.0) == 0.0  # fell behind now
    assert clock.behind_for_s(projected=10, lag=3, now_s=530.0) == 30.0  # and has not moved
    assert clock.behind_for_s(projected=12, lag=4, now_s=540.0) == 0.0  # moved, still behind
    assert clock.behind_for_s(projected=12, lag=4, now_s=545.0) == 5.0
    assert clock.behind_for_s(projected=16, lag=0, now_s=546.0) == 0.0  # caught up
    assert clock.behind_for_s(projected=16, lag=1, now_s=900.0) == 0.0


async def test_every_response_carries_a_request_id(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", json={"query": "{ accounts { code } }"}, headers=client.headers
    )
    assert len(response.headers["x-request-id"]) == 32
    # A proxy's id is kept, so one id follows the request through every hop; one
    # that is no plain token (it goes into every log line) is replaced.
    for sent, kept in (("trace-42.a:b", True), ("x" * 65, False), ('"}{evil', False)):
        answered = await client.http.post(
            "/graphql",
            json={"query": "{ accounts { code } }"},
            headers={**client.headers, "X-Request-Id": sent},
        )
        assert (answered.headers["x-request-id"] == sent) is kept, sent


async def test_cancelled_lone_reads_leave_no_connection_checked_out(
    tmp_path: Path, backend: str
) -> None:
    """graphql-core cancels a query's other root fields when one fails, and resolvers
    read through the same lone reads as authentication (the projected position, for
    instance). A read cancelled half-way must still give its connection back: on SQLite
    it once stayed checked out until the garbage collector terminated it, with a
    warning. Cancelled at many points of the read: where one lands is a matter of
    timing."""
    settings = make_settings(backend, tmp_path, run_projector_in_process=False)
    async with serving(settings) as anon:
        runtime = anon.runtime
        key = runtime.credentials.issue_key("cancelled-reads", Role.AUDITOR).key
        # One read to the end first: on a slow machine every one of the 300 was
        # cancelled before the lone reads' pool existed, leaving nothing to check.
        assert await principal_for_key(runtime.lone_reads, key) is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for attempt in range(300):
                read = asyncio.ensure_future(principal_for_key(runtime.lone_reads, key))
                if attempt % 2:  # after some event-loop turns, whatever the machine's speed
                    for _turn in range(attempt % 40):
                        await asyncio.sleep(0)
                else:  # or after some time
                    await asyncio.sleep((attempt % 100) * 0.00003)
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read
            gc.collect()
            await asyncio.sleep(0.05)
            gc.collect()
        leaked = [w for w in caught if issubclass(w.category, SAWarning)]
        assert leaked == [], leaked[0].message
        if settings.is_postgres:  # lone reads have an asyncpg pool of their own there
            pool = runtime.lone_reads._pool
            assert pool is not None
            assert pool.get_size() - pool.get_idle_size() == 0
        else:
            engine_pool = runtime.read_engine.sync_engine.pool
            assert engine_pool.checkedout() == 0  # type: ignore[attr-defined]
        # And the reads still work.
        assert (await principal_for_key(runtime.lone_reads, key)).subject.startswith("cancelled")


async def test_a_failed_field_leaves_the_reads_beside_it_to_finish(
    tmp_path: Path, backend: str
) -> None:
    """An auditor asks in one query for the fund balance, the trial balance and a sale
    that does not exist. The answer is the sale's NOT_FOUND (the non-null field's
    error nulls the whole data). The reads beside it must run to their end: graphql-
    core cancelled them when the sale's field failed, and a read cancelled half-way
    lost its connection: the read engine's pool threw it away (about two queries in
    three), on PostgreSQL a cancel request went to the server on a connection of its
    own, and now and then asyncio logged "Future exception was never retrieved"."""
    settings = make_settings(backend, tmp_path)
    logged: list[str] = []
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: logged.append(str(context.get("message"))))
    try:
        async with serving(settings) as anon:
            auditor = anon.as_role(Role.AUDITOR)
            invalidated: list[object] = []
            event.listen(
                anon.runtime.read_engine.sync_engine.pool,
                "invalidate",
                lambda *_args: invalidated.append(1),
            )
            missing = "00000000-0000-4000-8000-000000000000"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _attempt in range(60):
                    body = await auditor.execute(
                        "{ fundBalance { accrued } trialBalance { balanced }"
                        f' sale(id: "{missing}") {{ id }} }}'
                    )
                    assert body["data"] is None
                    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
                gc.collect()
                await asyncio.sleep(0.05)
            assert [w for w in caught if issubclass(w.category, SAWarning)] == []
            assert len(invalidated) == 0
            # The reads still answer.
            data = await auditor.data("{ fundBalance { accrued } }")
            assert data["fundBalance"]["accrued"] == "0.00"
    finally:
        loop.set_exception_handler(previous_handler)
    assert logged == []


async def test_dates_at_the_ends_of_the_calendar_are_input_errors_not_internal_ones(
    client: GraphQLClient,
) -> None:
    """An instant at the very end (or start) of the calendar, moved into the
    cooperative's time zone, falls off it; December 9999 has no following month.
    Each once came back as a masked internal error."""
    for query in (
        '{ fundBalance(asOf: "9999-12-31T23:59:59+00:00") { accrued } }',
        '{ trialBalance(asOf: "0001-01-01T00:00:00+05:00") { balanced } }',
    ):
        body = await client.execute(query)
        assert [e["extensions"] for e in body["errors"]] == [
            {"code": "BAD_USER_INPUT", "field": "asOf"}
        ], body
        assert body["errors"][0]["message"] == "is out of the calendar's range"
    data = await client.data('{ istatMonthly(month: "9999-12") { arrivals nights } }')
    assert data["istatMonthly"] == {"arrivals": 0, "nights": 0}
    # Year 0000 is not in the calendar: a malformed month, in every context.
    for query in (
        '{ istatMonthly(month: "0000-01") { nights } }',
        '{ presenceRegister(contractId: "00000000-0000-4000-8000-000000000000", '
        'month: "0000-01") { presenceDays } }',
    ):
        body = await client.execute(query)
        assert [e["extensions"] for e in body["errors"]] == [
            {"code": "BAD_USER_INPUT", "field": "month"}
        ], body

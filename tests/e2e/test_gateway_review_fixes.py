"""Gateway review fixes, on SQLite and PostgreSQL.

- A sign-in costs one scrypt hash whether or not the user exists (an unknown name cost
  two, so the time of a failed sign-in told which names exist).
- The body limit holds for every WebSocket message, connection_init included.
- Input errors never echo a value, whatever quotes, ". " or "; " it holds.
- In production, validation errors do not suggest names ("Did you mean ...?"): with
  introspection off, they mapped the schema for anyone, signed in or not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from services.common.auth import Role
from tests.conftest import drop_schema, make_settings
from tests.e2e.conftest import GraphQLClient, serving
from tests.e2e.hotel_helpers import CREATE, adult, booking_input
from tests.e2e.test_gateway_hardening import POST, entry


async def test_a_sign_in_costs_the_same_whether_or_not_the_user_exists(
    app_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_client.runtime.credentials.add_user(
        "maria", "a long enough password", frozenset({Role.AUDITOR})
    )
    hashes: list[int] = []
    scrypt = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        hashes.append(1)
        return scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)

    async def hashes_for(username: str) -> int:
        hashes.clear()
        form = {"username": username, "password": "not the password"}
        refused = await app_client.http.post("/auth/token", data=form)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
        return len(hashes)

    await hashes_for("someone")  # the first unknown name makes the stand-in hash
    assert [await hashes_for(name) for name in ("maria", "nobody", "maria", "nobody2")] == [
        1,
        1,
        1,
        1,
    ]


def test_every_websocket_message_is_held_to_the_body_limit(tmp_path: Path, backend: str) -> None:
    """Over HTTP a body over the limit is a 413; on the socket the same mutation was
    executed, and a connection_init of any size was read before the credentials were
    checked. Either closes the socket with 1009 (message too big); nothing is stored."""
    settings = make_settings(backend, tmp_path, max_body_bytes=4096)
    big = entry("big")
    big["input"]["description"] = "x" * 8000
    try:
        app = create_app(settings)
        with TestClient(app) as client:
            runtime = app.state.runtime
            key = runtime.credentials.issue_key("admin", Role.ADMIN).key
            head = runtime.ledger.recorder.max_notification_id()
            with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
                init = {"X-Api-Key": key, "padding": "y" * 8000}
                ws.send_text(json.dumps({"type": "connection_init", "payload": init}))
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text()
                assert closed.value.code == 1009
            with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
                ws.send_text(json.dumps({"type": "connection_init", "payload": {"X-Api-Key": key}}))
                assert json.loads(ws.receive_text())["type"] == "connection_ack"
                subscribe = {"query": POST, "variables": big}
                ws.send_text(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text()
                assert closed.value.code == 1009
            assert runtime.ledger.recorder.max_notification_id() == head
    finally:
        drop_schema(settings)


async def test_input_errors_never_echo_a_value_whatever_it_holds(client: GraphQLClient) -> None:
    """A value's repr is in double quotes when it holds an apostrophe, and may hold
    ". " or "; ": the patterns that took values out stopped there."""
    head = client.head()
    record: dict[str, Any] = {"name": "D'Angelo Maria. Born 1980", "doc": "Passport YA1234567"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**adult(), "surname": record}, "cannot represent a non string value"),
        (adult(birthDate="D'Angelo"), "Invalid isoformat string"),
        (adult(birthDate="1980-02-30; D'Angelo"), "cannot represent a Date"),
        (adult(sex="D'Angelo. F"), "does not exist in 'Sex' enum"),
        # The value after "found" may hold "; " and a capital; "Found:" follows a
        # suggestion: both echoed the whole guest, document number included.
        (
            {
                k: v
                for k, v in adult(surname="Rossi; Born Angelo", documentNumber="YA1234567").items()
                if k != "givenName"
            },
            "required field 'givenName'",
        ),
        ({**adult(documentNumber="YA1234567"), "surnme": "Angelo"}, "unknown field 'surnme'"),
    ]
    for guest, fault in cases:
        body = await client.execute(CREATE, {"input": booking_input(guests=[guest])})
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST", error
        assert ".guests[0]" in error["message"], error
        assert fault in error["message"], error
        for secret in ("Angelo", "YA1234567", "Born", "1980-02-30"):
            assert secret not in json.dumps(error), error
    assert client.head() == head


async def test_production_suggests_no_names(tmp_path: Path, backend: str) -> None:
    typo = "{ beneficiar { id } }"
    async with serving(make_settings(backend, tmp_path)) as development:
        body = await development.execute(typo)
        assert "Did you mean 'beneficiary'" in body["errors"][0]["message"]
    production = make_settings(backend, tmp_path / "prod", environment="production")
    async with serving(production) as anonymous:
        for document in (typo, "{ fundBalance { balanc } }"):
            [error] = (await anonymous.execute(document))["errors"]
            assert error["extensions"]["code"] == "BAD_REQUEST", error
            assert "Did you mean" not in error["message"], error
        [error] = (await anonymous.execute(typo))["errors"]
        assert error["message"] == "Cannot query field 'beneficiar' on type 'Query'."

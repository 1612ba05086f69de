"""`coop serve` as the quick start runs it: a real uvicorn process on SQLite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_quick_start_demo_then_serve_answers_graphql_and_health(tmp_path: Path) -> None:
    """`python3 dev.py demo` runs `coop demo --serve`: load the demo year, then serve."""
    port = _free_port()
    env = {
        **os.environ,
        "COOP_DATABASE_URL": f"sqlite:///{tmp_path / 'coop.db'}",
        "COOP_PORT": str(port),
    }
    coop = Path(sys.executable).with_name("coop")
    server = subprocess.Popen(
        [str(coop), "demo", "--year", "2025", "--serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # the demo year loads first
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "coop serve exited early"
            assert time.monotonic() < deadline, "coop demo --serve did not come up in time"
            time.sleep(0.2)
        query = {"query": '{ trialBalance(asOf: "2025-12-31T23:59:59+01:00") { balanced } }'}
        anonymous = httpx.post(f"{base}/graphql", json=query, timeout=10).json()
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        # An auditor signs in with the OAuth2 password flow and asks again.
        added = subprocess.run(
            [
                str(coop),
                "users",
                "add",
                "ada",
                "--role",
                "auditor",
                "--password",
                "correct horse battery",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert added.returncode == 0, added.stdout + added.stderr
        wrong = httpx.post(
            f"{base}/auth/token",
            data={"username": "ada", "password": "wrong password!"},
            timeout=10,
        )
        assert wrong.status_code == 400
        token = httpx.post(
            f"{base}/auth/token",
            data={"username": "ada", "password": "correct horse battery"},
            timeout=10,
        ).json()
        assert token["token_type"] == "bearer"
        response = httpx.post(
            f"{base}/graphql",
            json=query,
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        )
        assert response.json() == {"data": {"trialBalance": {"balanced": True}}}
        graphiql = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
        assert "GraphiQL" in graphiql.text
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=15)
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in output
    # The server logs JSON lines with request ids; no request body ever reaches them.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "coop.access"]
    assert any(line["path"] == "/graphql" and line["status"] == 200 for line in access)
    assert all(len(line["request_id"]) == 32 for line in access)
    assert "correct horse battery" not in output
    assert "trialBalance" not in output
    assert "Demo admin API key" in output


def test_metrics_of_several_workers_add_up_whichever_answers(tmp_path: Path) -> None:
    """`coop serve --workers 2`: a scrape is answered by either worker, and counted
    each its own requests, counters went up and down between scrapes. Now every
    scrape shows the requests of both."""
    port = _free_port()
    env = {
        **os.environ,
        "COOP_DATABASE_URL": f"sqlite:///{tmp_path / 'coop.db'}",
        "COOP_RUN_PROJECTOR_IN_PROCESS": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    coop = Path(sys.executable).with_name("coop")
    subprocess.run([str(coop), "db", "init"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(coop), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        healthy = 0
        while healthy < 40:  # both workers up, and each has answered some
            try:
                healthy += httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, "coop serve exited early"
                assert time.monotonic() < deadline, "coop serve did not come up in time"
                time.sleep(0.2)
        line = 'coop_http_requests_total{method="GET",path="/healthz",status="200"}'
        counted = []
        for _ in range(6):
            text = httpx.get(f"{base}/metrics", timeout=5).text
            [value] = [row.split()[-1] for row in text.splitlines() if row.startswith(line)]
            counted.append(float(value))
        assert counted == [40.0] * 6, counted
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_the_projector_service_logs_json_lines(tmp_path: Path) -> None:
    """`coop projections run` is a service (systemd, compose): it logs JSON lines as
    the gateway does, where it printed prose and progress bars."""
    env = {**os.environ, "COOP_DATABASE_URL": f"sqlite:///{tmp_path / 'coop.db'}"}
    coop = Path(sys.executable).with_name("coop")
    subprocess.run([str(coop), "db", "init"], env=env, check=True, capture_output=True)
    projector = subprocess.Popen(
        [str(coop), "projections", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Stopped once it follows the log: a fixed sleep sent SIGTERM before the handler
    # was installed on a loaded machine (exit -15).
    assert projector.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while not any("following the log" in line for line in seen):
        assert time.monotonic() < deadline, seen
        line = projector.stdout.readline()
        assert line, ("exited early", seen)
        seen.append(line)
    projector.terminate()
    rest, _ = projector.communicate(timeout=15)
    output = "".join(seen) + rest
    assert projector.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    messages = [line["msg"] for line in lines if line["logger"] == "coop.projector"]
    assert messages[-1] == "stopped", messages
    assert any("following the log" in message for message in messages), messages

"""Sales rung per second through GraphQL on PostgreSQL, 8 tills ringing at once.

In-process ASGI (httpx.AsyncClient over ASGITransport): 8 asyncio tasks, each a
volunteer key scoped to its own till with its own open session, ring sales one after
another (each waits for its answer, as a till does). Every sale is a full command:
idempotency claim + session event + sale + balanced journal entry in one save, then
the read-your-writes wait for the projector, then the read of the sale.

    python -m bench.shop_sales [--sales-per-till 150] [--tills 8] [--projector-process]

--projector-process runs the projector as production does (`coop projections run`,
its own process, polling every 5 ms) instead of a thread of the gateway process.

Uses COOP_BENCH_DATABASE_URL (a PostgreSQL database it may create schemas in) or a
server on 127.0.0.1:5432 (user postgres), in a fresh database dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from gateway.app import create_app
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.settings import Settings

OPEN = """mutation($i: OpenCashSessionInput!) { openCashSession(input: $i) {
  __typename ... on CashSession { id } } }"""
RING = """mutation($i: RingSaleInput!) { ringSale(input: $i) {
  __typename ... on Sale { receiptNumber total } ... on Conflict { message } } }"""


async def till_worker(
    http: httpx.AsyncClient, key: str, till: str, sales: int, latencies_s: list[float]
) -> int:
    headers = {"X-Api-Key": key}
    opened = await http.post(
        "/graphql",
        json={
            "query": OPEN,
            "variables": {
                "i": {"idempotencyKey": f"{till}-open", "tillId": till, "openingFloat": "100.00"}
            },
        },
        headers=headers,
    )
    body = opened.json()
    if not body.get("data"):
        raise RuntimeError(f"open failed: {body}")
    session_id = body["data"]["openCashSession"]["id"]
    rung = 0
    for n in range(sales):
        variables = {
            "i": {
                "idempotencyKey": f"{till}-sale-{n}",
                "sessionId": session_id,
                "lines": [
                    {
                        "category": "CLOTHES",
                        "description": "shirt",
                        "quantity": 1,
                        "unitPrice": "5.00",
                    },
                    {
                        "category": "SHOES",
                        "description": "boots",
                        "quantity": 1,
                        "unitPrice": "12.50",
                    },
                ],
                "payments": [{"method": "CASH" if n % 2 else "CARD", "amount": "17.50"}],
            }
        }
        started = time.perf_counter()
        response = await http.post(
            "/graphql", json={"query": RING, "variables": variables}, headers=headers
        )
        latencies_s.append(time.perf_counter() - started)
        result = response.json()["data"]["ringSale"]
        if result["__typename"] != "Sale":
            raise RuntimeError(f"ring failed: {result}")
        rung += 1
    return rung


async def run(settings: Settings, tills: int, sales_per_till: int) -> None:
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=60
            ) as http:
                keys = [
                    runtime.credentials.issue_key(f"bench-{n}", Role.VOLUNTEER, f"till-{n}").key
                    for n in range(1, tills + 1)
                ]
                # Warm up: one till rings a few sales (imports, pools, caches).
                admin = runtime.credentials.issue_key("bench-admin", Role.ADMIN).key
                await till_worker(http, admin, "warmup", 5, [])
                latencies_s: list[float] = []
                started = time.perf_counter()
                counts = await asyncio.gather(
                    *(
                        till_worker(http, key, f"till-{n}", sales_per_till, latencies_s)
                        for n, key in enumerate(keys, start=1)
                    )
                )
                elapsed_s = time.perf_counter() - started
    finally:
        await runtime.aclose()
    total = sum(counts)
    ordered = sorted(latencies_s)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"tills: {tills}, sales: {total}, wall: {elapsed_s:.1f} s, cores: {os.cpu_count()}")
    print(f"throughput: {total / elapsed_s:.0f} sales/s through GraphQL (each a posted command)")
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tills", type=int, default=8)
    parser.add_argument("--sales-per-till", type=int, default=150)
    parser.add_argument("--projector-process", action="store_true")
    args = parser.parse_args()
    admin_url = os.environ.get(
        "COOP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"coop_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    projector: subprocess.Popen[bytes] | None = None
    try:
        settings = Settings(
            database_url=url,
            database_pool_size=4,
            run_projector_in_process=not args.projector_process,
        )
        if args.projector_process:
            Runtime(settings).close_sync()  # create the store before the follower starts
            coop = shutil.which("coop") or str(Path(sys.executable).with_name("coop"))
            env = {
                **os.environ,
                "COOP_DATABASE_URL": url,
                "COOP_PROJECTOR_POLL_INTERVAL_S": "0.005",
            }
            projector = subprocess.Popen(
                [coop, "projections", "run"], env=env, stdout=subprocess.DEVNULL
            )
        asyncio.run(run(settings, args.tills, args.sales_per_till))
    finally:
        if projector is not None:
            projector.terminate()
            projector.wait(timeout=30)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Check-in -> check-out cycles per second through GraphQL, on PostgreSQL.

    python -m bench.hotel_cycles [--stays 300] [--clients 1 8] [--database-url URL]

The ASGI app runs in-process (httpx's ASGI transport), with its projector in a
background thread, exactly as `coop serve` runs it; every mutation waits for the
read models (read-your-writes), as a front-desk client would see it. Each cycle is
three mutations and a query: checkIn, booking (the folio's balance), recordPayment,
checkOut; the bookings are created beforehand (not timed). Each run uses a new
schema, dropped afterwards.
Default database: COOP_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg

from gateway.app import create_app
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.database import ensure_schema
from services.common.settings import Settings

ROOMS = [f"{floor}{n:02d}" for floor in (1, 2) for n in range(1, 11)]
FIRST_NIGHT = date(2025, 9, 1)
GUEST = {
    "surname": "Bench",
    "givenName": "Guest",
    "sex": "F",
    "birthDate": "1980-01-01",
    "birthCountryCode": "100000216",
    "citizenshipCode": "100000216",
    "residenceCountryCode": "100000216",
    "documentType": "PASOR",
    "documentNumber": "C01X00T47",
    "documentIssuePlaceCode": "100000216",
}
RESULT = "{ __typename ... on Booking { id folio { balance } } ... on BalanceDue { message } }"


async def call(http: httpx.AsyncClient, headers: dict[str, str], name: str, value: Any) -> Any:
    input_type = name[0].upper() + name[1:] + "Input"
    query = f"mutation($input: {input_type}!) {{ {name}(input: $input) {RESULT} }}"
    response = await http.post(
        "/graphql", json={"query": query, "variables": {"input": value}}, headers=headers
    )
    body = response.json()
    result = body["data"][name]
    if result["__typename"] != "Booking":
        raise RuntimeError(f"{name} failed: {result}")
    return result


async def run(database_url: str, stays: int, clients_list: list[int]) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    # One front-desk key drives every cycle: lift the per-key mutation rate limit,
    # which would otherwise be what this measures.
    settings = Settings(
        database_url=database_url, database_schema=schema, mutations_per_minute=1_000_000
    )
    ensure_schema(settings)
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                key = runtime.credentials.issue_key("bench", Role.FRONT_DESK).key
                headers = {"X-Api-Key": key}
                offset = 0
                for clients in clients_list:
                    await measure(http, headers, stays, clients, offset)
                    offset += stays
    finally:
        await runtime.aclose()
        with psycopg.connect(
            settings.url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def measure(
    http: httpx.AsyncClient, headers: dict[str, str], stays: int, clients: int, offset: int
) -> None:
    ids: list[tuple[str, date]] = []
    for i in range(offset, offset + stays):
        night = FIRST_NIGHT + timedelta(days=i // len(ROOMS))
        booked = await call(
            http,
            headers,
            "createBooking",
            {
                "idempotencyKey": f"bench-book-{i}",
                "roomNumber": ROOMS[i % len(ROOMS)],
                "arrival": night.isoformat(),
                "departure": (night + timedelta(days=1)).isoformat(),
                "guests": [GUEST],
                "businessDate": "2025-08-01",
            },
        )
        ids.append((booked["id"], night))

    latencies: list[float] = []

    async def cycle(n: int, booking_id: str, night: date) -> None:
        started = time.perf_counter()
        common = {"bookingId": booking_id}
        await call(
            http,
            headers,
            "checkIn",
            {**common, "idempotencyKey": f"in-{n}", "businessDate": night.isoformat()},
        )
        # The front desk reads the folio and takes its balance.
        balance = await balance_of(http, headers, booking_id)
        await call(
            http,
            headers,
            "recordPayment",
            {**common, "idempotencyKey": f"pay-{n}", "method": "CARD", "amount": balance},
        )
        checkout_day = (night + timedelta(days=1)).isoformat()
        await call(
            http,
            headers,
            "checkOut",
            {**common, "idempotencyKey": f"out-{n}", "businessDate": checkout_day},
        )
        latencies.append(time.perf_counter() - started)

    queue: asyncio.Queue[tuple[int, str, date]] = asyncio.Queue()
    for n, (booking_id, night) in enumerate(ids):
        queue.put_nowait((offset + n, booking_id, night))

    async def worker() -> None:
        while not queue.empty():
            n, booking_id, night = queue.get_nowait()
            await cycle(n, booking_id, night)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        f"clients={clients:2d} cycles={stays} time={elapsed:.1f}s "
        f"cycles/s={stays / elapsed:.1f} mutations/s={3 * stays / elapsed:.1f} "
        f"cycle latency p50={statistics.median(latencies) * 1000:.0f}ms "
        f"p95={latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f}ms"
    )


async def balance_of(http: httpx.AsyncClient, headers: dict[str, str], booking_id: str) -> str:
    response = await http.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { booking(id: $id) { folio { balance } } }",
            "variables": {"id": booking_id},
        },
        headers=headers,
    )
    balance: str = response.json()["data"]["booking"]["folio"]["balance"]
    return balance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stays", type=int, default=300)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "COOP_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.stays, args.clients))


if __name__ == "__main__":
    main()

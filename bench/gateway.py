"""GraphQL gateway under load: 16 connections against a real `coop serve` (uvicorn).

For `fundBalance` and for `ringSale`, each measured beside a trivial query
(`{ __typename }`, authenticated like the rest) in the same run, on the same server:

    python -m bench.gateway [--backend postgres|sqlite] [--seconds 10] [--connections 16]

Prints requests/s and p50/p99 latency per operation and the ratios the issue sets as
targets: fundBalance p99 <= 2x trivial p99; ringSale >= 50% of trivial throughput.
On Linux also the CPU milliseconds per request of each process group (this load
generator, the gateway, the projector process, PostgreSQL), which is where a rate
comes from once the CPU is saturated. Each simulated client has its own keep-alive
connection. Traffic goes to 127.0.0.1 only; every loop is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from bench.stores import add_store_arguments, fresh_stores
from gateway.runtime import Runtime
from services.common.auth import Role
from services.ledger.domain import Posting, Side
from services.welfare_fund.domain import Stream

TRIVIAL = "{ __typename }"
FUND_BALANCE = "{ fundBalance { accrued committed disbursed available } }"
RING = """mutation($i: RingSaleInput!) { ringSale(input: $i) { __typename ... on Sale { id } } }"""
OPEN = """mutation($i: OpenCashSessionInput!) { openCashSession(input: $i) {
  __typename ... on CashSession { id } } }"""


@dataclass
class Result:
    name: str
    latencies_s: list[float]
    elapsed_s: float
    errors: int
    cpu_s: dict[str, float] | None = None  # CPU seconds per process group in the phase

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.elapsed_s

    def percentile_ms(self, q: int) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def seed(runtime: Runtime, tills: int) -> tuple[str, list[str]]:
    """A policy and some income (so the fund has accruals); keys for an officer and tills."""
    credentials = runtime.credentials
    officer = credentials.issue_key("bench-officer", Role.FUND_OFFICER).key
    # Shares in parts per million: 10% of donations, 5% of shop sales.
    runtime.welfare.set_policy(
        key="bench-policy",
        actor="bench",
        effective_from=date(2020, 1, 1),
        shares=[(Stream.DONATION, 100_000), (Stream.SHOP, 50_000)],
    )
    for i in range(200):
        runtime.ledger.post_entry(
            key=f"bench-gift-{i}",
            actor="bench",
            effective_date=date(2025, 1, 1 + i % 28),
            description="Donation",
            postings=[Posting("1010", Side.DEBIT, 2500), Posting("4400", Side.CREDIT, 2500)],
        )
    till_keys = [
        credentials.issue_key(f"bench-till-{i}", Role.VOLUNTEER, f"bench-{i}").key
        for i in range(tills)
    ]
    return officer, till_keys


class CpuMeter:
    """CPU seconds used by each process group, read from /proc (Linux only; elsewhere
    the bench prints no CPU table): this load generator, the gateway (the `coop serve`
    process and its workers), the projector process, and PostgreSQL's processes on
    this machine (all of them: run the bench on an otherwise idle server)."""

    GROUPS = ("client", "gateway", "projector", "postgres")

    def __init__(self, server_pid: int, projector_pid: int | None) -> None:
        self.server_pid = server_pid
        self.projector_pid = projector_pid
        self.ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = Path("/proc/self/stat").exists()

    def sample(self) -> dict[int, tuple[str, float]]:
        """pid -> (group, CPU seconds so far) for every process in a group."""
        if not self.available:
            return {}
        parents: dict[int, int] = {}
        found: dict[int, tuple[str, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            command, fields = (
                stat[stat.index("(") + 1 : stat.rindex(")")],
                stat.rsplit(")", 1)[1].split(),
            )
            pid, parent = int(entry.name), int(fields[1])
            parents[pid] = parent
            cpu_s = (int(fields[11]) + int(fields[12])) / self.ticks_per_s
            found[pid] = ("postgres" if command.startswith("postgres") else "", cpu_s)
        groups: dict[int, tuple[str, float]] = {}
        for pid, (group, cpu_s) in found.items():
            if pid == os.getpid():
                group = "client"
            elif self._descends(pid, self.server_pid, parents):
                group = "gateway"
            elif self.projector_pid and self._descends(pid, self.projector_pid, parents):
                group = "projector"
            if group:
                groups[pid] = (group, cpu_s)
        return groups

    @staticmethod
    def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
        while pid > 1:
            if pid == ancestor:
                return True
            pid = parents.get(pid, 0)
        return False

    @staticmethod
    def spent(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        """CPU seconds per group between two samples (a process started in between
        counts from zero; one that ended in between is missed)."""
        totals = dict.fromkeys(CpuMeter.GROUPS, 0.0)
        for pid, (group, cpu_s) in after.items():
            earlier = before.get(pid)
            totals[group] += cpu_s - (earlier[1] if earlier else 0.0)
        return totals


async def measure(
    name: str,
    connections: int,
    seconds: float,
    call: Callable[[int, int], Awaitable[bool]],
    meter: CpuMeter | None = None,
) -> Result:
    # On stderr as it starts: lets a profiler attach to one phase (see bench/README).
    print(f"phase {name}: {seconds:g} s", file=sys.stderr, flush=True)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await call(index, n)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
            n += 1

    before = meter.sample() if meter else {}
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed_s = time.perf_counter() - started
    cpu_s = CpuMeter.spent(before, meter.sample()) if meter and meter.available else None
    return Result(name, latencies, elapsed_s, errors, cpu_s)


async def run_load(
    base: str,
    officer: str,
    till_keys: list[str],
    args: argparse.Namespace,
    meter: CpuMeter,
) -> None:
    # One keep-alive connection per simulated client, as each till is a device of its
    # own: a till's requests reach the server on its connection, so one worker, not
    # whichever connection of a shared pool is free.
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=one, timeout=30)
            )
            for _ in range(args.connections)
        ]

        async def gql(
            key: str, query: str, variables: dict[str, Any] | None = None, client: int = 0
        ) -> Any:
            response = await clients[client].post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"X-Api-Key": key},
            )
            return response.json()

        sessions: list[str] = []
        for i, key in enumerate(till_keys):
            body = await gql(
                key,
                OPEN,
                {
                    "i": {
                        "idempotencyKey": f"open-{i}",
                        "tillId": f"bench-{i}",
                        "openingFloat": "100.00",
                    }
                },
                client=i,
            )
            sessions.append(body["data"]["openCashSession"]["id"])

        async def trivial(index: int, _n: int) -> bool:
            return "errors" not in await gql(officer, TRIVIAL, client=index)

        async def fund_balance(index: int, _n: int) -> bool:
            return "errors" not in await gql(officer, FUND_BALANCE, client=index)

        async def ring(index: int, n: int) -> bool:
            body = await gql(
                till_keys[index],
                RING,
                {
                    "i": {
                        "idempotencyKey": f"sale-{index}-{n}-{time.time_ns()}",
                        "sessionId": sessions[index],
                        "lines": [
                            {
                                "category": "CLOTHES",
                                "description": "shirt",
                                "quantity": 1,
                                "unitPrice": "5.00",
                            }
                        ],
                        "payments": [{"method": "CARD", "amount": "5.00"}],
                    }
                },
                client=index,
            )
            typename = (body.get("data") or {}).get("ringSale", {}).get("__typename")
            return bool(typename == "Sale")

        await measure("warm-up", args.connections, 1.0, trivial)
        results = [
            await measure("trivial", args.connections, args.seconds, trivial, meter),
            await measure("fundBalance", args.connections, args.seconds, fund_balance, meter),
            await measure("trivial (again)", args.connections, args.seconds, trivial, meter),
            await measure("ringSale", args.connections, args.seconds, ring, meter),
        ]
    print("phase end: 0 s", file=sys.stderr, flush=True)
    print(f"{'operation':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in results:
        print(
            f"{r.name:<18}{r.rate:>9.0f}{r.percentile_ms(50):>9.1f}"
            f"{r.percentile_ms(99):>9.1f}{r.errors:>8}"
        )
    trivial_p99 = statistics.mean([results[0].percentile_ms(99), results[2].percentile_ms(99)])
    trivial_rate = statistics.mean([results[0].rate, results[2].rate])
    fund_ratio = results[1].percentile_ms(99) / trivial_p99
    print(f"fundBalance p99 / trivial p99 = {fund_ratio:.2f} (target <= 2)")
    print(f"ringSale rate / trivial rate  = {results[3].rate / trivial_rate:.0%} (target >= 50%)")
    if all(r.cpu_s is not None for r in results):
        # Where a request's cost goes: with the CPU saturated, the rate follows it.
        print("CPU ms per request:")
        print(f"{'operation':<18}" + "".join(f"{g:>11}" for g in (*CpuMeter.GROUPS, "total")))
        for r in results:
            assert r.cpu_s is not None
            count = max(len(r.latencies_s), 1)
            per = [1000 * r.cpu_s[g] / count for g in CpuMeter.GROUPS]
            print(f"{r.name:<18}" + "".join(f"{v:>11.2f}" for v in (*per, sum(per))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--projector-process",
        action="store_true",
        help="the production shape: the projector as its own process (`coop projections "
        "run`), the gateway workers without one",
    )
    args = parser.parse_args()
    for store in fresh_stores(args, "gateway"):
        runtime = Runtime(store.settings)
        try:
            officer, till_keys = seed(runtime, args.connections)
            runtime.projector.run_until_caught_up()
        finally:
            runtime.close_sync()
        port = free_port()
        env = {
            **os.environ,
            "COOP_DATABASE_URL": store.settings.database_url,
            "COOP_DATABASE_SCHEMA": store.settings.database_schema,
            "COOP_PORT": str(port),
            "COOP_MUTATIONS_PER_MINUTE": "1000000",
            "COOP_LOG_JSON": "true",
            "COOP_DATABASE_POOL_SIZE": "8",
        }
        coop = Path(sys.executable).with_name("coop")
        projector: subprocess.Popen[bytes] | None = None
        if args.projector_process:
            env["COOP_RUN_PROJECTOR_IN_PROCESS"] = "false"
            projector = subprocess.Popen(
                [str(coop), "projections", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        server = subprocess.Popen(
            [str(coop), "serve", "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            shape = "projector process" if projector else "projector thread in each worker"
            print(
                f"== {store.backend} ({store.label}), {args.connections} connections, "
                f"{args.workers} worker(s), {shape}, {os.cpu_count()} cores"
            )
            meter = CpuMeter(server.pid, projector.pid if projector else None)
            asyncio.run(run_load(base, officer, till_keys, args, meter))
        finally:
            for process in (server, projector):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)


if __name__ == "__main__":
    main()

"""Many tenants provisioned at Entra's pace at once: per-tenant p99, and bytes per user.

    python -m bench.tenants_sim [--tenants 200] [--seconds 60] [--min-rate 0.2] [--max-rate 1.7]

A fresh embedded PostgreSQL (fsync and synchronous_commit on) and one ``scim-gateway serve``
process. Each tenant runs its own loop at its own rate (drawn between ``--min-rate`` and
``--max-rate`` creates per second, Entra's initial-sync range): a GET with a
``userName eq`` filter, then the POST, as Entra does. Bounded by ``--seconds``. Prints, as
JSON, the median and the worst of the tenants' p99 (GET and POST), their ratio, the
requests sent and refused, and the bytes per user of every table (``pg_total_relation_size``
over the users created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time

import aiohttp
import asyncpg

from bench.run_all import free_port, wait_ready
from bench.scim_load import user_body
from bench.scratch import scratch_dir
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.tenancy import Tenancy
from projections.tenancy import TenancyProjection

ACTOR = {"token_id": "", "owner": "bench", "token_description": "bench.tenants_sim"}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def _tokens(dsn: str, count: int) -> list[str]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        tenancy = Tenancy(EventStore(pool, [TenancyProjection()]))
        tokens = []
        for n in range(count):
            await tenancy.create_tenant(f"sim-{n}", "rfc", ACTOR)
            _, secret = await tenancy.create_token(f"sim-{n}", "bench@example.com", "sim", ("scim:read", "scim:write"),
                                                   ACTOR)
            tokens.append(secret)
        return tokens
    finally:
        await pool.close()


async def _tenant(session: aiohttp.ClientSession, base: str, token: str, rate: float, deadline: float,
                  latencies: list[float], refused: list[int]) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    created = 0
    await asyncio.sleep(random.random() / rate)  # tenants do not start in step
    while time.monotonic() < deadline:
        started = time.monotonic()
        name = f"u{created}-{random.getrandbits(32):x}@sim.example"
        for method, url, body in (("GET", f'{base}/Users?filter=userName eq "{name}"', None),
                                  ("POST", f"{base}/Users", user_body(name))):
            sent = time.monotonic()
            async with session.request(method, url, json=body, headers=headers) as response:
                await response.read()
                latencies.append(time.monotonic() - sent)
                if response.status >= 400:
                    refused.append(response.status)
        created += 1
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    return created


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(scratch_dir("scim-bench-sim-"))
    await migrate_database(dsn)
    tokens = await _tokens(dsn, args.tenants)
    port = free_port()
    env = {**os.environ, "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0", "SCIM_GATEWAY_POOL_MAX_SIZE": "16"}
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                                "--database-url", dsn], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        base = f"http://127.0.0.1:{port}/scim/v2"
        rng = random.Random(19)
        rates = [rng.uniform(args.min_rate, args.max_rate) for _ in tokens]
        latencies: list[list[float]] = [[] for _ in tokens]
        refused: list[int] = []
        deadline = time.monotonic() + args.seconds
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            created = await asyncio.gather(*(_tenant(session, base, token, rate, deadline, lat, refused)
                                             for token, rate, lat in zip(tokens, rates, latencies, strict=True)))
    finally:
        process.terminate()
        process.wait(30)
    connection = await asyncpg.connect(dsn)
    try:
        sizes = {r["relname"]: r["bytes"] for r in await connection.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS bytes FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")}
    finally:
        await connection.close()
    users = sum(created)
    p99s = [_p99(lat) for lat in latencies if lat]
    median = statistics.median(p99s)
    return {"tenants": args.tenants, "seconds": args.seconds, "users_created": users,
            "requests": sum(len(lat) for lat in latencies), "refused": len(refused),
            "p99_ms_median_tenant": round(median, 1), "p99_ms_worst_tenant": round(max(p99s), 1),
            "worst_over_median": round(max(p99s) / median, 2),
            "bytes_per_user": {table: round(size / max(users, 1)) for table, size in sorted(sizes.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--min-rate", type=float, default=0.2)
    parser.add_argument("--max-rate", type=float, default=1.7)
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()

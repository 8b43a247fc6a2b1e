"""Appends at concurrency 32 straight through ``EventStore``, one tenant or 32: what the
per-tenant head row costs (issue 19), without HTTP in the way.

    python -m bench.append_order [--runs 3] [--seconds 5] [--concurrency 32]

A fresh embedded PostgreSQL (fsync and synchronous_commit on); each worker has its own
connection and appends a new two-event stream (one autocommit statement) until time is up.
The modes alternate run by run; medians are printed as JSON. The script uses only
``EventStore.append``, so it runs unchanged on a commit before eventstore 0007.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from bench.scratch import scratch_dir
from eventstore import EventStore, NewEvent
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database


async def _rate(store: EventStore, tenants: list[uuid.UUID], seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            tenant = tenants[(number + done) % len(tenants)]
            await store.append(f"user-{uuid.uuid4()}", 0, [
                NewEvent("UserCreated", {"user_name": f"{done}@bench.example", "attributes": {}, "active": True}),
                NewEvent("AttributeChanged", {"attribute": "displayName", "old": None, "new": "x"})],
                {"actor": {"token_id": "bench"}}, tenant_id=tenant)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done / (time.perf_counter() - started)


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(scratch_dir("scim-bench-append-"))
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=args.concurrency, max_size=args.concurrency)
    store = EventStore(pool)
    modes = {"one_tenant": [uuid.uuid4()], f"{args.concurrency}_tenants":
             [uuid.uuid4() for _ in range(args.concurrency)]}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        await _rate(store, modes["one_tenant"], 1, args.concurrency)  # warm up
        for _ in range(args.runs):
            for mode, tenants in modes.items():
                rates[mode].append(await _rate(store, tenants, args.seconds, args.concurrency))
    finally:
        await pool.close()
    return {mode: {"appends_per_s": round(statistics.median(r), 1), "runs": [round(x, 1) for x in r]}
            for mode, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()

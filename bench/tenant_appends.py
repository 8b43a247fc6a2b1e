"""What one tenant's commit order costs a write: user creates appended the gateway's way (events,
view row, one autocommit statement) at concurrency 32, into one tenant, then spread over 32.

    python -m bench.tenant_appends [--seconds 5] [--concurrency 32]

Every append moves its tenant's ``tenant_heads`` row and holds it until its commit is flushed
(eventstore 0007: one tenant's appends commit densely, in ``tenant_position`` order), so one
tenant's appends commit one after another, each waiting for the previous one's WAL flush; the
same appends spread over tenants share their flushes. No HTTP, no gateway: the store alone.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

from bench.scratch import scratch_dir
from domain.policy import policy_for
from domain.streams import user_stream
from domain.user import CreateUser, decide, fold
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from projections.codec import encode_all
from projections.users_view import UNSTAMPED, view_write

_TENANT = "INSERT INTO tenants (tenant_id, name, profile, created_at, position) VALUES ($1, $2, 'bynder', now(), 0)"


async def rate(store: EventStore, tenants: list[uuid.UUID], seconds: float, concurrency: int) -> float:
    policy = policy_for("bynder")
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        tenant_id = tenants[index % len(tenants)]
        while time.perf_counter() < deadline:
            user_id = str(uuid.uuid4())
            name = f"{user_id}@bench.example"
            events = decide(None, CreateUser(user_id, {
                "userName": name, "name": {"givenName": "Bench", "familyName": "User"},
                "emails": [{"type": "work", "value": name, "primary": True}]}, True), policy, datetime.now(UTC))
            state = fold([(e, UNSTAMPED) for e in events])
            assert state is not None
            await store.append(user_stream(user_id), 0, encode_all(list(events)), {"actor": {"owner": "bench"}},
                               tenant_id=tenant_id, view=view_write(state, tenant_id))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    dsn = start_embedded(scratch_dir("scim-bench-tenants-"))
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=args.concurrency, max_size=args.concurrency)
    try:
        tenants = [uuid.uuid4() for _ in range(args.concurrency)]
        for n, tenant_id in enumerate(tenants):
            await pool.execute(_TENANT, tenant_id, f"bench-{n}")
        store = EventStore(pool)
        await rate(store, tenants, 1, args.concurrency)  # warm up: statements prepared, caches filled
        return {"one_tenant_per_s": round(await rate(store, tenants[:1], args.seconds, args.concurrency), 1),
                f"{len(tenants)}_tenants_per_s": round(await rate(store, tenants, args.seconds, args.concurrency), 1)}
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    print(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()

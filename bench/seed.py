"""Seed users by appending events in batches (not over HTTP), with the inline views.

    python -m bench.seed --database-url URL --tenant bench --users 100000 [--updates 0] [--data-dir DIR]

With ``--data-dir`` the personal values are sealed with the key-encryption key there (the
one ``serve`` on that data dir uses), as the gateway writes them; without, in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from domain.events import AttributeChanged, UserCreated
from domain.streams import user_stream
from eventstore import EventStore
from eventstore.crypto import FieldCipher
from eventstore.pool import create_pool
from gateway.keys import make_cipher
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.codec import encode_all
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView

ACTOR = {"actor": {"token_id": "", "owner": "bench-seed", "token_description": "bench.seed"}}


def _attributes(n: int) -> dict[str, object]:
    name = f"seed-{n}@bench.example"
    return {"userName": name, "externalId": f"ext-{n}", "name": {"givenName": "Seed", "familyName": f"User{n}"},
            "emails": [{"type": "work", "value": name, "primary": True}], "displayName": f"Seed User {n}"}


async def seed(dsn: str, tenant: str, users: int, updates: int = 0, batch: int = 1000,
               progress: bool = True, first: int = 0, cipher: FieldCipher | None = None) -> float:
    """Append ``users`` users numbered from ``first`` (each with ``updates`` extra
    AttributeChanged events); return seconds."""
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        store = EventStore(pool, [TenancyProjection(), UsersView()], cipher=cipher)
        tenant_id = (await Tenancy(store).tenant(tenant)).tenant_id
        started = time.perf_counter()

        async def chunk(low: int, high: int) -> None:
            async with pool.acquire() as connection, connection.transaction():
                for n in range(low, high):
                    user_id = str(uuid.uuid4())
                    attributes = _attributes(n)
                    events = [UserCreated(user_id, str(attributes["userName"]), attributes, True, "sso", "default")]
                    events += [AttributeChanged(user_id, "name.givenName", "Seed" if i == 0 else f"Seed{i - 1}",
                                                f"Seed{i}") for i in range(updates)]
                    await store.append(user_stream(user_id), 0, encode_all(events), ACTOR,
                                       tenant_id=tenant_id, connection=connection)

        chunks = [(i, min(i + batch, first + users)) for i in range(first, first + users, batch)]
        # One transaction at a time: every append to a tenant takes its head row (per-tenant
        # positions) until commit, so concurrent chunks of one tenant only queue (and time out).
        for low, high in chunks:
            await chunk(low, high)
            if progress:
                print(f"\rseeded {high - first:,}/{users:,}", end="", flush=True)
        if progress:
            print()
        return time.perf_counter() - started
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--updates", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="seal with the key-encryption key under this data dir")
    args = parser.parse_args()
    cipher = make_cipher(Settings(data_dir=args.data_dir))[0] if args.data_dir else None
    seconds = asyncio.run(seed(args.database_url, args.tenant, args.users, args.updates, cipher=cipher))
    events = args.users * (1 + args.updates)
    print(f"{events:,} events in {seconds:.1f} s ({events / seconds:,.0f} events/s)")


if __name__ == "__main__":
    main()

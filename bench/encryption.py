"""What sealing personal values costs a write: the users service with and without the cipher.

    python -m bench.encryption [--pairs 2000]

On one embedded PostgreSQL, writes alternate between a store without the cipher and one with
it (paired, so the machine's noise hits both alike): creates, updates with the user's data
key cached (a burst of changes to one user), and updates with the cache emptied before each
(the key is read from ``subject_keys``: the first write to a user in a while). Prints the
median latency of each, the median of the paired differences, and the ratio, as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from bench.scratch import scratch_dir
from domain.personal import user_subject
from domain.policy import policy_for
from domain.user import UserState
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.keys import make_cipher
from gateway.scim.patch import parse_patch
from gateway.settings import Settings
from gateway.tenancy import Principal, Tenancy
from gateway.users import Users
from gateway.writes import RequestContext
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView

ACTOR = {"token_id": "", "owner": "bench", "token_description": "bench.encryption"}


def _attributes(n: int, tag: str) -> dict[str, object]:
    name = f"enc-{tag}-{n}@bench.example"
    return {"userName": name, "externalId": f"ext-{tag}-{n}", "displayName": f"Bench User {n}",
            "name": {"givenName": "Bench", "familyName": f"User{n}"},
            "emails": [{"type": "work", "value": name, "primary": True}]}


# This process's CPU per write, by store: the client-side share of the cost (sealing itself).
CPU: dict[str, list[float]] = {"plain": [], "sealed": []}


async def _timed(action: Callable[[], Awaitable[object]], tag: str = "") -> float:
    started, cpu = time.perf_counter(), time.process_time()
    await action()
    if tag:
        CPU[tag].append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - started) * 1000


def _summary(plain: list[float], sealed: list[float]) -> dict[str, float]:
    cpu = {f"gateway_cpu_{tag}_mean_ms": round(statistics.fmean(CPU[tag]), 3) for tag in CPU if CPU[tag]}
    CPU["plain"], CPU["sealed"] = [], []
    return {**cpu,
        "plain_median_ms": round(statistics.median(plain), 3),
        "sealed_median_ms": round(statistics.median(sealed), 3),
        "paired_difference_median_ms": round(statistics.median(s - p for p, s in zip(plain, sealed, strict=True)), 3),
        "ratio": round(statistics.median(sealed) / statistics.median(plain), 3),
    }


async def main_async(pairs: int) -> dict:
    root = scratch_dir("scim-bench-encryption-")
    dsn = start_embedded(root / "pg")
    await migrate_database(dsn)
    settings = Settings(data_dir=root / "data", pool_min_size=2, pool_max_size=4)
    cipher, _ = make_cipher(settings)
    pool = await create_pool(dsn, min_size=2, max_size=4)
    try:
        plain_store = EventStore(pool, [TenancyProjection(), UsersView()])
        sealed_store = EventStore(pool, [TenancyProjection(), UsersView()], cipher=cipher)
        tenancy = Tenancy(plain_store)
        await tenancy.create_tenant("bench", "bynder", ACTOR)
        row = await tenancy.tenant("bench")
        principal = Principal(row.tenant_id, row.name, uuid.UUID(int=0), "bench", "bench",
                              frozenset({"admin"}), policy_for(row.profile, row.settings))  # type: ignore[arg-type]
        plain, sealed = Users(plain_store, UsersView(), settings), Users(sealed_store, UsersView(), settings)

        def ctx() -> RequestContext:
            return RequestContext(str(uuid.uuid4()), "PATCH", "/scim/v2/Users", "127.0.0.1", "bench")

        report: dict = {"pairs": pairs}
        created: dict[str, list[str]] = {"plain": [], "sealed": []}
        times: dict[str, list[float]] = {"plain": [], "sealed": []}
        for n in range(pairs):
            for tag, users in (("plain", plain), ("sealed", sealed)):
                holder: list[UserState] = []

                async def create(users: Users = users, tag: str = tag, holder: list = holder, n: int = n) -> None:
                    state, _ = await users.create(principal, ctx(), _attributes(n, tag), True)
                    holder.append(state)

                times[tag].append(await _timed(create, tag))
                created[tag].append(holder[0].user_id)
        report["create"] = _summary(times["plain"], times["sealed"])

        for label, forget in (("update_key_cached", False), ("update_key_read", True)):
            times = {"plain": [], "sealed": []}
            for n in range(pairs):
                for tag, users in (("plain", plain), ("sealed", sealed)):
                    user_id = created[tag][n]
                    if forget and tag == "sealed":
                        cipher.forget(row.tenant_id, user_subject(user_id))

                    command = parse_patch({"Operations": [{"op": "replace", "path": "name", "value": {
                        "givenName": f"{label}-{n}", "familyName": f"User{n}"}}]})

                    async def update(users: Users = users, user_id: str = user_id, command=command) -> None:
                        await users.update(principal, ctx(), user_id, command, None)

                    times[tag].append(await _timed(update, tag))
            report[label] = _summary(times["plain"], times["sealed"])
        return report
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.pairs)), indent=2))


if __name__ == "__main__":
    main()

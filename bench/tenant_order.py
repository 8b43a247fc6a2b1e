"""Single-tenant creates at concurrency 32: what the per-tenant head row costs (issue 19).

    python -m bench.tenant_order [--runs 3] [--seconds 10] [--concurrency 32] [--no-projector]

A fresh embedded PostgreSQL (fsync and synchronous_commit on), one tenant,
``scim-gateway serve``, then the ``post`` scenario of
``bench.run_all`` ``--runs`` times; prints the median as JSON. Every create of one tenant
takes that tenant's head row until it commits, so one tenant's commits are serialised: this
is the case that pays for it. Run it on a commit before eventstore 0007 and after, back to
back (the script only uses ``bench.run_all``, which both have).
"""

from __future__ import annotations

import argparse
import asyncio
import json

import asyncpg
import psutil

from bench.run_all import cli, gateway_figures
from bench.scratch import scratch_dir
from eventstore.embedded import start_embedded
from gateway.database import migrate_database


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(scratch_dir("scim-bench-order-"))
    admin = await asyncpg.connect(dsn)
    postgres_pid = psutil.Process(await admin.fetchval("SELECT pg_backend_pid()")).ppid()
    await admin.close()
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "bench@bench.example", "--scope", "admin")
    figures = await gateway_figures(dsn, token, postgres_pid, args, ("post",))
    return figures["post"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-projector", action="store_true",
                        help="serve --no-projector, with a scim-gateway projector process beside it")
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()

"""``projections rebuild`` throughput on a large log.

    python -m bench.rebuild [--users 100000] [--updates 9] [--runs 3] [--data-dir DIR] [--names users_view ...]

Seeds users x (1 + updates) events (personal values sealed with a key-encryption key, as the
gateway writes them) into an embedded PostgreSQL under ``--data-dir`` (reused when it is
already seeded, so repeated runs skip the seeding), then times ``projections.rebuild.rebuild``
for each named projection, ``--runs`` times, and reports the median in events/s of the whole
log (every event is read; each projection folds those it owns). Each run starts from vacuumed
live tables; the Python CPU counts the rebuilding process and any child processes it ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from pathlib import Path

import psutil

from bench.record import write_results
from bench.scratch import scratch_dir
from bench.seed import seed
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.keys import make_cipher
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.catalog import PROJECTIONS
from projections.rebuild import rebuild
from projections.tenancy import TenancyProjection

ACTOR = {"token_id": "", "owner": "bench", "token_description": "bench.rebuild"}


def python_cpu() -> float:
    """CPU seconds of this process and of its children that have ended (a rebuild's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds the embedded server's processes have used so far (live ones: a floor)."""
    postmaster = psutil.Process(int((data_dir / "pg" / "pgdata" / "postmaster.pid").read_text().split()[0]))
    total = 0.0
    for process in [postmaster, *postmaster.children()]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def main_async(args: argparse.Namespace) -> dict:
    data_dir = args.data_dir or scratch_dir("scim-bench-rebuild-")
    dsn = start_embedded(data_dir / "pg")
    await migrate_database(dsn)
    cipher, _ = make_cipher(Settings(data_dir=data_dir))
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        tenancy = Tenancy(EventStore(pool, [TenancyProjection()]))
        report: dict = {"data_dir": str(data_dir)}
        if not await tenancy.tenants():
            await tenancy.create_tenant("bench", "bynder", ACTOR)
            seconds = await seed(dsn, "bench", args.users, args.updates, progress=False, cipher=cipher)
            report["seed_events_per_s"] = round(args.users * (1 + args.updates) / seconds)
        store = EventStore(pool, cipher=cipher)
        total = await pool.fetchval("SELECT count(*) FROM events")
        report["events_in_log"] = total
        report["users"] = await pool.fetchval("SELECT count(*) FROM users_view")
        for name in args.names:
            seconds, python_cpus, pg_cpu = [], [], []
            for _ in range(args.runs):
                # As autovacuum leaves the live tables between real rebuilds: back to back, each
                # run would otherwise also time the dead rows of the runs before it.
                for table in PROJECTIONS[name].tables:
                    await pool.execute(f"VACUUM (ANALYZE) {table}")
                started, cpu, pg = time.perf_counter(), python_cpu(), postgres_cpu(data_dir)
                rows = await rebuild(dsn, store, name)
                seconds.append(time.perf_counter() - started)
                python_cpus.append(python_cpu() - cpu)
                pg_cpu.append(postgres_cpu(data_dir) - pg)
            report[name] = {"rows": rows, "runs_events_per_s": [round(total / s) for s in seconds],
                            "median_events_per_s": round(total / statistics.median(seconds)),
                            # CPU per event of the whole log: what bounds the rate on an idle machine.
                            # The rebuilding process and its worker processes, if it started any.
                            "python_cpu_us_per_event": round(statistics.median(python_cpus) / total * 1e6, 1),
                            "postgres_cpu_us_per_event": round(statistics.median(pg_cpu) / total * 1e6, 1)}
        return report
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=9)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="embedded PostgreSQL and KEK; seeded once, reused after")
    parser.add_argument("--names", nargs="+", default=["users_view"],
                        help="projections to rebuild (tenancy, users_view, groups, audit)")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    write_results("rebuild", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

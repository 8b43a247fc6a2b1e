"""Replay and export throughput on a large log.

    python -m bench.replay_export [--users 100000] [--updates 9]

Seeds users x (1 + updates) events by appending in batches, then measures, on the same
embedded PostgreSQL: the audit projector catching up from zero (events/s),
``projections rebuild users_view`` (events/s), a whole-tenant replay (events/s), and
``audit export --format jsonl`` of every audit row in a child process (rows/s, peak RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.seed import seed
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.replay import Replay
from gateway.tenancy import Tenancy
from projections.audit import AuditProjection
from projections.rebuild import rebuild
from projections.runner import CatchUpRunner


def cli(dsn: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--database-url", dsn],
                          check=True, capture_output=True, text=True).stdout.strip()


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(Path(tempfile.mkdtemp(prefix="scim-bench-replay-")))
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    report: dict = {"users": args.users, "events_per_user": 1 + args.updates}
    seconds = await seed(dsn, "bench", args.users, args.updates, progress=False)
    events = args.users * (1 + args.updates)
    report["seed_events_per_s"] = round(events / seconds)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        store = EventStore(pool)
        total = await pool.fetchval("SELECT count(*) FROM events")
        report["events_in_log"] = total

        started = time.perf_counter()
        applied = await CatchUpRunner(store, "audit", AuditProjection(), batch_size=5000).catch_up()
        report["audit_projection_events_per_s"] = round(applied / (time.perf_counter() - started))
        report["audit_rows"] = await pool.fetchval("SELECT count(*) FROM audit_trail")

        started = time.perf_counter()
        await rebuild(dsn, store, "users_view")
        report["rebuild_users_view_events_per_s"] = round(total / (time.perf_counter() - started))

        tenant_id = (await Tenancy(store).tenant("bench")).tenant_id
        started = time.perf_counter()
        replayed = 0
        async for _ in Replay(store).tenant_at(tenant_id, None):
            replayed += 1
        report["tenant_replay_events_per_s"] = round(total / (time.perf_counter() - started))
        report["tenant_replay_users"] = replayed
    finally:
        await pool.close()

    output = Path(tempfile.mkdtemp()) / "audit.jsonl"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gateway.cli", "audit", "export", "--tenant", "bench", "--format", "jsonl",
                    "-o", str(output), "--database-url", dsn], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    rows = sum(1 for _ in output.open("rb"))
    report["export_jsonl_rows"] = rows
    report["export_jsonl_rows_per_s"] = round(rows / elapsed)
    report["export_jsonl_seconds_including_start"] = round(elapsed, 1)
    # Peak RSS of the children so far: the export is by far the largest of them.
    report["export_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    report["export_file_mb"] = round(output.stat().st_size / 2**20, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=9)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"replay-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

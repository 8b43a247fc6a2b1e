"""Replay and export throughput on a large log.

    python -m bench.replay_export [--users 100000] [--updates 9]
    python -m bench.replay_export --export-only [--users 100000] [--updates 9]

Seeds users x (1 + updates) events by appending in batches, then measures, on the same
embedded PostgreSQL: the audit projector catching up from zero (events/s),
``projections rebuild users_view`` (events/s), a whole-tenant replay (events/s),
``audit export --format jsonl`` of every audit row in a child process (rows/s, peak RSS),
and the HTTP export: a ``serve`` child process paged through with ``format=jsonl`` at the
largest page (``limit=10000``, following ``X-Next-Cursor`` as a SIEM does) until a page
comes back empty (rows/s, the gateway's peak RSS, from ``VmHWM``).

``--export-only`` measures the two exports alone: instead of seeding the log and running
the projector, it writes the same audit rows (one create and ``updates`` changes per user,
with the projector's values) with one set-based INSERT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

from bench.record import write_results
from bench.scratch import scratch_dir
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


# The rows the audit projector writes for bench.seed's users, written at once: the export's
# input without the minutes of seeding the log. One create and $3 - 1 updates per user;
# rows $4 to $5 - 1 of $2, numbered after seq $6.
_SEED_AUDIT = """
INSERT INTO audit_trail (seq, event_id, position, recorded_at, tenant_id, user_id, user_name, action,
    attribute, old_value, new_value, actor_token_id, actor_description, actor_owner, request_id,
    client_request_id, source_ip, user_agent, user_name_folded, actor_owner_folded)
SELECT $6 + 1 + g, gen_random_uuid(), 1000 + g, now() - make_interval(secs => ($2 - g) / 1000.0), $1,
       md5('bench-user-' || g / $3)::uuid, 'seed-' || g / $3 || '@bench.example',
       CASE WHEN g % $3 = 0 THEN 'create' ELSE 'update' END,
       CASE WHEN g % $3 = 0 THEN NULL ELSE 'name.givenName' END,
       CASE WHEN g % $3 = 0 THEN NULL ELSE to_jsonb('Seed' || (g % $3 - 1)) END,
       CASE WHEN g % $3 = 0 THEN jsonb_build_object(
           'userName', 'seed-' || g / $3 || '@bench.example', 'externalId', 'ext-' || g / $3,
           'name', jsonb_build_object('givenName', 'Seed', 'familyName', 'User' || g / $3),
           'emails', jsonb_build_array(jsonb_build_object(
               'type', 'work', 'value', 'seed-' || g / $3 || '@bench.example', 'primary', true)),
           'displayName', 'Seed User ' || g / $3, 'active', true)
       ELSE to_jsonb('Seed' || (g % $3)) END,
       NULL, 'bench.seed', 'bench-seed', gen_random_uuid()::text, NULL, '127.0.0.1', 'bench/1.0',
       'seed-' || g / $3 || '@bench.example', 'bench-seed'
FROM generate_series($4, $5 - 1) AS g
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_cpu(dsn: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving the gateway's pool, by pid."""
    connection = await asyncpg.connect(dsn)
    try:
        pids = [r["pid"] for r in await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'scim-gateway'")]
    finally:
        await connection.close()
    return {pid: cpu_seconds(pid) for pid in pids}


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


async def http_export(dsn: str, checkout: Path | None = None) -> dict:
    """Every audit row over HTTP, JSON Lines, page after page, from a ``serve`` child process
    (of another ``checkout`` with its own .venv, for a baseline)."""
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "siem@bench.example",
                "--description", "SIEM export", "--scope", "audit:read").splitlines()[-1]
    port = free_port()
    python = str(checkout / ".venv" / "bin" / "python") if checkout else sys.executable
    server = subprocess.Popen([python, "-m", "gateway.cli", "serve", "--port", str(port), "--no-migrate",
                               "--database-url", dsn], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "SCIM_GATEWAY_ACCESS_LOG": "false"}, cwd=checkout)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for _ in range(300):
                try:
                    async with session.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            rss_before = peak_rss_mb(server.pid)
            gateway_cpu, client_cpu = cpu_seconds(server.pid), resource.getrusage(resource.RUSAGE_SELF)
            database_cpu = await backend_cpu(dsn)
            rows = pages = size = 0
            cursor: str | None = None
            started = time.perf_counter()
            while True:
                params = {"format": "jsonl", "limit": "10000", **({"cursor": cursor} if cursor else {})}
                async with session.get(f"{base}/api/2/audit/events", params=params) as response:
                    response.raise_for_status()
                    cursor = response.headers["X-Next-Cursor"]
                    page_rows = 0
                    async for chunk in response.content.iter_chunked(1 << 20):
                        page_rows += chunk.count(b"\n")
                        size += len(chunk)
                pages += 1
                if page_rows == 0:
                    break
                rows += page_rows
            elapsed = time.perf_counter() - started
            client = resource.getrusage(resource.RUSAGE_SELF)
            database = sum(cpu - database_cpu.get(pid, 0.0) for pid, cpu in (await backend_cpu(dsn)).items())
            cpu = {"gateway": cpu_seconds(server.pid) - gateway_cpu, "postgresql_backends": database,
                   "client": client.ru_utime + client.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime}
            return {"http_export_cpu_us_per_row": {k: round(v / rows * 1e6, 2) for k, v in cpu.items()},
                    "http_export_jsonl_rows": rows, "http_export_jsonl_pages": pages - 1,
                    "http_export_jsonl_rows_per_s": round(rows / elapsed),
                    "http_export_jsonl_seconds": round(elapsed, 1), "http_export_jsonl_mb": round(size / 2**20, 1),
                    "http_gateway_rss_mb_before": rss_before, "http_gateway_peak_rss_mb": peak_rss_mb(server.pid)}
    finally:
        server.terminate()
        server.wait(30)


async def seed_audit_rows(dsn: str, users: int, updates: int) -> float:
    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        store = EventStore(pool)
        await CatchUpRunner(store, "audit", AuditProjection()).catch_up()  # the tenant's and token's rows
        tenant_id = (await Tenancy(store).tenant("bench")).tenant_id
        started = time.perf_counter()
        total = users * (1 + updates)
        base = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit_trail WHERE tenant_id = $1", tenant_id)
        for low in range(0, total, 50_000):
            await pool.execute(_SEED_AUDIT, tenant_id, total, 1 + updates, low, min(low + 50_000, total), base)
        await pool.execute("ANALYZE audit_trail")
        return time.perf_counter() - started
    finally:
        await pool.close()


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(scratch_dir("scim-bench-replay-"))
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    report: dict = {"users": args.users, "events_per_user": 1 + args.updates}
    if args.export_only:
        report["seed_audit_rows_seconds"] = round(await seed_audit_rows(dsn, args.users, args.updates), 1)
        report.update(cli_export(dsn))
        report.update(await exports_over_http(dsn, args.runs, args.baseline.resolve() if args.baseline else None))
        return report
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

    report.update(cli_export(dsn))
    report.update(await exports_over_http(dsn, args.runs, args.baseline))
    return report


async def exports_over_http(dsn: str, runs: int, baseline: Path | None) -> dict:
    """``runs`` HTTP exports of every row, taking turns with the baseline's (so both see the
    same noise): medians, each run's rate, and the last run's details."""
    sides = {"http": None, **({"baseline_http": baseline} if baseline else {})}
    rates: dict[str, list[int]] = {name: [] for name in sides}
    report: dict = {}
    for _ in range(runs):
        for name, checkout in sides.items():
            run = await http_export(dsn, checkout)
            rates[name].append(run["http_export_jsonl_rows_per_s"])
            report[f"{name}_last_run"] = run
    for name, values in rates.items():
        report[f"{name}_export_jsonl_rows_per_s_median"] = statistics.median(values)
        report[f"{name}_export_jsonl_rows_per_s_runs"] = values
    return report


def cli_export(dsn: str) -> dict:
    """``audit export --format jsonl`` of every row, in a child process (its start-up included)."""
    output = scratch_dir("scim-bench-export-") / "audit.jsonl"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gateway.cli", "audit", "export", "--tenant", "bench", "--format", "jsonl",
                    "-o", str(output), "--database-url", dsn], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    rows = sum(1 for _ in output.open("rb"))
    report = {"export_jsonl_rows": rows, "export_jsonl_rows_per_s": round(rows / elapsed),
              "export_jsonl_seconds_including_start": round(elapsed, 1),
              # Peak RSS of the children so far: the export is by far the largest of them.
              "export_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
              "export_file_mb": round(output.stat().st_size / 2**20, 1)}
    output.unlink()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=9)
    parser.add_argument("--runs", type=int, default=1, help="HTTP exports of the same rows (each side)")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="also page the HTTP export of a serve from this checkout (its .venv), same rows")
    parser.add_argument("--export-only", action="store_true",
                        help="write the audit rows with one INSERT and measure the exports alone")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    write_results("replay", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

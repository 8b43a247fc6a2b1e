"""Every benchmark figure in one run on one machine, with the ceilings and a peer.

    python -m bench.run_all [--users 10000] [--runs 3] [--seconds 10] [--scales 10000,100000]

1. A fresh embedded PostgreSQL (fsync and synchronous_commit on), tenant ``bench``.
2. Seed users by appending events in batches; start ``scim-gateway serve``.
3. Each scenario (post, patch, get, filter, mixed) ``--runs`` times at concurrency 32;
   medians are reported.
4. The same scenarios against ``scim2-server`` (in-memory reference server) on loopback.
5. Ceilings measured in the same run: single-row INSERT+COMMIT through asyncpg with 16
   connections on the same PostgreSQL, a bare aiohttp handler, and ``bench.ceiling`` (one
   statement per request: event + view row for POST and PATCH, a read by primary key or by
   an indexed userName for GET and filter), and ``bench.floor`` (the ceiling's handler writing
   the rows this schema stores for a create or a PATCH, one statement per request: what the
   schema costs against the ceiling, like for like), in turns with the ceiling.
6. Scale runs: read and write scenarios at each size in ``--scales``.
Results are printed as a table and written to ``bench/results/run-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import aiohttp
import asyncpg
import psutil

from bench.record import write_results
from bench.scim_load import Load, Result, user_body
from bench.scratch import scratch_dir
from bench.seed import seed
from eventstore import EventStore
from eventstore.crypto import FieldCipher
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.keys import make_cipher
from gateway.settings import Settings
from projections.audit import AuditProjection
from projections.runner import CatchUpRunner

SCENARIOS = ("post", "patch", "get", "filter", "mixed")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready")
            await asyncio.sleep(0.1)


def cli(dsn: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--database-url", dsn],
                          check=True, capture_output=True, text=True).stdout.strip()


async def median_runs(load: Load, scenario: str, runs: int, seconds: float, pids: dict) -> dict:
    results: list[Result] = []
    for _ in range(runs):
        results.append(await load.run(scenario, 1_000_000, seconds, pids))
    return summarise(results)


def summarise(results: list[Result]) -> dict:
    """The median run's figures, with the median rate and p99 over all runs."""
    best = sorted(results, key=lambda r: r.rate)[len(results) // 2]
    summary = best.summary()
    summary["runs_req_per_s"] = [round(r.rate, 1) for r in results]
    summary["req_per_s"] = round(statistics.median(r.rate for r in results), 1)
    summary["p99_ms"] = round(statistics.median(r.percentile(99) for r in results), 2)
    return summary


# The key-encryption key of the data dir ``serve`` uses here (the working directory's default):
# the seed seals as the gateway does, and the audit projection of the seed opens it.
@functools.cache
def cipher() -> FieldCipher:
    return make_cipher(Settings())[0]


async def project_audit(dsn: str) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        await CatchUpRunner(EventStore(pool, cipher=cipher()), "audit", AuditProjection(), batch_size=5000).catch_up()
    finally:
        await pool.close()


async def raw_insert_rate(dsn: str, seconds: float, connections: int = 16) -> float:
    """Single-row INSERT + COMMIT per transaction, autocommit, ``connections`` in parallel."""
    setup = await asyncpg.connect(dsn)
    await setup.execute("DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (id bigserial PRIMARY KEY, "
                        "payload jsonb NOT NULL)")
    await setup.close()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        connection = await asyncpg.connect(dsn)
        try:
            while time.perf_counter() < deadline:
                await connection.execute("INSERT INTO bench_raw (payload) VALUES ('{\"x\": 1}')")
                done += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.perf_counter() - started)


async def gateway_figures(dsn: str, token: str, postgres_pid: int, args: argparse.Namespace,
                          scenarios: tuple[str, ...]) -> dict:
    port = free_port()
    env = {**os.environ, "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0", "SCIM_GATEWAY_POOL_MAX_SIZE": "16"}
    serve = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--database-url", dsn,
             "--workers", str(args.workers)]
    process = subprocess.Popen(serve + (["--no-projector"] if args.no_projector else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    # The deployed shape (deploy/): the audit projector and the sealer in a process of their own,
    # on the same two cores, so their work is still done and counted.
    projector = subprocess.Popen([sys.executable, "-m", "gateway.cli", "projector", "--database-url", dsn],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) \
        if args.no_projector else None
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        load = Load(f"http://127.0.0.1:{port}/scim/v2", token, args.concurrency)
        pids = {"gateway": [process.pid], "postgres": [postgres_pid]}
        if projector is not None:
            pids["projector"] = [projector.pid]
        return {s: await median_runs(load, s, args.runs, args.seconds, pids) for s in scenarios}
    finally:
        for each in (process, projector):
            if each is not None:
                each.terminate()
                each.wait(30)


async def peer_figures(args: argparse.Namespace) -> dict:
    port = free_port()
    token = uuid.uuid4().hex
    process = subprocess.Popen(["scim2-server", "--port", str(port), "--bearer-token", token],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base}/ServiceProviderConfig")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for n in range(args.peer_users):
                async with session.post(f"{base}/Users", json=user_body(f"peer-{n}@bench.example")) as r:
                    await r.read()
        load = Load(base, token, args.concurrency)
        pids = {"scim2-server": [process.pid]}
        return {s: await median_runs(load, s, args.runs, args.seconds, pids) for s in SCENARIOS}
    finally:
        process.terminate()
        process.wait(30)


async def bare_figure(args: argparse.Namespace) -> dict:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.bare", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/")
        load = Load(f"http://127.0.0.1:{port}", "x", args.concurrency)
        load.ids = ["x"]
        load.names = ["x"]
        results = [await load.run("get", 1_000_000, args.seconds, {"bare": [process.pid]}) for _ in range(args.runs)]
        return {"req_per_s": round(statistics.median(r.rate for r in results), 1),
                "runs_req_per_s": [round(r.rate, 1) for r in results]}
    finally:
        process.terminate()
        process.wait(30)


class Handler:
    """``bench.ceiling`` or ``bench.floor`` in a process of its own, and a load on it."""

    def __init__(self, name: str, dsn: str, concurrency: int) -> None:
        self.name = name
        self.port = free_port()
        # stderr kept: the floor says there why it cannot start (no gateway write to copy yet).
        self.process = subprocess.Popen([sys.executable, "-m", f"bench.{name}", str(self.port), dsn],
                                        stdout=subprocess.DEVNULL)
        self.load = Load(f"http://127.0.0.1:{self.port}/scim/v2", "x", concurrency)
        if name == "ceiling":
            self.load.ids = [str(uuid.uuid4()) for _ in range(10_000)]  # its PATCH upserts

    async def ready(self) -> None:
        await wait_ready(f"http://127.0.0.1:{self.port}/readyz")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def floor_patch_ids(dsn: str) -> list[str]:
    """Users the floor's POSTs made: its PATCH updates them."""
    connection = await asyncpg.connect(dsn)
    try:
        return [str(r["id"]) for r in await connection.fetch("SELECT id FROM floor_users_view LIMIT 10000")]
    finally:
        await connection.close()


async def ceiling_figures(dsn: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """POST, PATCH, GET and filter against ``bench.ceiling`` (one statement per request, same
    PostgreSQL, same client), and POST and PATCH against ``bench.floor`` (the ceiling writing
    the rows this schema stores). The two take turns run by run, so both see the same minutes."""
    handlers = {name: Handler(name, dsn, args.concurrency) for name in ("ceiling", "floor")}
    try:
        for handler in handlers.values():
            await handler.ready()
        figures: dict[str, dict] = {"ceiling": {}, "floor": {}}
        for scenario in ("post", "patch"):
            if scenario == "patch":
                handlers["floor"].load.ids = await floor_patch_ids(dsn)
            results: dict[str, list[Result]] = {"ceiling": [], "floor": []}
            for turn in range(args.runs):
                for name in ("ceiling", "floor") if turn % 2 == 0 else ("floor", "ceiling"):
                    pids = {name: [handlers[name].process.pid]}
                    results[name].append(await handlers[name].load.run(scenario, 1_000_000, args.seconds, pids))
            for name in figures:
                figures[name][scenario] = summarise(results[name])
        # The reads go to rows the writes made: ids the PATCH runs upserted, names the POSTs gave.
        load = handlers["ceiling"].load
        connection = await asyncpg.connect(dsn)
        try:
            load.ids = [str(r["id"]) for r in await connection.fetch("SELECT id FROM ceiling_view LIMIT 10000")]
            load.names = [r["user_name"] for r in await connection.fetch(
                "SELECT user_name FROM ceiling_view WHERE user_name IS NOT NULL LIMIT 10000")]
        finally:
            await connection.close()
        pids = {"ceiling": [handlers["ceiling"].process.pid]}
        figures["ceiling"].update({s: await median_runs(load, s, args.runs, args.seconds, pids)
                                   for s in ("get", "filter")})
        return figures["ceiling"], figures["floor"]
    finally:
        for handler in handlers.values():
            handler.stop()


async def main_async(args: argparse.Namespace) -> dict:
    data = scratch_dir("scim-bench-")
    dsn = start_embedded(data)
    admin = await asyncpg.connect(dsn)
    postgres_pid = await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE backend_type = 'postmaster'") \
        or psutil.Process(await admin.fetchval("SELECT pg_backend_pid()")).ppid()
    settings = {r["name"]: r["setting"] for r in await admin.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')")}
    await admin.close()
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "bench@bench.example", "--scope", "admin")
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "postgres": settings},
                    "args": vars(args)}

    seeded = 0
    report["scales"] = {}
    for size in [args.users, *[s for s in args.scales if s != args.users]]:
        seconds = await seed(dsn, "bench", size - seeded, progress=False, first=seeded, cipher=cipher())
        print(f"seeded {size - seeded:,} users in {seconds:.1f} s", file=sys.stderr)
        await project_audit(dsn)  # so the gateway's projector is not busy with the seed while measured
        seeded = size
        scenarios = SCENARIOS if size == args.users else ("post", "patch", "get", "filter")
        figures = await gateway_figures(dsn, token, postgres_pid, args, scenarios)
        report["scales"][str(size)] = figures
        for name, figure in figures.items():
            print(f"{size:>9,} users  {name:<7} {figure['req_per_s']:>8,.0f} req/s  p99 {figure['p99_ms']:>7.1f} ms  "
                  f"errors {figure['errors']}", file=sys.stderr)
    report["gateway"] = report["scales"][str(args.users)]
    report["raw_insert_commit_per_s"] = round(statistics.median(
        [await raw_insert_rate(dsn, args.seconds) for _ in range(args.runs)]), 1)
    report["bare_aiohttp"] = await bare_figure(args)
    report["one_statement_ceiling"], report["schema_floor"] = await ceiling_figures(dsn, args)
    if not args.no_peer:
        report["scim2_server"] = await peer_figures(args)
    gateway = report["gateway"]
    report["ratios"] = {
        "post_over_raw_insert": round(gateway["post"]["req_per_s"] / report["raw_insert_commit_per_s"], 3),
        "get_over_bare_aiohttp": round(gateway["get"]["req_per_s"] / report["bare_aiohttp"]["req_per_s"], 3),
        **{f"{s}_over_one_statement_ceiling": round(
            gateway[s]["req_per_s"] / report["one_statement_ceiling"][s]["req_per_s"], 3)
           for s in ("post", "patch", "get", "filter")},
        # What this schema costs against the ceiling, like for like, and where the gateway is.
        **{f"{s}_schema_floor_over_one_statement_ceiling": round(
            report["schema_floor"][s]["req_per_s"] / report["one_statement_ceiling"][s]["req_per_s"], 3)
           for s in ("post", "patch")},
        **{f"{s}_over_schema_floor": round(gateway[s]["req_per_s"] / report["schema_floor"][s]["req_per_s"], 3)
           for s in ("post", "patch")},
    }
    if "scim2_server" in report:
        report["ratios"].update({f"{s}_over_scim2_server": round(
            gateway[s]["req_per_s"] / max(report["scim2_server"][s]["req_per_s"], 0.1), 2) for s in SCENARIOS})
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--scales", default="", help="comma-separated larger sizes, e.g. 100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-projector", action="store_true",
                        help="serve --no-projector, with a scim-gateway projector process beside it")
    parser.add_argument("--peer-users", type=int, default=1000)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    args.scales = [int(s) for s in args.scales.split(",") if s]
    report = asyncio.run(main_async(args))
    path = write_results("run", report)
    print(json.dumps({"ratios": report["ratios"], "raw_insert_commit_per_s": report["raw_insert_commit_per_s"],
                      "bare_aiohttp": report["bare_aiohttp"]["req_per_s"],
                      "one_statement_ceiling": {s: f["req_per_s"] for s, f in report["one_statement_ceiling"].items()},
                      "schema_floor": {s: f["req_per_s"] for s, f in report["schema_floor"].items()}},
                     indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

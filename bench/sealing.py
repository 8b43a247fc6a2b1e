"""What sealing costs the write path, and whether the sealer keeps up (docs/integrity.md).

    python -m bench.sealing [--runs 3] [--seconds 10] [--concurrency 8]

1. A fresh embedded PostgreSQL (fsync and synchronous_commit on), tenant ``bench``.
2. ``scim-gateway serve`` with sealing off, then on, alternately, ``--runs`` times each:
   POST /Users at ``--concurrency`` writers for ``--seconds``; medians per mode.
3. After each sealing-on run: how far the sealer was behind when the load stopped, and how
   long it took to catch up (its lag, in events and seconds).
4. The sealer alone: the whole log re-sealed from zero by one ``SealerRunner`` (events/s),
   next to the fastest write rate measured in events/s.
Results are printed and written to ``bench/results/sealing-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench.record import write_results
from bench.run_all import cli, free_port, wait_ready
from bench.scim_load import Load
from bench.scratch import scratch_dir
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from eventstore.signed_note import SigningKey
from gateway.database import migrate_database
from projections.sealer import NAME, CheckpointPolicy, Sealer, SealerRunner

_LAG = """SELECT (SELECT coalesce(max(position), 0) FROM events)
               - coalesce((SELECT position FROM projection_checkpoints WHERE name = $1), 0)"""


async def write_run(dsn: str, token: str, key_file: Path, sealing: bool, args: argparse.Namespace) -> dict:
    port = free_port()
    env = {**os.environ, "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0", "SCIM_GATEWAY_POOL_MAX_SIZE": "16",
           "SCIM_GATEWAY_SEALING": "true" if sealing else "false", "SCIM_GATEWAY_SIGNING_KEY_FILE": str(key_file)}
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                                "--database-url", dsn], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    connection = await asyncpg.connect(dsn)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        before = await connection.fetchval("SELECT count(*) FROM events")
        load = Load(f"http://127.0.0.1:{port}/scim/v2", token, args.concurrency)
        result = await load.run("post", 1_000_000, args.seconds, {"gateway": [process.pid]})
        events = await connection.fetchval("SELECT count(*) FROM events") - before
        figure = {"req_per_s": round(result.rate, 1), "p50_ms": round(result.percentile(50), 2),
                  "p99_ms": round(result.percentile(99), 2), "errors": result.errors,
                  "events_per_s": round(events / result.seconds, 1),
                  # CPU of the gateway process (sealer included) per request: steadier than
                  # req/s on a machine others share.
                  "gateway_cpu_ms_per_request": round(result.cpu["gateway"] / max(result.requests, 1) * 1000, 3)}
        if sealing:
            figure["sealer_lag_events_at_stop"] = await connection.fetchval(_LAG, NAME)
            started = time.perf_counter()
            while await connection.fetchval(_LAG, NAME) > 0:
                await asyncio.sleep(0.01)
                if time.perf_counter() - started > 120:
                    raise RuntimeError("the sealer did not catch up within 120 s")
            figure["sealer_drain_seconds"] = round(time.perf_counter() - started, 3)
        return figure
    finally:
        await connection.close()
        process.terminate()
        process.wait(30)


async def reseal_rate(dsn: str, key: SigningKey) -> dict:
    """The sealer on its own: drop every seal and seal the whole log again."""
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection, connection.transaction():
            # Seals are append-only by trigger; the benchmark's superuser steps around it.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute("TRUNCATE event_seals, integrity_heads, integrity_checkpoints")
            await connection.execute("DELETE FROM projection_checkpoints WHERE name = $1", NAME)
        runner = SealerRunner(EventStore(pool), Sealer(key, CheckpointPolicy()), batch_size=5000)
        started = time.perf_counter()
        sealed = await runner.catch_up()
        seconds = time.perf_counter() - started
        return {"events": sealed, "seconds": round(seconds, 2), "events_per_s": round(sealed / seconds, 1)}
    finally:
        await pool.close()


async def main_async(args: argparse.Namespace) -> dict:
    data = scratch_dir("scim-bench-sealing-")
    dsn = start_embedded(data)
    await migrate_database(dsn)
    key = SigningKey.generate("scim-gateway")
    key_file = data / "signing.key"
    key_file.write_text(key.text())
    cli(dsn, "tenant", "create", "bench")
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "bench@bench.example", "--scope", "admin")
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for run in range(args.runs):
        for mode in ("off", "on"):
            figure = await write_run(dsn, token, key_file, mode == "on", args)
            runs[mode].append(figure)
            print(f"run {run + 1} sealing {mode:<3} {figure}", file=sys.stderr)
    medians = {mode: {k: round(statistics.median(f[k] for f in figures), 2) for k in figures[0]}
               for mode, figures in runs.items()}
    reseal = await reseal_rate(dsn, key)
    fastest_writes = max(f["events_per_s"] for figures in runs.values() for f in figures)
    return {
        "args": vars(args), "cpus": os.cpu_count(), "runs": runs, "medians": medians,
        "on_over_off": round(medians["on"]["req_per_s"] / medians["off"]["req_per_s"], 3),
        # Each "on" run against the "off" run just before it: drift in the machine's load
        # (2 shared cores) cancels out of a pair better than out of two medians.
        "paired_on_over_off": round(statistics.median(
            on["req_per_s"] / off["req_per_s"] for off, on in zip(runs["off"], runs["on"], strict=True)), 3),
        "paired_cpu_on_over_off": round(statistics.median(
            on["gateway_cpu_ms_per_request"] / off["gateway_cpu_ms_per_request"]
            for off, on in zip(runs["off"], runs["on"], strict=True)), 3),
        "reseal": reseal, "fastest_write_events_per_s": fastest_writes,
        "sealer_over_fastest_writes": round(reseal["events_per_s"] / fastest_writes, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    path = write_results("sealing", report)
    print(json.dumps({k: report[k] for k in ("medians", "on_over_off", "paired_on_over_off",
                                              "paired_cpu_on_over_off", "reseal", "fastest_write_events_per_s",
                                              "sealer_over_fastest_writes")}, indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

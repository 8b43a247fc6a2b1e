"""The write targets of issue 13 measured in turns: the gateway, ``bench.ceiling`` and
``bench.floor`` loaded one after the other, round by round, in the same minutes.

    python -m bench.shares [--runs 4] [--seconds 6] [--users 10000] [--workers 1] [--no-projector]

A sitting of ``bench.run_all`` measures the gateway first and the ceilings minutes later, on
a machine whose speed moves by up to 40% between minutes; the shares it reports carry that.
Here each round loads all three, who goes first rotating, so a share compares like minutes:

1. A fresh embedded PostgreSQL, tenant ``bench``, ``--users`` users seeded, their audit rows
   projected; the gateway serving it (``--workers``, ``--no-projector`` as in ``bench.ab``).
2. A short POST and PATCH run through the gateway, so the floor has real rows of each to copy.
3. The ceiling and the floor start; per scenario (post, patch), ``--runs`` rounds of the three.
4. Medians per server, and the shares: gateway / ceiling (the issue's target), floor / ceiling
   (what the schema costs, like for like), gateway / floor. Written to ``bench/results/shares-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import asyncpg
import psutil

from bench.ab import Side, load_options
from bench.record import write_results
from bench.run_all import Handler, cipher, cli, floor_patch_ids, project_audit, summarise, wait_ready
from bench.scim_load import Load, Result
from bench.scratch import scratch_dir
from bench.seed import seed
from eventstore.embedded import start_embedded
from gateway.database import migrate_database

SCENARIOS = ("post", "patch")


async def main_async(args: argparse.Namespace) -> dict:
    dsn = start_embedded(scratch_dir("scim-shares-"))
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "bench@bench.example", "--scope", "admin")
    await seed(dsn, "bench", args.users, progress=False, cipher=cipher())
    await project_audit(dsn)
    connection = await asyncpg.connect(dsn)
    try:  # PostgreSQL's CPU per request, for each of the three (its backends are the postmaster's children)
        postgres = [psutil.Process(await connection.fetchval("SELECT pg_backend_pid()")).ppid()]
    finally:
        await connection.close()
    gateway = Side("gateway", None, dsn, args)
    handlers: list[Handler] = []
    try:
        await wait_ready(f"http://127.0.0.1:{gateway.port}/readyz")
        loads = {"gateway": Load(f"http://127.0.0.1:{gateway.port}/scim/v2", token, args.concurrency)}
        for scenario in SCENARIOS:
            await loads["gateway"].run(scenario, 1_000_000, 2, gateway.pids)
        await asyncio.sleep(2)  # the projector's rows of those writes, which the floor copies
        for name in ("ceiling", "floor"):
            handlers.append(Handler(name, dsn, args.concurrency))
            await handlers[-1].ready()
            loads[name] = handlers[-1].load
        pids = {"gateway": {**gateway.pids, "postgres": postgres},
                **{h.name: {h.name: [h.process.pid], "postgres": postgres} for h in handlers}}
        order = ["gateway", "ceiling", "floor"]
        results: dict[str, dict[str, list[Result]]] = {name: {s: [] for s in SCENARIOS} for name in order}
        for scenario in SCENARIOS:
            if scenario == "patch":
                loads["floor"].ids = await floor_patch_ids(dsn)
            for round_ in range(args.runs):
                for name in order[round_ % 3:] + order[:round_ % 3]:
                    result = await loads[name].run(scenario, 1_000_000, args.seconds, pids[name])
                    results[name][scenario].append(result)
                    print(f"{scenario:<6} {name:<8} {result.rate:>8,.0f} req/s  p99 {result.percentile(99):>7.1f} ms",
                          file=sys.stderr)
    finally:
        gateway.stop()
        for handler in handlers:
            handler.stop()
    report: dict = {"args": vars(args), "scenarios": {}}
    for scenario in SCENARIOS:
        figures = {name: summarise(results[name][scenario]) for name in order}
        rate = {name: figures[name]["req_per_s"] for name in order}
        report["scenarios"][scenario] = {
            **figures,
            "gateway_over_ceiling": round(rate["gateway"] / rate["ceiling"], 3),
            "floor_over_ceiling": round(rate["floor"] / rate["ceiling"], 3),
            "gateway_over_floor": round(rate["gateway"] / rate["floor"], 3),
        }
    return report


def main() -> None:
    args = load_options(argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)).parse_args()
    report = asyncio.run(main_async(args))
    path = write_results("shares", report)
    print(json.dumps({s: {k: v for k, v in f.items() if k.endswith("_over_ceiling") or k.endswith("_over_floor")}
                      | {name: f[name]["req_per_s"] for name in ("gateway", "ceiling", "floor")}
                      for s, f in report["scenarios"].items()}, indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

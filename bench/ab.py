"""This checkout against another, in turn, in the same minutes: what a change did to the
HTTP path, on a machine whose speed moves by up to 40% between sittings.

    python -m bench.ab --baseline ../base [--scenarios post,patch,get] [--runs 4] [--seconds 6]
                       [--users 10000] [--workers 1] [--no-projector]

1. A fresh embedded PostgreSQL (fsync and synchronous_commit on), tenant ``bench``,
   ``--users`` users seeded, their audit rows projected.
2. Both gateways serve that database, each on its own port: ours, and the baseline's code
   (its checkout first on the path, this checkout's installed packages). ``--no-projector``:
   each with a ``scim-gateway projector`` of its own code beside it.
3. Per scenario, ``--runs`` rounds; a round loads one gateway then the other, who goes first
   alternating, at concurrency 32 for ``--seconds`` each.
4. Medians per side: req/s, p99, gateway (and projector) CPU per request; the ratios ours /
   baseline. Written to ``bench/results/ab-<time>.json``.

One database means one log: either side's audit projector (in the gateway, or beside it with
``--no-projector``) may project the other side's writes. A side's own projector is woken by
its own writes, so it does most of that work, but projector CPU is not cleanly per side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.record import write_results
from bench.run_all import cipher, cli, free_port, project_audit, wait_ready
from bench.scim_load import Load, Result
from bench.scratch import scratch_dir
from bench.seed import seed
from eventstore.embedded import start_embedded
from gateway.database import migrate_database


def _command(checkout: Path | None, *args: str) -> list[str]:
    """``scim-gateway ARGS`` from ``checkout`` (None: this one). Not ``python -m``: that puts the
    working directory first on the path, so a baseline would run our code (and the working
    directory stays ours for both, so both use the same key-encryption key file)."""
    if checkout is None:
        return [sys.executable, "-m", "gateway.cli", *args]
    launcher = (f"import sys; sys.path.insert(0, {str(checkout.resolve())!r}); "
                "sys.argv[0] = 'scim-gateway'; from gateway.cli import main; main()")
    return [sys.executable, "-c", launcher, *args]


class Side:
    def __init__(self, name: str, checkout: Path | None, dsn: str, args: argparse.Namespace) -> None:
        self.name = name
        self.port = free_port()
        env = {**os.environ, "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0", "SCIM_GATEWAY_POOL_MAX_SIZE": "16"}
        serve = _command(checkout, "serve", "--port", str(self.port), "--database-url", dsn,
                         "--workers", str(args.workers), *(["--no-projector"] if args.no_projector else []))
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        self.processes = [subprocess.Popen(serve, **quiet)]
        self.pids = {"gateway": [self.processes[0].pid]}
        if args.no_projector:
            self.processes.append(subprocess.Popen(_command(checkout, "projector", "--database-url", dsn), **quiet))
            self.pids["projector"] = [self.processes[1].pid]
        self.results: dict[str, list[Result]] = {}

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(30)

    def summary(self, scenario: str) -> dict[str, object]:
        results = self.results[scenario]
        figures: dict[str, object] = {
            "req_per_s": round(statistics.median(r.rate for r in results), 1),
            "runs_req_per_s": [round(r.rate, 1) for r in results],
            "p99_ms": round(statistics.median(r.percentile(99) for r in results), 2),
            "errors": sum(r.errors for r in results),
        }
        for process in self.pids:
            figures[f"{process}_cpu_us_per_request"] = round(statistics.median(
                1e6 * r.cpu[process] / max(r.requests, 1) for r in results))
        return figures


async def main_async(args: argparse.Namespace) -> dict:
    data = scratch_dir("scim-ab-")
    dsn = start_embedded(data)
    await migrate_database(dsn)
    cli(dsn, "tenant", "create", "bench")
    token = cli(dsn, "token", "create", "--tenant", "bench", "--owner", "bench@bench.example", "--scope", "admin")
    await seed(dsn, "bench", args.users, progress=False, cipher=cipher())
    await project_audit(dsn)
    sides = [Side("ours", None, dsn, args), Side("baseline", args.baseline, dsn, args)]
    try:
        for side in sides:
            await wait_ready(f"http://127.0.0.1:{side.port}/readyz")
        loads = {side.name: Load(f"http://127.0.0.1:{side.port}/scim/v2", token, args.concurrency)
                 for side in sides}
        for scenario in args.scenarios:
            for round_ in range(args.runs):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    result = await loads[side.name].run(scenario, 1_000_000, args.seconds, side.pids)
                    side.results.setdefault(scenario, []).append(result)
                    print(f"{scenario:<7} {side.name:<9} {result.rate:>8,.0f} req/s  p99 "
                          f"{result.percentile(99):>7.1f} ms", file=sys.stderr)
    finally:
        for side in sides:
            side.stop()
    report: dict = {"args": {**vars(args), "baseline": str(args.baseline)}, "scenarios": {}}
    for scenario in args.scenarios:
        ours, baseline = (side.summary(scenario) for side in sides)
        report["scenarios"][scenario] = {
            "ours": ours, "baseline": baseline,
            "ratio_req_per_s": round(ours["req_per_s"] / max(baseline["req_per_s"], 0.1), 2),  # type: ignore[operator]
            "ratio_gateway_cpu": round(ours["gateway_cpu_us_per_request"]  # type: ignore[operator]
                                       / max(baseline["gateway_cpu_us_per_request"], 1), 2),  # type: ignore[call-overload]
        }
    return report


def load_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of a run that loads gateways in turn (``bench.ab``, ``bench.shares``)."""
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-projector", action="store_true")
    return parser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout (e.g. a git worktree)")
    parser.add_argument("--scenarios", default="post,patch,get")
    args = load_options(parser).parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    report = asyncio.run(main_async(args))
    path = write_results("ab", report)
    print(json.dumps(report["scenarios"], indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

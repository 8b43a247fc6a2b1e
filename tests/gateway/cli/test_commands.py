"""The command line contract (DESIGN.md section 6), run as users run it."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest

from eventstore.embedded import start_embedded
from gateway.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli(database_url, capsys):
    def call(*args: str) -> tuple[int, str, str]:
        return run(capsys, *args, "--database-url", database_url)

    return call


async def test_tenant_and_token_lifecycle(cli):
    code, out, err = await asyncio.to_thread(cli, "tenant", "create", "acme", "--profile", "rfc")
    assert code == 0 and "created tenant acme" in err and out == ""
    code, out, _ = await asyncio.to_thread(cli, "tenant", "list", "--json")
    assert [t["name"] for t in orjson.loads(out)] == ["acme"]

    code, out, err = await asyncio.to_thread(
        cli, "token", "create", "--tenant", "acme", "--owner", "scim@acme.example", "--scope", "scim:read")
    secret = out.strip()
    assert code == 0 and secret.startswith("scgw_") and len(secret) > 40 and "\n" not in secret
    assert secret not in err

    code, out, _ = await asyncio.to_thread(cli, "token", "list", "--tenant", "acme", "--json")
    [token] = orjson.loads(out)
    assert token["owner"] == "scim@acme.example" and token["scopes"] == ["scim:read"] and token["revoked"] is None
    assert secret not in out

    code, _, _ = await asyncio.to_thread(cli, "token", "revoke", token["id"])
    assert code == 0
    code, _, err = await asyncio.to_thread(cli, "token", "revoke", token["id"])
    assert code == 1 and "already revoked" in err


async def test_tenant_set_changes_policy_settings(cli):
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    code, out, _ = await asyncio.to_thread(
        cli, "tenant", "set", "acme", "reactivation_cooldown_days=30", "default_profile=viewer", "--json")
    assert code == 0
    assert orjson.loads(out)["settings"] == {"reactivation_cooldown_days": 30, "default_profile": "viewer"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "--tenant", "ghost", "--owner", "a@b.c"), "no tenant named 'ghost'"),
        (("token", "revoke", "not-an-id"), "not a token id"),
        (("token", "revoke", "00000000-0000-0000-0000-000000000000"), "no token with id"),
        (("tenant", "create", "Bad Name!"), "must be lower-case"),
        (("tenant", "set", "ghost", "a=b"), "no tenant named"),
    ],
)
async def test_user_errors_exit_1_with_one_line(cli, args, message):
    code, out, err = await asyncio.to_thread(cli, *args)
    assert code == 1 and message in err and err.count("\n") == 1 and out == ""


async def test_duplicate_tenant_is_a_user_error(cli):
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    code, _, err = await asyncio.to_thread(cli, "tenant", "create", "acme")
    assert code == 1 and "already exists" in err


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tenant", "frobnicate"])
    assert exit_.value.code == 2


def test_unreachable_database_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "db", "migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1 and err.startswith("scim-gateway: cannot use the database") and err.count("\n") == 1


def test_invalid_setting_is_a_one_line_error(capsys, monkeypatch):
    monkeypatch.setenv("SCIM_GATEWAY_PORT", "eighty")
    code, _, err = run(capsys, "db", "migrate")
    assert code == 1 and "SCIM_GATEWAY_PORT" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_on_the_embedded_default_bootstraps_and_is_ready(tmp_path: Path):
    """The README's first command, minus the install: no database URL at all."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        assert process.stdout is not None
        token = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        assert token.startswith("scgw_")
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "gateway did not become ready"
                await asyncio.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"http://127.0.0.1:{port}/api/2/scim/Users", headers=headers) as response:
                assert response.status == 200
            # Listening, it froze what its start made (gateway/heap.py): full collections skip it.
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                frozen = re.search(r"^scim_gateway_gc_frozen_objects (\S+)$", await response.text(), re.M)
                assert frozen is not None and float(frozen[1]) > 10_000
            # The console at the printed address signs in with the bootstrap token.
            async with session.get(f"http://127.0.0.1:{port}/admin/signin") as response:
                assert response.status == 200
                nonce = re.search(r'name="nonce" value="([^"]+)"', await response.text())[1]
            async with session.post(
                f"http://127.0.0.1:{port}/admin/signin", data={"nonce": nonce, "token": token},
                headers={"Cookie": f"__Host-scgw_signin={nonce}"}, allow_redirects=False,
            ) as response:
                assert (response.status, response.headers["Location"]) == (303, "/admin/users")
        # Its pool is the application role's, not the superuser's (issue 12, item 7).
        superuser = await asyncio.to_thread(start_embedded, tmp_path / "data")
        connection = await asyncpg.connect(superuser)
        try:
            roles = await connection.fetch("SELECT DISTINCT usename FROM pg_stat_activity "
                                           "WHERE application_name = 'scim-gateway'")
        finally:
            await connection.close()
        assert [r["usename"] for r in roles] == ["scim_gateway_app"]
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert token.encode() not in err
    assert f"Admin console: http://127.0.0.1:{port}/admin/".encode() in err
    assert f"scim-gateway: data dir {(tmp_path / 'data').resolve()}\n".encode() in err


async def test_audit_export_to_a_file_in_both_formats(bynder_with_history, database_url, tmp_path, capsys):
    import csv

    jsonl = tmp_path / "trail.jsonl"
    code = await asyncio.to_thread(main, ["audit", "export", "--tenant", "acme", "-o", str(jsonl),
                                          "--database-url", database_url])
    assert code == 0
    rows = [orjson.loads(line) for line in jsonl.read_bytes().splitlines()]
    assert [r["action"] for r in rows if r["user_name"] == "cli@example.com"] == ["create", "deactivate"]
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["audit", "export", "--tenant", "acme", "--kind", "provisioning",
                                          "--format", "csv", "--database-url", database_url])
    out = capsys.readouterr().out
    table = list(csv.DictReader(out.splitlines()))
    assert code == 0 and [r["action"] for r in table] == ["create", "disable"]


async def test_audit_export_rejects_a_bad_time(database_url, capsys):
    await asyncio.to_thread(main, ["tenant", "create", "acme", "--database-url", database_url])
    code = await asyncio.to_thread(main, ["audit", "export", "--tenant", "acme", "--since", "soon",
                                          "--database-url", database_url])
    assert code == 1 and "--since" in capsys.readouterr().err


@pytest.fixture
async def bynder_with_history(bynder):
    from tests.scim_client import entra_user

    _, user = await bynder.post("/Users", entra_user("cli@example.com", "cli"))
    await bynder.patch(f"/Users/{user['id']}", {"Operations": [{"op": "replace", "path": "active", "value": False}]})
    return bynder

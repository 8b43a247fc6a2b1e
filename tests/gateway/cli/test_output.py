"""What the command line says, and where: the data dir, errors that name what happened,
machine output (issue 15, "The command line")."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

import orjson
import pytest

from gateway.cli import main
from projections.catalog import PROJECTIONS
from tests.scim_client import entra_user

TABLE_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def clean_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("SCIM_GATEWAY_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def cli(database_url, capsys):
    def call(*args: str) -> tuple[int, str, str]:
        return run(capsys, *args, "--database-url", database_url)

    return call


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}


# Where the data is --------------------------------------------------------------------


@pytest.mark.parametrize("command", [("tenant", "list"), ("token", "list", "--tenant", "acme"),
                                     ("replay", "verify"), ("audit", "export", "--tenant", "acme")])
def test_commands_other_than_serve_and_migrate_refuse_to_create_a_database(command, tmp_path, capsys, clean_env,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default ./.scim-gateway, from a directory that has none
    code, out, err = run(capsys, *command)
    expected = tmp_path.resolve() / ".scim-gateway"
    assert code == 1 and out == ""
    assert err == (f"scim-gateway: no database in {expected}: run `scim-gateway serve` or `scim-gateway db migrate` "
                   "to create one, or point --data-dir/--database-url at yours\n")
    assert not expected.exists()


# Errors that say what happened --------------------------------------------------------


def test_missing_import_file_is_its_own_error(cli, tmp_path):
    code, _, err = cli("users", "import", str(tmp_path / "nope.jsonl"), "--tenant", "acme")
    assert code == 1 and err == f"scim-gateway: cannot read {tmp_path / 'nope.jsonl'}: no such file\n"


@pytest.mark.parametrize("command", [("audit", "export", "--tenant", "acme", "-o"),
                                     ("replay", "tenant", "--tenant", "acme", "-o")])
def test_output_into_a_missing_directory_is_its_own_error(cli, tmp_path, command):
    target = tmp_path / "missing" / "out.jsonl"
    code, _, err = cli(*command, str(target))
    assert code == 1 and err == f"scim-gateway: cannot write {target}: directory {target.parent} does not exist\n"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_is_its_own_error(database_url, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", workers,
             "--database-url", database_url],
            capture_output=True, env={**environment(), "SCIM_GATEWAY_BOOTSTRAP": "false"}, timeout=60)
    last = result.stderr.decode().splitlines()[-1]
    assert result.returncode == 1, result.stderr.decode()
    assert last.startswith(f"scim-gateway: cannot listen on 127.0.0.1:{port}") and "database" not in last


async def test_listening_is_logged_once_the_port_accepts(database_url):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--database-url", database_url,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**environment(), "SCIM_GATEWAY_ACCESS_LOG": "false"})
    try:
        assert process.stderr is not None
        while b'"listening"' not in (line := await asyncio.wait_for(process.stderr.readline(), 60)):
            assert line, "serve exited before listening"
        # No retry: the line promises the port is bound.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
    finally:
        process.terminate()
        await process.wait()


async def test_output_cut_short_by_head_ends_quietly(bynder, database_url, tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_bytes(b"".join(orjson.dumps(entra_user(f"u{n}@example.com")) + b"\n" for n in range(400)))
    assert await asyncio.to_thread(main, ["users", "import", str(users), "--tenant", "acme",
                                          "--database-url", database_url]) == 0

    def head_one() -> tuple[bytes, bytes, int]:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "audit", "export", "--tenant", "acme", "--database-url", database_url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment())
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # what `| head -1` does after one line
        err = process.stderr.read()
        process.stderr.close()
        return first, err, process.wait(60)

    first, err, code = await asyncio.to_thread(head_one)
    assert orjson.loads(first)["action"] == "tenant_created"
    assert code == 0 and err == b""


async def test_token_revoke_by_secret_never_echoes_it(cli):
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    _, out, _ = await asyncio.to_thread(cli, "token", "create", "--tenant", "acme", "--owner", "a@b.example", "--json")
    token = orjson.loads(out)
    code, out, err = await asyncio.to_thread(cli, "token", "revoke", token["secret"])
    assert code == 0 and out == "" and err == f"token {token['id']} revoked\n"
    code, out, err = await asyncio.to_thread(cli, "token", "revoke", token["secret"])
    assert code == 1 and token["secret"] not in err + out
    code, out, err = await asyncio.to_thread(cli, "token", "revoke", token["secret"] + "x")
    assert code == 1 and err == "scim-gateway: no token has that secret\n"


# Machine output -----------------------------------------------------------------------


async def test_token_create_json_gives_id_secret_tenant_and_scopes(cli):
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    code, out, err = await asyncio.to_thread(cli, "token", "create", "--tenant", "acme", "--owner", "a@b.example",
                                             "--scope", "scim:read", "--scope", "audit:read", "--json")
    token = orjson.loads(out)
    assert code == 0 and token["secret"] not in err
    assert sorted(token) == ["expires", "id", "owner", "scopes", "secret", "tenant"]
    assert (token["tenant"], token["scopes"], token["expires"]) == ("acme", ["scim:read", "audit:read"], None)
    _, out, _ = await asyncio.to_thread(cli, "token", "list", "--tenant", "acme", "--json")
    assert [t["id"] for t in orjson.loads(out)] == [token["id"]]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and re.fullmatch(r"scim-gateway \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_projections_rebuild_help_lists_every_projection(capsys):
    with pytest.raises(SystemExit):
        main(["projections", "rebuild", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(PROJECTIONS)}" in help_text and "groups" in PROJECTIONS


@pytest.mark.parametrize("command", [("serve",), ("db", "migrate"), ("token", "revoke", "x"),
                                     ("audit", "export", "--tenant", "a"), ("users", "import", "f", "--tenant", "a"),
                                     ("projections", "rebuild"), ("replay", "tenant", "-o", "f")])
def test_json_is_refused_where_it_is_not_honoured(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--json"])
    assert exit_.value.code == 2 and "unrecognized arguments: --json" in capsys.readouterr().err


async def test_tables_show_settings_as_key_value_and_times_to_the_second(cli):
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    code, _, err = await asyncio.to_thread(cli, "tenant", "set", "acme", "reactivation_cooldown_days=30",
                                           "default_profile=viewer")
    assert code == 0 and err == "tenant acme: profile=bynder default_profile=viewer reactivation_cooldown_days=30\n"
    _, out, _ = await asyncio.to_thread(cli, "tenant", "list")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "PROFILE", "SETTINGS", "ID", "CREATED"]
    assert "default_profile=viewer reactivation_cooldown_days=30" in row and TABLE_TIME.search(row)
    await asyncio.to_thread(cli, "token", "create", "--tenant", "acme", "--owner", "a@b.example", "--expires-in", "90d")
    _, out, _ = await asyncio.to_thread(cli, "token", "list", "--tenant", "acme")
    header, row = out.splitlines()
    assert header.split() == ["ID", "OWNER", "DESCRIPTION", "SCOPES", "ISSUED", "EXPIRES", "LAST_USED", "REVOKED"]
    assert len(TABLE_TIME.findall(row)) == 2 and "." not in row.split("scim:write")[1]

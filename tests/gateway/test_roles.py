"""The owner and application roles (issue 12, items 7 and 8): the application role appends
and projects, and can neither rewrite the log nor switch its triggers off; a role with
exactly the GRANTs that docs/operations.md documents runs ``serve`` and the CLI."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson
import pytest

from gateway.cli import main
from gateway.database import migrate_database, open_database
from gateway.roles import OWNER_ONLY, app_grants, granted_tables
from gateway.settings import Settings
from tests.conftest import with_database
from tests.reliability.processes import start_gateway
from tests.scim_client import entra_user

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
APP_ROLE = "scim_test_app"
APP_PASSWORD = "scim-test-app"


def documented_grants() -> str:
    """The GRANT statements of docs/operations.md's roles section, as an operator would paste them."""
    text = OPERATIONS.read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    [block] = [b for b in blocks if "GRANT" in b]
    return "".join(line + "\n" for line in block.splitlines() if not line.startswith("CREATE ROLE"))


def as_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc.rpartition('@')[2]}"))


def test_operations_doc_quotes_the_grants_the_code_applies():
    assert documented_grants() == app_grants("scim_app")


async def test_every_table_the_migrations_create_is_granted_or_owner_only(pool):
    tables = {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables - granted_tables() - OWNER_ONLY == set()
    assert granted_tables() - tables == set()


@pytest.fixture
async def app_dsn(database_url: str) -> str:
    """``database_url`` (migrated by its owner) with a login role holding exactly the documented GRANTs."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}';
                END IF;
            END $$""")
        await connection.execute(documented_grants().replace("scim_app", APP_ROLE))
    finally:
        await connection.close()
    return as_user(database_url, APP_ROLE, APP_PASSWORD)


async def _append_one_event(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO events (event_id, tenant_id, stream_id, stream_version, type, data, tenant_position) "
            "VALUES ($1, $2, 'probe-1', 1, 'Probe', '{}', 1)", uuid.uuid4(), uuid.uuid4())
    finally:
        await connection.close()


async def assert_log_is_out_of_reach(dsn: str) -> None:
    """What an attacker with the application's connection tries, each refused by the server."""
    connection = await asyncpg.connect(dsn)
    try:
        before = await connection.fetchval("SELECT count(*) FROM events")
        assert before > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with connection.transaction():
                await connection.execute("SET LOCAL session_replication_role = replica")
                await connection.execute("DELETE FROM events")
        for statement in ("DELETE FROM events", "UPDATE events SET data = '{}'", "TRUNCATE events",
                          "ALTER TABLE events DISABLE TRIGGER USER", "DROP TRIGGER events_no_update_or_delete ON events",
                          "ALTER TABLE events OWNER TO CURRENT_USER"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
        assert await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        assert await connection.fetchval("SELECT count(*) FROM events") == before
    finally:
        await connection.close()


async def test_app_role_cannot_disable_triggers_or_delete_events(database_url, app_dsn):
    await _append_one_event(app_dsn)
    await assert_log_is_out_of_reach(app_dsn)


async def test_embedded_default_serves_as_a_role_that_cannot_bypass_the_triggers(tmp_path):
    """Item 7: on the embedded default the gateway connected as the superuser, and
    ``SET LOCAL session_replication_role = replica`` then deleted events."""
    database = await open_database(Settings(data_dir=tmp_path / "data"), create=True)
    await migrate_database(database.owner_dsn, database.app_role)
    await _append_one_event(database.app_dsn)
    await assert_log_is_out_of_reach(database.app_dsn)
    owner = await asyncpg.connect(database.owner_dsn)
    try:
        assert await owner.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        assert await owner.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'events'") \
            == "scim_gateway_owner"
    finally:
        await owner.close()


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_documented_grants_run_serve_without_migrating_and_the_cli(app_dsn, tmp_path, capsys):
    """Item 8: a role with exactly the documented GRANTs could not run ``serve`` (it migrated
    on start) nor any CLI command (each migrated, even ``tenant list``)."""
    def run(*args: str) -> tuple[int, str, str]:
        return cli(capsys, *args, "--database-url", app_dsn)

    code, _, err = await asyncio.to_thread(run, "tenant", "create", "acme")
    assert code == 0, err
    code, out, err = await asyncio.to_thread(run, "token", "create", "--tenant", "acme", "--owner", "bot@acme.example",
                                             "--json")
    assert code == 0, err
    secret = orjson.loads(out)["secret"]
    gateway = await start_gateway(app_dsn, None, "--no-migrate")
    try:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{gateway.url}/scim/v2/Users", headers=headers,
                                    data=orjson.dumps(entra_user("ann@acme.example"))) as response:
                assert response.status == 201, await response.text()
    finally:
        assert b"permission denied" not in await gateway.stop()
    code, out, err = await asyncio.to_thread(run, "tenant", "list", "--json")
    assert code == 0 and [t["name"] for t in orjson.loads(out)] == ["acme"], err
    code, out, err = await asyncio.to_thread(run, "token", "list", "--tenant", "acme", "--json")
    assert code == 0 and orjson.loads(out)[0]["owner"] == "bot@acme.example", err
    (tmp_path / "users.jsonl").write_bytes(orjson.dumps(entra_user("bob@acme.example")) + b"\n")
    code, _, err = await asyncio.to_thread(run, "users", "import", str(tmp_path / "users.jsonl"), "--tenant", "acme")
    assert code == 0, err
    code, out, err = await asyncio.to_thread(run, "audit", "export", "--tenant", "acme", "--kind", "provisioning")
    assert code == 0 and len(out.splitlines()) == 2, err
    code, out, err = await asyncio.to_thread(run, "replay", "timeline", "ann@acme.example", "--json")
    assert code == 0 and [e["action"] for e in orjson.loads(out)] == ["create"], err


async def test_serve_without_migrating_refuses_a_schema_with_pending_migrations(server_dsn, capsys):
    name = f"scimgw_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(with_database(server_dsn, "postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        empty = with_database(server_dsn, name)
        code, _, err = await asyncio.to_thread(cli, capsys, "serve", "--no-migrate", "--database-url", empty)
        assert code == 1 and "not up to date" in err and "scim-gateway db migrate" in err
        code, _, err = await asyncio.to_thread(cli, capsys, "tenant", "list", "--database-url", empty)
        assert code == 1 and "not up to date" in err and err.count("\n") == 1
        connection = await asyncpg.connect(empty)
        try:  # neither touched the schema
            assert await connection.fetchval("SELECT to_regclass('schema_migrations')") is None
        finally:
            await connection.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()

"""Tokens as admins expect them: expiry, last use, rotation with a grace period, no bootstrap
token when it is turned off (issue 15)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from domain import tenant as domain
from gateway.cli import main
from gateway.http.keys import TENANCY
from gateway.tenancy import hash_secret
from tests.conftest import ACTOR
from tests.reliability.processes import start_gateway
from tests.scim_client import Scim


@pytest.fixture
def tenancy(client):
    return client.app[TENANCY]


async def status(scim: Scim) -> int:
    response, _ = await scim.get("/Users")
    return response.status


async def test_a_token_past_its_expiry_is_refused(client, tenancy, bynder):
    row = await tenancy.tenant("acme")
    issued = datetime.now(UTC) - timedelta(days=91)
    secret = "scgw_expired-token-secret-for-the-test"
    events = domain.issue_token("6f6c1a4e-2b7e-4f62-9b8e-8f1b7a0a0001", str(row.tenant_id), "old@acme.example",
                                "expired", ("scim:read",), hash_secret(secret).hex(),
                                expires_at=issued + timedelta(days=90), now=issued)
    await tenancy._append("token-6f6c1a4e-2b7e-4f62-9b8e-8f1b7a0a0001", 0, events, ACTOR, row.tenant_id)
    assert await status(Scim(client, secret)) == 401
    assert await status(bynder) == 200


async def test_a_token_within_its_expiry_works_and_is_listed_with_it(client, tenancy, bynder):
    expires = datetime.now(UTC) + timedelta(days=90)
    _, secret = await tenancy.create_token("acme", "bot@acme.example", "Entra", ("scim:read",), ACTOR, expires)
    assert await status(Scim(client, secret)) == 200
    [_, listed] = await tenancy.tokens("acme")
    assert abs(listed.expires_at - expires) < timedelta(milliseconds=1)


async def test_expiry_in_the_past_is_refused(tenancy, bynder):
    from domain.errors import Rejected

    with pytest.raises(Rejected, match="expiry must be in the future"):
        await tenancy.create_token("acme", "bot@acme.example", "x", (), ACTOR, datetime.now(UTC) - timedelta(1))


async def test_last_use_is_recorded_at_most_once_a_minute(client, tenancy, bynder):
    [token] = await tenancy.tokens("acme")
    assert token.last_used_at is None
    assert await status(bynder) == 200
    await tenancy.flush_use()
    [token] = await tenancy.tokens("acme")
    first = token.last_used_at
    assert first is not None
    tenancy.forget()  # past the credential cache, so authentication runs again
    assert await status(bynder) == 200
    await tenancy.flush_use()
    [token] = await tenancy.tokens("acme")
    assert token.last_used_at == first


async def test_rotation_keeps_the_old_secret_for_the_grace_period(client, tenancy, bynder):
    [token] = await tenancy.tokens("acme")
    _, new_secret = await tenancy.rotate_token(str(token.token_id), timedelta(hours=1), ACTOR)
    assert await status(Scim(client, new_secret)) == 200
    assert await status(bynder) == 200
    _, newest = await tenancy.rotate_token(str(token.token_id), timedelta(0), ACTOR)
    assert await status(Scim(client, newest)) == 200
    assert await status(Scim(client, new_secret)) == 401
    assert await status(bynder) == 401  # two rotations ago: no longer the previous secret


async def test_a_revoked_token_cannot_be_rotated(tenancy, bynder):
    from domain.errors import Rejected

    [token] = await tenancy.tokens("acme")
    await tenancy.revoke_token(str(token.token_id), ACTOR)
    with pytest.raises(Rejected, match="is revoked"):
        await tenancy.rotate_token(str(token.token_id), timedelta(hours=1), ACTOR)


async def test_token_rotate_from_the_command_line(database_url, capsys):
    def cli(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--database-url", database_url])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    await asyncio.to_thread(cli, "tenant", "create", "acme")
    _, out, _ = await asyncio.to_thread(cli, "token", "create", "--tenant", "acme", "--owner", "a@b.example", "--json")
    issued = orjson.loads(out)
    code, out, err = await asyncio.to_thread(cli, "token", "rotate", issued["id"], "--grace", "2h",
                                             "--expires-in", "30d", "--json")
    rotated = orjson.loads(out)
    assert code == 0 and rotated["id"] == issued["id"] and rotated["secret"] != issued["secret"]
    assert rotated["secret"] not in err and "the previous one works until" in err
    expires = datetime.fromisoformat(rotated["expires"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    code, _, err = await asyncio.to_thread(cli, "token", "rotate", issued["id"], "--grace", "soon")
    assert code == 1 and err == "scim-gateway: --grace takes a number and a unit (s, m, h, d or w), e.g. 90d; " \
                                "not 'soon'\n"


async def test_bootstrap_can_be_turned_off(database_url, pool):
    gateway = await start_gateway(database_url, None, bootstrap="false")
    await gateway.stop()
    assert await pool.fetchval("SELECT count(*) FROM tenants") == 0

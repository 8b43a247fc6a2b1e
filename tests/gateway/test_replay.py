"""The replay tool against a scripted history: two tokens create, change, deactivate, are
refused a reactivation, and delete one user; every command is checked at several points."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest

from eventstore import NewEvent
from gateway.cli import main
from gateway.http.keys import POOL, STORE
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def ops(*operations):
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@dataclass
class History:
    user_id: str
    token_a: str
    token_b: str
    times: dict[str, str]
    alice: Scim
    bob: Scim


async def _now(scim: Scim) -> str:
    return (await scim.client.app[POOL].fetchval("SELECT clock_timestamp()")).isoformat()


async def _token_id(scim: Scim, owner: str) -> str:
    return str(await scim.client.app[POOL].fetchval("SELECT token_id FROM tokens WHERE owner = $1", owner))


@pytest.fixture
async def history(token_for) -> History:
    alice = await token_for("acme", owner="alice-bot@example.com")
    bob = await token_for("acme", owner="bob-bot@example.com")
    times = {"before": await _now(alice)}
    _, user = await alice.post("/Users", entra_user("ann.smith@example.com", "ann-ext"))
    path = f"/Users/{user['id']}"
    times["created"] = await _now(alice)
    await alice.patch(path, ops({"op": "replace", "path": "name.familyName", "value": "Jones"}))
    await alice.patch(path, ops({"op": "replace", "path": "userName", "value": "ann.jones@example.com"}))
    times["renamed"] = await _now(alice)
    await bob.patch(path, ops({"op": "replace", "path": "name.givenName", "value": "Anne"}))
    times["bob_changed"] = await _now(alice)
    await bob.patch(path, ops({"op": "replace", "path": "active", "value": "False"}))
    times["deactivated"] = await _now(alice)
    response, _ = await bob.patch(path, ops({"op": "replace", "path": "active", "value": "True"}))
    assert response.status == 400  # inside the cooldown
    times["refused"] = await _now(alice)
    await alice.delete(path)
    times["deleted"] = await _now(alice)
    return History(user["id"], await _token_id(alice, "alice-bot@example.com"),
                   await _token_id(alice, "bob-bot@example.com"), times, alice, bob)


def run(database_url: str, capsys, *args: str) -> tuple[int, object]:
    code = main([*args, "--json", "--database-url", database_url])
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.strip() else None


async def cli(database_url, capsys, *args):
    return await asyncio.to_thread(run, database_url, capsys, *args)


async def test_replay_user_at_several_times(history: History, database_url, capsys):
    code, before = await cli(database_url, capsys, "replay", "user", "ann-ext", "--at", history.times["before"])
    assert code == 0 and before["exists"] is False

    _, created = await cli(database_url, capsys, "replay", "user", "ann.smith@example.com",
                           "--at", history.times["created"])
    resource = created["resource"]
    assert resource["id"] == history.user_id and resource["name"]["familyName"] == "Smith"
    assert resource["active"] is True and resource["userName"] == "ann.smith@example.com"

    _, changed = await cli(database_url, capsys, "replay", "user", history.user_id, "--at", history.times["bob_changed"])
    assert changed["resource"]["name"] == {"givenName": "Anne", "familyName": "Jones", "formatted": "Ann Smith"}
    assert changed["resource"]["userName"] == "ann.jones@example.com"

    _, off = await cli(database_url, capsys, "replay", "user", "ann.jones@example.com", "--at", history.times["refused"])
    assert off["resource"]["active"] is False and off["resource"]["meta"]["version"] == 'W/"5"'

    _, gone = await cli(database_url, capsys, "replay", "user", "ann-ext", "--at", history.times["deleted"])
    assert gone["resource"]["deleted"] is True


async def test_replay_user_at_a_position(history: History, database_url, capsys):
    first = await history.alice.client.app[POOL].fetchval(
        "SELECT min(position) FROM events WHERE stream_id = $1", f"user-{history.user_id}")
    _, at_first = await cli(database_url, capsys, "replay", "user", history.user_id, "--position", str(first))
    assert at_first["position"] == first and at_first["resource"]["name"]["familyName"] == "Smith"


async def test_replay_timeline_names_every_actor(history: History, database_url, capsys):
    _, entries = await cli(database_url, capsys, "replay", "timeline", "ann.smith@example.com")
    summary = [(e["action"], e["actor"]["owner"]) for e in entries]
    assert summary == [
        ("create", "alice-bot@example.com"),
        ("update", "alice-bot@example.com"),
        ("update", "alice-bot@example.com"),
        ("update", "bob-bot@example.com"),
        ("deactivate", "bob-bot@example.com"),
        ("refused", "bob-bot@example.com"),
        ("delete", "alice-bot@example.com"),
    ]
    assert [c["attribute"] for e in entries[1:5] for c in e["changes"]] == [
        "name.familyName", "userName", "name.givenName", "active"]
    assert entries[1]["changes"][0]["old"] == "Smith" and entries[1]["changes"][0]["new"] == "Jones"
    assert all(e["request_id"] for e in entries)
    _, window = await cli(database_url, capsys, "replay", "timeline", history.user_id,
                          "--since", history.times["renamed"], "--until", history.times["deactivated"])
    assert [e["action"] for e in window] == ["update", "deactivate"]


async def test_replay_diff_groups_by_actor(history: History, database_url, capsys):
    _, groups = await cli(database_url, capsys, "replay", "diff", "--from", history.times["created"],
                          "--to", history.times["deactivated"])
    by_owner = {g["actor"]["owner"]: g["users"] for g in groups}
    assert set(by_owner) == {"alice-bot@example.com", "bob-bot@example.com"}
    [alice_user] = by_owner["alice-bot@example.com"]
    assert alice_user["actions"] == ["update"]
    assert [c["attribute"] for c in alice_user["changes"]] == ["name.familyName", "userName"]
    [bob_user] = by_owner["bob-bot@example.com"]
    assert bob_user["actions"] == ["update", "deactivate"] and bob_user["user_name"] == "ann.jones@example.com"


async def test_replay_token_shows_writes_and_refusals(history: History, database_url, capsys):
    _, entries = await cli(database_url, capsys, "replay", "token", history.token_b)
    assert [e["action"] for e in entries] == ["update", "deactivate", "refused"]
    assert "400 invalidValue" in entries[2]["detail"]
    _, windowed = await cli(database_url, capsys, "replay", "token", history.token_a, "--until", history.times["created"])
    assert [e["action"] for e in windowed] == ["create"]


async def test_replay_tenant_snapshot(history: History, database_url, capsys, tmp_path):
    snapshot = tmp_path / "snapshot.jsonl"
    code = await asyncio.to_thread(main, ["replay", "tenant", "--at", history.times["bob_changed"], "-o",
                                          str(snapshot), "--tenant", "acme", "--database-url", database_url])
    assert code == 0
    [user] = [orjson.loads(line) for line in snapshot.read_bytes().splitlines()]
    assert user["name"]["givenName"] == "Anne" and user["active"] is True
    await asyncio.to_thread(main, ["replay", "tenant", "-o", str(snapshot), "--tenant", "acme",
                                   "--database-url", database_url])
    assert snapshot.read_bytes() == b""  # the only user is deleted now


async def test_replay_verify_passes_then_catches_an_edit(history: History, database_url, capsys):
    code, report = await cli(database_url, capsys, "replay", "verify")
    assert code == 0 and all(r["differences"] == [] for r in report)
    await history.alice.client.app[POOL].execute("UPDATE users_view SET family_name = 'Edited'")
    code, report = await cli(database_url, capsys, "replay", "verify")
    assert code == 1
    assert [r["projection"] for r in report if r["differences"]] == ["users_view"]


async def test_unknown_user_is_a_clear_error(history: History, database_url, capsys):
    code = await asyncio.to_thread(main, ["replay", "user", "nobody@example.com", "--at", history.times["deleted"],
                                          "--database-url", database_url])
    assert code == 1 and "no user 'nobody@example.com'" in capsys.readouterr().err


async def test_http_twin_returns_the_user_at_a_time(history: History):
    scim = history.alice
    response = await scim.client.get(f"/api/2/audit/users/{history.user_id}",
                                     params={"at": history.times["created"]},
                                     headers={"Authorization": f"Bearer {scim.token}"})
    body = await response.json()
    assert response.status == 200 and body["resource"]["name"]["familyName"] == "Smith"
    response = await scim.client.get(f"/api/2/audit/users/{history.user_id}",
                                     params={"at": history.times["before"]},
                                     headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 404 and "did not exist yet" in (await response.json(content_type=None))["detail"]


async def test_an_old_event_shape_is_upcast_before_folding(history: History, database_url, capsys):
    """A deactivation stored before events carried a reason (schema version 0)."""
    pool = history.alice.client.app[POOL]
    _, user = await history.alice.post("/Users", entra_user("old@example.com", "old"))
    tenant_id = await pool.fetchval("SELECT tenant_id FROM tenants WHERE name = 'acme'")
    await history.alice.client.app[STORE].append(
        f"user-{user['id']}", 1, [NewEvent("UserDeactivated", {"user_id": user["id"]}, schema_version=0)], {},
        tenant_id=tenant_id)
    _, entries = await cli(database_url, capsys, "replay", "timeline", user["id"])
    assert entries[-1]["action"] == "deactivate" and entries[-1]["detail"] == "via patch"
    _, now = await cli(database_url, capsys, "replay", "user", user["id"], "--at", "2100-01-01T00:00:00Z")
    assert now["resource"]["active"] is False

"""Issue 12 item 3: a time the tools print, pasted back, means the stored instant.

Every printed time carries microseconds (``gateway.timestamps``), the precision PostgreSQL
stores. Each test takes the time a tool printed for an event and hands it to every tool and
HTTP twin that takes a time: ``--at`` / ``?at=`` and inclusive upper bounds (``--until`` of
``replay timeline`` and ``replay token``, ``diff --to``) include the event; the audit
export's ``since`` includes it and its ``until`` is exclusive (half-open windows, so
consecutive windows never count a row twice), which excludes exactly that event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import orjson
import pytest

from gateway.cli import main
from gateway.http.keys import POOL
from tests.scim_client import Scim, entra_user


@dataclass
class Created:
    scim: Scim
    user_id: str
    token_id: str
    stored: datetime  # recorded_at of the UserCreated event, from the database


def run(database_url: str, capsys, *args: str) -> tuple[int, object]:
    code = main([*args, "--json", "--database-url", database_url])
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.strip() else None


async def cli(database_url, capsys, *args):
    return await asyncio.to_thread(run, database_url, capsys, *args)


async def audit_get(scim: Scim, path: str, **params: str) -> tuple[int, dict]:
    response = await scim.client.get(path, params=params, headers={"Authorization": f"Bearer {scim.token}"})
    return response.status, await response.json(content_type=None)


@pytest.fixture
async def created(token_for) -> Created:
    scim = await token_for("acme", owner="clock-bot@example.com")
    _, user = await scim.post("/Users", entra_user("round.trip@example.com", "rt"))
    pool = scim.client.app[POOL]
    # A second event a moment later, so an exclusive or too-early bound shows.
    await scim.patch(f"/Users/{user['id']}", {"Operations": [{"op": "replace", "path": "title", "value": "x"}]})
    stored = await pool.fetchval("SELECT recorded_at FROM events WHERE stream_id = $1 AND type = 'UserCreated'",
                                 f"user-{user['id']}")
    token_id = str(await pool.fetchval("SELECT token_id FROM tokens WHERE owner = 'clock-bot@example.com'"))
    return Created(scim, user["id"], token_id, stored)


async def printed_create_time(created: Created, database_url, capsys) -> str:
    _, entries = await cli(database_url, capsys, "replay", "timeline", created.user_id)
    assert entries[0]["action"] == "create"
    return entries[0]["time"]


async def test_printed_times_carry_the_stored_microseconds(created: Created, database_url, capsys):
    printed = await printed_create_time(created, database_url, capsys)
    assert datetime.fromisoformat(printed) == created.stored
    code = await asyncio.to_thread(main, ["replay", "timeline", created.user_id, "--database-url", database_url])
    assert code == 0 and printed in capsys.readouterr().out  # the human output prints the same text
    _, resource = await created.scim.get(f"/Users/{created.user_id}")
    assert datetime.fromisoformat(resource["meta"]["created"]) == created.stored


async def test_replay_user_at_the_printed_creation_time_finds_the_user(created: Created, database_url, capsys):
    printed = await printed_create_time(created, database_url, capsys)
    code, result = await cli(database_url, capsys, "replay", "user", created.user_id, "--at", printed)
    assert code == 0 and result["exists"] is True and result["resource"]["meta"]["version"] == 'W/"1"'


async def test_replay_timeline_until_and_since_the_printed_time_include_the_event(created: Created, database_url,
                                                                                   capsys):
    printed = await printed_create_time(created, database_url, capsys)
    _, until = await cli(database_url, capsys, "replay", "timeline", created.user_id, "--until", printed)
    assert [e["action"] for e in until] == ["create"]
    _, since = await cli(database_url, capsys, "replay", "timeline", created.user_id, "--since", printed)
    assert [e["action"] for e in since] == ["create", "ignored_attribute"]


async def test_replay_diff_to_the_printed_time_includes_the_event(created: Created, database_url, capsys):
    printed = await printed_create_time(created, database_url, capsys)
    _, groups = await cli(database_url, capsys, "replay", "diff", "--from", printed, "--to", printed)
    [group] = groups
    assert [(u["user_id"], u["actions"]) for u in group["users"]] == [(created.user_id, ["create"])]


async def test_replay_token_window_of_the_printed_time_is_the_event(created: Created, database_url, capsys):
    printed = await printed_create_time(created, database_url, capsys)
    _, entries = await cli(database_url, capsys, "replay", "token", created.token_id,
                           "--since", printed, "--until", printed)
    assert [(e["action"], e["time"]) for e in entries] == [("create", printed)]


async def test_http_user_at_the_printed_time_finds_the_user(created: Created, database_url, capsys):
    printed = await printed_create_time(created, database_url, capsys)
    status, body = await audit_get(created.scim, f"/api/2/audit/users/{created.user_id}", at=printed)
    assert status == 200 and body["resource"]["meta"]["version"] == 'W/"1"'
    assert body["as_of"]["at"] == printed
    # Its own printed creation time, in a 404 about an earlier instant, is pasteable too.
    status, body = await audit_get(created.scim, f"/api/2/audit/users/{created.user_id}",
                                   at="2000-01-01T00:00:00Z")
    assert status == 404 and f"(created {printed})" in body["detail"]


async def test_http_timeline_and_export_bounds_at_the_printed_time(created: Created):
    scim = created.scim
    path = f"/api/2/audit/users/{created.user_id}/timeline"
    _, page = await audit_get(scim, path, format="json")
    printed = page["items"][0]["recorded_at"]
    assert page["items"][0]["action"] == "create" and datetime.fromisoformat(printed) == created.stored
    _, since = await audit_get(scim, path, format="json", since=printed)
    assert [i["action"] for i in since["items"]][:1] == ["create"]
    _, until = await audit_get(scim, path, format="json", until=printed)
    assert until["items"] == []  # exclusive: the window ends just before the event
    _, window = await audit_get(scim, "/api/2/audit/events", format="json", since=printed,
                                until=page["items"][-1]["recorded_at"])
    assert [i["action"] for i in window["items"]] == ["create"] * len(window["items"]) and window["items"]
    _, provisioning = await audit_get(scim, "/api/2/audit/provisioning", format="json", since=printed)
    assert {i["action"] for i in provisioning["items"]} >= {"create"}


async def test_scim_filter_on_the_printed_meta_time_finds_the_user(created: Created):
    _, resource = await created.scim.get(f"/Users/{created.user_id}")
    printed = resource["meta"]["created"]
    for filter_text in (f'meta.created eq "{printed}"', f'meta.created ge "{printed}"',
                        f'meta.created le "{printed}"'):
        _, listed = await created.scim.get(f"/Users?filter={filter_text}")
        assert [r["id"] for r in listed["Resources"]] == [created.user_id], filter_text


@pytest.mark.parametrize("args", [
    ["audit", "export", "--tenant", "acme", "--since", "9999-12-31T23:59:59-14:00"],
    ["replay", "timeline", "round.trip@example.com", "--until", "0001-01-01T00:00:00+14:00"],
    ["replay", "diff", "--from", "0001-01-01T00:00:00+14:00", "--to", "2020-01-01T00:00:00Z"],
    ["replay", "user", "round.trip@example.com", "--at", "9999-12-31T23:59:59-14:00"],
])
async def test_cli_times_pushed_out_of_range_are_a_one_line_error(created: Created, database_url, capsys, args):
    code = await asyncio.to_thread(main, [*args, "--database-url", database_url])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "is out of range" in err, err

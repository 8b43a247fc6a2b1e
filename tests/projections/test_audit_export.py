"""One export streamer: the CLI writes the bytes the HTTP API sends, and the ``user=`` and
``actor=`` filters find names by the one case fold, like every other lookup."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from domain.identifiers import fold
from domain.tenant import SCOPES
from gateway.cli import main
from gateway.http.keys import POOL
from projections import audit
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def http_export(scim: Scim, path: str, **params: str) -> bytes:
    response = await scim.client.get(path, params=params, headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 200, await response.text()
    return await response.read()


async def history(scim: Scim) -> None:
    """Values that test the formatting: quotes, a comma, a newline, non-ASCII, nested JSON."""
    _, user = await scim.post("/Users", {"userName": "Zoë.Ünal@example.com", "displayName": 'Zoë "Z", Ünal',
                                         "emails": [{"value": "zoe@example.com", "type": "work"}]})
    await scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "title", "value": "line one\nline two, \\ \u0001 ✓"}]})
    await scim.post("/Users", {"userName": ""})  # refused: in the provisioning log
    await scim.delete(f"/Users/{user['id']}")


@pytest.mark.parametrize(("kind", "output"), [
    ("events", "jsonl"), ("events", "csv"), ("provisioning", "jsonl"), ("provisioning", "csv")])
async def test_the_cli_writes_the_bytes_the_http_export_sends(rfc: Scim, database_url, tmp_path, kind, output):
    await history(rfc)
    path = {"events": "/api/2/audit/events", "provisioning": "/api/2/audit/provisioning"}[kind]
    over_http = await http_export(rfc, path, format=output, limit="10000")
    target = tmp_path / f"export.{output}"
    code = await asyncio.to_thread(main, ["audit", "export", "--tenant", "plain", "--kind", kind, "--format", output,
                                          "-o", str(target), "--database-url", database_url])
    assert code == 0
    assert target.read_bytes() == over_http
    assert over_http.count(b"\n") > 3


async def test_json_lines_and_the_json_page_hold_the_same_rows(rfc: Scim):
    await history(rfc)
    lines = await http_export(rfc, "/api/2/audit/events", format="jsonl")
    page = orjson.loads(await http_export(rfc, "/api/2/audit/events", format="json"))
    assert [orjson.loads(line) for line in lines.splitlines()] == page["items"]
    [update] = [item for item in page["items"] if item["action"] == "update"]
    assert update["new_value"] == "line one\nline two, \\ \u0001 ✓"
    assert page["items"][0]["recorded_at"].endswith("Z") and len(page["items"][0]["recorded_at"]) == 27


async def test_an_empty_page_is_empty_in_every_format(rfc: Scim):
    filters = {"user": "nobody@example.com"}
    assert await http_export(rfc, "/api/2/audit/events", format="jsonl", **filters) == b""
    assert orjson.loads(await http_export(rfc, "/api/2/audit/events", format="json", **filters))["items"] == []
    header = await http_export(rfc, "/api/2/audit/events", format="csv", **filters)
    assert header.startswith(b"id,seq,position,recorded_at,") and header.count(b"\r\n") == 1


@pytest.mark.parametrize(("stored", "asked"), [
    ("Straße@example.com", "STRASSE@EXAMPLE.COM"),  # ß folds to ss; lower() keeps it
    ("İstanbul@example.com", "i̇STANBUL@example.com"),  # Turkish dotted İ folds to i + U+0307
])
async def test_the_user_filter_folds_like_the_users_view(rfc: Scim, stored, asked):
    _, user = await rfc.post("/Users", {"userName": stored})
    await rfc.post("/Users", {"userName": "someone.else@example.com"})
    assert fold(stored) == fold(asked)
    events = [orjson.loads(line) for line in
              (await http_export(rfc, "/api/2/audit/events", format="jsonl", user=asked)).splitlines()]
    assert [(row["user_id"], row["action"]) for row in events] == [(user["id"], "create")]
    requests = [orjson.loads(line) for line in
                (await http_export(rfc, "/api/2/audit/provisioning", format="jsonl", user=asked)).splitlines()]
    assert [(row["target_id"], row["action"]) for row in requests] == [(user["id"], "create")]


async def test_the_actor_filter_folds_the_owner(token_for):
    straße = await token_for("acme", "rfc", SCOPES, owner="Provisioning-Straße@example.com")
    other = await token_for("acme", "rfc", SCOPES, owner="other@example.com")
    await straße.post("/Users", entra_user("a@example.com", "a"))
    await other.post("/Users", entra_user("b@example.com", "b"))
    rows = [orjson.loads(line) for line in (await http_export(
        other, "/api/2/audit/events", format="jsonl", action="create", actor="provisioning-STRASSE@EXAMPLE.com",
    )).splitlines()]
    assert [row["user_name"] for row in rows] == ["a@example.com"]


async def test_rows_older_than_the_folded_columns_are_folded_after_the_migration(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "Straße@example.com"})
    pool = rfc.client.app[POOL]
    await http_export(rfc, "/api/2/audit/events")  # catches the projector up
    await pool.execute("UPDATE audit_trail SET user_name_folded = NULL, actor_owner_folded = NULL")
    await pool.execute("UPDATE provisioning_log SET target_user_name_folded = NULL, actor_owner_folded = NULL")
    async with pool.acquire() as connection:
        await audit.refold(connection)
    assert await pool.fetchval("SELECT count(*) FROM audit_trail WHERE user_name IS NOT NULL "
                               "AND user_name_folded IS NULL") == 0
    rows = [orjson.loads(line) for line in
            (await http_export(rfc, "/api/2/audit/events", format="jsonl", user="STRASSE@example.com")).splitlines()]
    assert [row["user_id"] for row in rows] == [user["id"]]
    owners = await pool.fetch("SELECT DISTINCT actor_owner, actor_owner_folded FROM provisioning_log")
    assert [(r["actor_owner"], r["actor_owner_folded"]) for r in owners] == [
        ("scim-bot@example.com", "scim-bot@example.com")]


async def test_a_reader_gone_mid_copy_leaves_the_connection_usable(rfc: Scim, monkeypatch):
    """`audit export | head -1`: the closed pipe surfaces once the COPY has run out, so the
    transaction rolls back cleanly and the command ends quietly (tests/gateway/cli/test_output.py)."""
    from projections import audit_export

    await history(rfc)
    await http_export(rfc, "/api/2/audit/events")  # catches the projector up
    monkeypatch.setattr(audit_export, "_CHUNK", 1)  # every read is written at once, inside the COPY
    writes = 0

    async def closed_pipe(chunk: bytes | bytearray) -> None:
        nonlocal writes
        writes += 1
        raise BrokenPipeError(32, "Broken pipe")

    pool = rfc.client.app[POOL]
    tenant_id = await pool.fetchval("SELECT tenant_id FROM tenants WHERE name = 'plain'")
    query = audit_export.ExportQuery(kind="events", tenant_id=tenant_id, limit=None)
    async with pool.acquire() as connection:
        with pytest.raises(BrokenPipeError):
            async with connection.transaction(isolation="repeatable_read"):
                last = await audit_export.last_seq_of_page(connection, query)
                await audit_export.stream_export(connection, query, last, "jsonl", closed_pipe)
        assert await connection.fetchval("SELECT count(*) FROM audit_trail WHERE tenant_id = $1", tenant_id) > 3
    assert writes == 1

"""The audit export API: every change once, with its actor; failures in the provisioning log;
cursors that resume exactly; three formats that read back the same; tenants kept apart."""

import asyncio
import csv
import io

import orjson
import pytest

from domain.tenant import SCOPES
from eventstore.pool import init_connection  # noqa: F401 - the pool codec is what the app uses
from gateway.http.keys import AUDIT_RUNNER, POOL, STORE
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def ops(*operations):
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def export(scim: Scim, path: str, **params) -> tuple[list[dict], str, object]:
    response = await scim.client.get(path, params=params, headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert response.headers["Link"].endswith('rel="next"')
    return body["items"], body["next"], response


async def lifecycle(scim: Scim) -> str:
    _, user = await scim.post("/Users", entra_user())
    path = f"/Users/{user['id']}"
    await scim.patch(path, ops({"op": "replace", "path": "name.familyName", "value": "Jones"}))
    await scim.patch(path, ops({"op": "replace", "path": "title", "value": "CEO"}))  # ignored (bynder)
    await scim.patch(path, ops({"op": "replace", "path": "active", "value": "False"}))
    await scim.delete(path)
    return user["id"]


async def test_every_change_appears_once_with_its_actor(bynder: Scim):
    user_id = await lifecycle(bynder)
    items, _, _ = await export(bynder, "/api/2/audit/events", user=user_id)
    assert [(i["action"], i["attribute"]) for i in items] == [
        ("create", None), ("update", "name.familyName"), ("ignored_attribute", "title"),
        ("deactivate", "active"), ("delete", None)]
    assert all(i["actor_owner"] == "scim-bot@example.com" and i["actor_description"] == "SCIM Token" for i in items)
    assert items[1]["old_value"] == "Smith" and items[1]["new_value"] == "Jones"
    assert all(i["user_name"] == "ann.smith@example.com" for i in items)
    assert len({i["id"] for i in items}) == len(items)
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)


async def test_token_lifecycle_is_in_the_trail(bynder: Scim):
    items, _, _ = await export(bynder, "/api/2/audit/events", action="token_issued")
    assert items and items[0]["new_value"]["owner"] == "scim-bot@example.com"
    assert "secret" not in orjson.dumps(items).decode()


async def test_provisioning_log_has_successes_failures_and_skips(bynder: Scim):
    await lifecycle(bynder)
    await bynder.post("/Users", {"userName": "nobody@example.com"})  # missing names and email
    _, user = await bynder.post("/Users", entra_user("b@example.com", "b"))
    await bynder.patch(f"/Users/{user['id']}", ops({"op": "replace", "path": "active", "value": True}))  # no-op
    items, _, _ = await export(bynder, "/api/2/audit/provisioning")
    summary = [(i["action"], i["result"], i["status"]) for i in items]
    assert summary == [
        ("create", "success", 201), ("update", "success", 200), ("update", "success", 200),
        ("disable", "success", 200), ("delete", "success", 204), ("create", "failure", 400),
        ("create", "success", 201), ("update", "skipped", 200)]
    failure = items[5]
    assert failure["scim_type"] == "invalidValue" and "name.givenName" in failure["detail"]
    assert failure["actor_owner"] == "scim-bot@example.com" and failure["method"] == "POST"
    assert items[1]["changed_attributes"] == ["name.familyName"]
    assert items[2]["ignored_attributes"] == ["title"]
    assert items[0]["target_user_name"] == "ann.smith@example.com" and items[0]["target_external_id"] == "ann"
    assert all(i["duration_ms"] is not None and i["duration_ms"] >= 0 for i in items)
    failures, _, _ = await export(bynder, "/api/2/audit/provisioning", result="failure")
    assert [i["id"] for i in failures] == [failure["id"]]


async def test_user_timeline(bynder: Scim):
    user_id = await lifecycle(bynder)
    response = await bynder.client.get(f"/api/2/audit/users/{user_id}/timeline",
                                       headers={"Authorization": f"Bearer {bynder.token}"})
    body = await response.json()
    assert [i["action"] for i in body["items"]] == ["create", "update", "ignored_attribute", "deactivate", "delete"]


async def test_cursor_resumes_without_loss_or_duplication_across_concurrent_writers(rfc: Scim):
    seen: list[str] = []
    cursor = None

    async def poll():
        nonlocal cursor
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        items, cursor, _ = await export(rfc, "/api/2/audit/events", **params)
        seen.extend(i["id"] for i in items)

    async def writer(n: int):
        for i in range(6):
            await rfc.post("/Users", {"userName": f"w{n}-{i}"})

    writers = asyncio.gather(*(writer(n) for n in range(4)))
    while not writers.done():
        await poll()
        await asyncio.sleep(0)
    await writers
    for _ in range(10):
        await poll()
    creates = await rfc.client.app[POOL].fetchval("SELECT count(*) FROM events WHERE type = 'UserCreated'")
    assert creates == 24
    all_items, _, _ = await export(rfc, "/api/2/audit/events", limit="10000")
    assert seen == [i["id"] for i in all_items]
    assert len(seen) == len(set(seen))


async def test_a_row_committed_late_is_still_exported_after_the_cursor(rfc: Scim):
    from eventstore import NewEvent

    _, first, _ = await export(rfc, "/api/2/audit/events")
    store_pool = rfc.client.app[POOL]
    slow = await store_pool.acquire()
    try:
        transaction = slow.transaction()
        await transaction.start()
        tenant_id = await slow.fetchval("SELECT tenant_id FROM tenants WHERE name = 'plain'")
        await rfc.client.app[STORE].append(
            "tenant-late", 0, [NewEvent("TenantPolicyChanged", {
                "tenant_id": str(tenant_id), "setting": "default_profile", "old": None, "new": "late"})],
            {}, tenant_id=tenant_id, connection=slow)
        # The fast write of the same tenant waits for the open one's hold on the tenant's head.
        fast = asyncio.create_task(rfc.post("/Users", {"userName": "fast"}))
        for _ in range(500):
            if await store_pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
                break
            await asyncio.sleep(0.01)
        items, cursor, _ = await export(rfc, "/api/2/audit/events", cursor=first)
        assert [i["action"] for i in items] == []
        assert not fast.done()
        await transaction.commit()
    finally:
        await store_pool.release(slow)
    response, _ = await fast
    assert response.status == 201
    items, _, _ = await export(rfc, "/api/2/audit/events", cursor=cursor)
    assert [i["action"] for i in items] == ["tenant_policy_changed", "create"]
    del NewEvent


async def test_csv_and_jsonl_read_back_into_the_same_rows(bynder: Scim):
    await lifecycle(bynder)
    auth = {"Authorization": f"Bearer {bynder.token}"}
    json_items, _, _ = await export(bynder, "/api/2/audit/events")
    response = await bynder.client.get("/api/2/audit/events", headers={**auth, "Accept": "application/x-ndjson"})
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    jsonl_items = [orjson.loads(line) for line in (await response.read()).splitlines()]
    response = await bynder.client.get("/api/2/audit/events?format=csv", headers=auth)
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode())))
    assert jsonl_items == json_items
    assert len(rows) == len(json_items)
    for row, item in zip(rows, json_items, strict=True):
        for key, value in item.items():
            cell = row[key]
            if key in ("old_value", "new_value"):
                assert (orjson.loads(cell) if cell else None) == value
            else:
                assert cell == ("" if value is None else str(value)), key


async def test_tenant_a_cannot_read_tenant_bs_trail(token_for):
    a = await token_for("tenant-a")
    b = await token_for("tenant-b")
    await a.post("/Users", entra_user())
    items, _, _ = await export(b, "/api/2/audit/events", action="create")
    assert items == []
    _, cursor_a, _ = await export(a, "/api/2/audit/events")
    response = await b.client.get("/api/2/audit/events", params={"cursor": cursor_a},
                                  headers={"Authorization": f"Bearer {b.token}"})
    assert response.status == 400 and "another tenant" in (await response.json(content_type=None))["detail"]


@pytest.mark.parametrize("params", [
    {"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}, {"action": "explode"}, {"cursor": "garbage!"},
    {"limit": "0"}, {"limit": "10001"}, {"limit": "x"}, {"result": "maybe"},
])
async def test_bad_parameters_are_400(bynder: Scim, params):
    response = await bynder.client.get("/api/2/audit/events", params=params,
                                       headers={"Authorization": f"Bearer {bynder.token}"})
    assert response.status == 400, params


async def test_a_provisioning_cursor_is_foreign_to_the_events_export(bynder: Scim):
    _, cursor, _ = await export(bynder, "/api/2/audit/provisioning")
    response = await bynder.client.get("/api/2/audit/events", params={"cursor": cursor},
                                       headers={"Authorization": f"Bearer {bynder.token}"})
    assert response.status == 400


async def test_a_token_without_audit_read_gets_403(token_for):
    scim_only = await token_for("acme", scopes=("scim:read", "scim:write"))
    response = await scim_only.client.get("/api/2/audit/events", headers={"Authorization": f"Bearer {scim_only.token}"})
    assert response.status == 403


async def test_unacceptable_format_is_406(bynder: Scim):
    response = await bynder.client.get("/api/2/audit/events", headers={
        "Authorization": f"Bearer {bynder.token}", "Accept": "application/xml"})
    assert response.status == 406


async def test_filters_since_until_and_actor(bynder: Scim, token_for):
    other = await token_for("acme", SCOPES, owner="other-bot@example.com")
    await bynder.post("/Users", entra_user("a@example.com", "a"))
    await bynder.client.app[AUDIT_RUNNER].catch_up()
    middle = await bynder.client.app[POOL].fetchval("SELECT now()")
    await other.post("/Users", entra_user("b@example.com", "b"))
    after, _, _ = await export(bynder, "/api/2/audit/events", since=middle.isoformat(), action="create")
    before, _, _ = await export(bynder, "/api/2/audit/events", until=middle.isoformat(), action="create")
    assert [i["user_name"] for i in after] == ["b@example.com"]
    assert [i["user_name"] for i in before] == ["a@example.com"]
    by_actor, _, _ = await export(bynder, "/api/2/audit/events", actor="OTHER-bot@example.com", action="create")
    assert [i["user_name"] for i in by_actor] == ["b@example.com"]


async def test_the_provisioning_log_filters_by_request_id(bynder: Scim):
    await bynder.post("/Users", entra_user("a@example.com", "a"))
    response, _ = await bynder.post("/Users", entra_user("b@example.com", "b"), headers={"X-Request-Id": "req-b.1"})
    assert response.status == 201
    items, _, _ = await export(bynder, "/api/2/audit/provisioning", request_id="req-b.1")
    assert [(i["client_request_id"], i["target_user_name"]) for i in items] == [("req-b.1", "b@example.com")]
    ours, _, _ = await export(bynder, "/api/2/audit/provisioning", request_id=response.headers["X-Gateway-Request-Id"])
    assert ours == items
    response = await bynder.client.get("/api/2/audit/provisioning", params={"request_id": "x" * 201},
                                       headers={"Authorization": f"Bearer {bynder.token}"})
    assert response.status == 400
    assert (await response.json())["detail"] == "request_id must be at most 200 characters"

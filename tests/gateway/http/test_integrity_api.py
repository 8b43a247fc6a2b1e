"""Checkpoints and Merkle proofs over HTTP: what a SIEM fetches and checks on its own."""

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import orjson

from domain.tenant import SCOPES
from eventstore import merkle
from eventstore.signed_note import CheckpointBody, Signature, SigningKey, open_note
from gateway.app import create_app
from gateway.http.keys import STORE, TENANCY
from gateway.settings import Settings
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner
from tests.conftest import ACTOR
from tests.scim_client import Scim, entra_user

KEY = SigningKey.generate("scim-gateway")
EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "verify_event.py"


async def get(scim: Scim, path: str, **params):
    response = await scim.client.get(path, params=params, headers={"Authorization": f"Bearer {scim.token}"})
    body = await response.json() if response.content_type.endswith("json") else await response.text()
    return response.status, body


async def sealed(scim: Scim, users: int) -> list[str]:
    """Create users, sealing and signing after each; return the users' ids."""
    ids = []
    for i in range(users):
        _, user = await scim.post("/Users", entra_user(f"user{i}@example.com"))
        ids.append(user["id"])
        await SealerRunner(scim.client.app[STORE], Sealer(KEY, CheckpointPolicy(every_events=1))).catch_up()
    return ids


async def event_id_of(scim: Scim, user_id: str) -> str:
    [row] = await scim.client.app[STORE].pool.fetch(
        "SELECT event_id FROM events WHERE stream_id LIKE '%' || $1 AND type = 'UserCreated'", user_id)
    return str(row["event_id"])


async def test_checkpoints_are_listed_in_tree_size_order_as_signed_notes(bynder: Scim):
    await sealed(bynder, 3)
    status, body = await get(bynder, "/api/2/audit/checkpoints")
    assert status == 200
    sizes = [item["treeSize"] for item in body["items"]]
    assert sizes == sorted(sizes) and len(sizes) == 3 and body["next"] == sizes[-1]
    for item in body["items"]:
        text, signature = open_note(item["note"], KEY.verifier)
        assert signature is Signature.VALID
        assert CheckpointBody.parse(text).tree_size == item["treeSize"]
        assert base64.b64decode(item["rootHash"]) == CheckpointBody.parse(text).root_hash

    status, page = await get(bynder, "/api/2/audit/checkpoints", after=str(sizes[0]), limit="1")
    assert (status, [i["treeSize"] for i in page["items"]], page["next"]) == (200, [sizes[1]], sizes[1])
    status, latest = await get(bynder, "/api/2/audit/checkpoints/latest")
    assert (status, latest) == (200, body["items"][-1]["note"])


async def test_an_inclusion_proof_ties_an_event_to_the_signed_root(bynder: Scim):
    [first, _] = await sealed(bynder, 2)
    event_id = await event_id_of(bynder, first)
    _, listing = await get(bynder, "/api/2/audit/checkpoints")
    checkpoint = CheckpointBody.parse(open_note(listing["items"][-1]["note"], KEY.verifier)[0])

    status, proof = await get(bynder, "/api/2/audit/proofs/inclusion", event_id=event_id)
    assert status == 200 and proof["treeSize"] == checkpoint.tree_size
    assert merkle.verify_inclusion(proof["leafIndex"], proof["treeSize"], base64.b64decode(proof["leafHash"]),
                                   [base64.b64decode(p) for p in proof["inclusionPath"]], checkpoint.root_hash)


async def test_a_consistency_proof_ties_an_earlier_checkpoint_to_a_later_one(bynder: Scim):
    await sealed(bynder, 3)
    _, listing = await get(bynder, "/api/2/audit/checkpoints")
    first, second = (CheckpointBody.parse(open_note(listing["items"][i]["note"], KEY.verifier)[0]) for i in (0, -1))

    status, proof = await get(bynder, "/api/2/audit/proofs/consistency", first=str(first.tree_size))
    assert status == 200 and (proof["first"], proof["second"]) == (first.tree_size, second.tree_size)
    assert merkle.verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash,
                                     [base64.b64decode(p) for p in proof["consistencyPath"]])


async def test_bad_proof_requests_get_scim_errors(bynder: Scim):
    await sealed(bynder, 1)
    status, body = await get(bynder, "/api/2/audit/proofs/inclusion", event_id="nope")
    assert (status, body["detail"]) == (400, "event_id must be a UUID, not 'nope'")
    status, body = await get(bynder, "/api/2/audit/proofs/inclusion", event_id="00000000-0000-0000-0000-000000000000")
    assert status == 404 and body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    status, body = await get(bynder, "/api/2/audit/proofs/consistency", first="5", second="2")
    assert (status, body["detail"]) == (400, "first (5) must not exceed second (2)")
    status, body = await get(bynder, "/api/2/audit/proofs/consistency", first="1", second="999")
    assert status == 400 and body["detail"].startswith("tree size 999 is larger than the sealed tree")
    status, body = await get(bynder, "/api/2/audit/checkpoints", limit="0")
    assert (status, body["detail"]) == (400, "limit must be between 1 and 1000")
    status, body = await get(bynder, "/api/2/audit/proofs/consistency")
    assert (status, body["detail"]) == (400, "first is required")


async def test_checkpoints_need_the_audit_scope_and_stay_within_the_tenant(bynder: Scim, token_for):
    [user_id] = await sealed(bynder, 1)
    reader = await token_for("acme", scopes=("scim:read",))
    status, body = await get(reader, "/api/2/audit/checkpoints")
    assert status == 403
    other = await token_for("globex")
    status, body = await get(other, "/api/2/audit/checkpoints")
    assert (status, body["items"]) == (200, [])
    status, _ = await get(other, "/api/2/audit/checkpoints/latest")
    assert status == 404
    status, body = await get(other, "/api/2/audit/proofs/inclusion", event_id=await event_id_of(bynder, user_id),
                             tree_size="1")
    assert status == 404 and "is not sealed (yet) in this tenant's log" in body["detail"]


async def test_a_serving_gateway_seals_and_signs_in_the_background(database_url, aiohttp_client, tmp_path):
    key_file = tmp_path / "signing.key"
    key_file.write_text(KEY.text())
    settings = Settings(pool_min_size=1, pool_max_size=8, access_log=False, signing_key_file=key_file,
                        checkpoint_events=1)
    client = await aiohttp_client(create_app(settings, database_url))
    tenancy = client.app[TENANCY]
    tenant = await tenancy.create_tenant("acme", "bynder", ACTOR)
    _, secret = await tenancy.create_token("acme", "bot@acme.example", "SCIM Token", SCOPES, ACTOR)
    scim = Scim(client, secret)
    await scim.post("/Users", entra_user())
    events = await client.app[STORE].pool.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1",
                                                   tenant.tenant_id)

    async def signed() -> None:
        # Waits on the sealer's own checkpoint (the latest signed tree), never on a fixed sleep.
        while True:
            status, note = await get(scim, "/api/2/audit/checkpoints/latest")
            if status == 200 and CheckpointBody.parse(open_note(note, KEY.verifier)[0]).tree_size == events:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(signed(), 30)


async def test_the_documented_independent_check_agrees(bynder: Scim, database_url, tmp_path):
    """docs/examples/verify_event.py, which uses no scim-gateway code, accepts a real proof."""
    [user_id, _] = await sealed(bynder, 2)
    event_id = await event_id_of(bynder, user_id)
    _, proof = await get(bynder, "/api/2/audit/proofs/inclusion", event_id=event_id)
    _, note = await get(bynder, "/api/2/audit/checkpoints/latest")
    (tmp_path / "proof.json").write_text(orjson.dumps(proof).decode())
    (tmp_path / "checkpoint.note").write_text(note)
    (tmp_path / "log.pub").write_text(KEY.verifier.text())
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), database_url, event_id, str(tmp_path / "proof.json"),
        str(tmp_path / "checkpoint.note"), str(tmp_path / "log.pub"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert [line.rsplit(": ", 1)[1] for line in out.decode().splitlines()] == ["True", "True", "True"]

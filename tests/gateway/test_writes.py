"""The one write loop (gateway/writes.py): a lost race is retried behind the winner, If-Match
turns it into 412, and a refusal, however early, is on record with its target."""

from __future__ import annotations

import pytest

from gateway.http.keys import STORE, TENANCY, USERS
from gateway.scim.errors import ScimError
from gateway.scim.patch import parse_patch
from gateway.users import UserWrites
from gateway.writes import RequestContext, write
from tests.gateway.http.test_refusals_recorded import provisioning
from tests.scim_client import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def replace(path: str, value: object) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]}


class LosesTheFirstRace(UserWrites):
    """Users, with another writer committing between the first try's load and its append."""

    def __init__(self, inner: UserWrites, rival) -> None:
        super().__init__(inner.view, inner.reads, inner.cipher)
        self.rival = rival
        self.loads: list[bool] = []

    async def load(self, connection, principal, target_id, *, locked):
        self.loads.append(locked)
        return await super().load(connection, principal, target_id, locked=locked)

    async def decide(self, connection, principal, target_id, state, command):
        if len(self.loads) == 1:
            await self.rival()
        return await super().decide(connection, principal, target_id, state, command)


async def _setup(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "raced", "title": "first"})
    principal = await rfc.client.app[TENANCY].authenticate(rfc.token)
    ctx = RequestContext("req-under-test", "PATCH", f"/scim/v2/Users/{user['id']}", "127.0.0.1", "pytest")
    return user, principal, ctx


async def test_a_write_that_lost_a_race_retries_queued_behind_the_winner(rfc: Scim):
    user, principal, ctx = await _setup(rfc)

    async def rival() -> None:
        response, _ = await rfc.patch(f"/Users/{user['id']}", replace("title", "rival"))
        assert response.status == 200

    resource = LosesTheFirstRace(rfc.client.app[USERS].writes, rival)
    state = await write(rfc.client.app[STORE], resource, principal, ctx, user["id"],
                        parse_patch(replace("displayName", "Ann")))

    assert resource.loads == [False, True]  # the retry ran in a transaction, queued
    assert (state.version, state.attributes["title"], state.attributes["displayName"]) == (3, "rival", "Ann")
    _, fetched = await rfc.get(f"/Users/{user['id']}")
    assert (fetched["meta"]["version"], fetched["title"], fetched["displayName"]) == ('W/"3"', "rival", "Ann")


async def test_with_if_match_a_lost_race_is_412_and_nothing_is_written(rfc: Scim):
    user, principal, ctx = await _setup(rfc)

    async def rival() -> None:
        await rfc.patch(f"/Users/{user['id']}", replace("title", "rival"))

    resource = LosesTheFirstRace(rfc.client.app[USERS].writes, rival)
    with pytest.raises(ScimError) as refused:
        await write(rfc.client.app[STORE], resource, principal, ctx, user["id"],
                    parse_patch(replace("displayName", "Ann")), if_match='W/"1"')

    assert refused.value.status == 412
    assert resource.loads == [False]
    _, fetched = await rfc.get(f"/Users/{user['id']}")
    assert (fetched["meta"]["version"], "displayName" in fetched) == ('W/"2"', False)


async def test_a_stale_if_match_over_http_is_412_and_on_record(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "stale"})
    await rfc.patch(f"/Users/{user['id']}", replace("title", "moved on"))

    response, error = await rfc.patch(f"/Users/{user['id']}", replace("title", "late"),
                                      headers={"If-Match": 'W/"1"'})

    assert (response.status, error["status"]) == (412, "412")
    [row] = await provisioning(rfc, result="failure")
    assert (row["method"], row["status"], row["target_id"]) == ("PATCH", 412, user["id"])


async def test_a_malformed_patch_is_refused_before_any_read_and_on_record_with_its_target(rfc: Scim,
                                                                                         monkeypatch):
    _, user = await rfc.post("/Users", {"userName": "target"})
    loads: list[str] = []
    original = UserWrites.load

    async def spy(self, connection, principal, target_id, *, locked):
        loads.append(target_id)
        return await original(self, connection, principal, target_id, locked=locked)

    monkeypatch.setattr(UserWrites, "load", spy)
    response, error = await rfc.patch(f"/Users/{user['id']}", replace("userName", 42))

    assert (response.status, error["scimType"]) == (400, "invalidValue")
    assert loads == []
    [row] = await provisioning(rfc, result="failure")
    assert (row["method"], row["status"], row["scim_type"], row["target_id"]) == (
        "PATCH", 400, "invalidValue", user["id"])

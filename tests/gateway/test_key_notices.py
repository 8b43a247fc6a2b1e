"""An erasure reaches every serving process's key cache at once (NOTIFY on
``subject_keys.KEYS_CHANNEL``, heard by ``gateway/revocations.py``), not after the cache's
expiry. The same on a shard: tests/gateway/test_shards.py."""

from __future__ import annotations

import os

import asyncpg

from domain.personal import user_subject
from eventstore.crypto import FieldCipher
from eventstore.keyring import Keyring
from gateway.http.keys import STORE, TENANCY
from projections.personal import PersonalData
from tests.gateway.test_erasure import person
from tests.gateway.test_revocations import _TERMINATE_LISTENER, _until
from tests.scim_client import Scim


async def test_an_erasure_in_another_process_drops_this_processs_cached_key_at_once(rfc: Scim, database_url):
    response, user = await rfc.post("/Users", person())
    assert response.status == 201
    principal = await rfc.client.app[TENANCY].authenticate(rfc.token)
    cipher = rfc.client.app[STORE].cipher
    subject = user_subject(user["id"])
    assert cipher.has(principal.tenant_id, subject)  # the create cached the new user's key
    # Another process (its own pool and cipher) shreds the key, as `users erase` does.
    other_cipher = FieldCipher(Keyring(os.urandom(32)), PersonalData())
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            assert await other_cipher.destroy(other, principal.tenant_id, subject) is True
    finally:
        await other.close()
    # Well before the cache's 5 minutes: the commit's notice reached this process.
    await _until(lambda: not cipher.has(principal.tenant_id, subject), "the notice dropped the cached key")


async def test_when_the_listener_drops_every_cached_key_is_dropped(rfc: Scim, database_url):
    response, user = await rfc.post("/Users", person())
    principal = await rfc.client.app[TENANCY].authenticate(rfc.token)
    cipher = rfc.client.app[STORE].cipher
    assert response.status == 201 and cipher.has(principal.tenant_id, user_subject(user["id"]))
    admin = await asyncpg.connect(database_url)
    try:  # a shredding announced while nobody listens is never heard: forget them all
        assert await admin.fetchval(_TERMINATE_LISTENER) == 1
    finally:
        await admin.close()
    await _until(lambda: not cipher.has(principal.tenant_id, user_subject(user["id"])), "the cache was dropped")

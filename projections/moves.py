"""Moving a tenant to another database while its writers run (issue 19).

1. Copy its events to the target in tenant order, as often as needed to get close.
2. Take the fence (the tenant's head row on the source): writers of the tenant queue there.
3. Copy the rest; fold the tenant's users and groups views on the target from its events.
4. Flip the directory, mark the source's head row moved, commit: the queued writers are
   refused with ``TenantMoved`` (503) and their retries reach the target.

Every acknowledged write was committed before the fence, so it was copied. The audit rows are
made on the target by its own projector, from checkpoint 0. Tenants and tokens stay on the
home database. The source keeps its copy, read-only (see docs/architecture.md for retiring it).
"""

from __future__ import annotations

import uuid

from eventstore import EventStore
from eventstore.crypto import FieldCipher
from eventstore.directory import Shards
from eventstore.moves import copy_keys, copy_tenant, fence, mark_moved
from projections.groups_view import GroupsView
from projections.users_view import UsersView


async def move_tenant(shards: Shards, tenant_id: uuid.UUID, target_name: str, batch_size: int = 1000,
                      cipher: FieldCipher | None = None) -> int:
    """Move ``tenant_id`` to the database ``target_name``; return how many events it has there."""
    source_pool = shards.pool_for(tenant_id)
    target_pool = shards.pools[target_name]
    if source_pool is target_pool:
        raise ValueError(f"tenant {tenant_id} is on {target_name!r} already")
    # The views are folded from plaintext: the target opens sealed values with the moved keys.
    target_store = EventStore(target_pool, cipher=cipher)
    async with source_pool.acquire() as source, target_pool.acquire() as target:
        await copy_tenant(source, target, tenant_id, batch_size)  # while writers run
        async with source.transaction():
            await fence(source, tenant_id)
            copied = await copy_tenant(source, target, tenant_id, batch_size)
            async with target.transaction():
                await copy_keys(source, target, tenant_id)
                views = (UsersView(), GroupsView())
                after = 0
                while batch := await target_store.read_tenant(tenant_id, after, limit=batch_size,
                                                              connection=target):
                    for view in views:
                        await view.apply(target, batch)
                    after = batch[-1].tenant_position
            await shards.place(tenant_id, target_name)
            await mark_moved(source, tenant_id, target_name)
    return copied

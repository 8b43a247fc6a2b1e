"""Two projector processes share the tenants: every event projected exactly once, in order."""

import asyncio
import uuid

import asyncpg

from eventstore import EventStore, NewEvent
from eventstore.pool import create_pool
from projections.audit import AuditProjection
from projections.rebuild import verify
from projections.runner import CatchUpRunner


class Recording:
    """Records every event it is given (after the audit projection ran on the batch)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.audit = AuditProjection()

    async def apply(self, connection: asyncpg.Connection, envelopes) -> None:
        await self.audit.apply(connection, envelopes)
        await connection.executemany(
            "INSERT INTO projected (tenant_id, event_id, tenant_position, projector) VALUES ($1, $2, $3, $4)",
            [(e.tenant_id, e.event_id, e.tenant_position, self.tag) for e in envelopes])


def user_created(tenant: uuid.UUID, number: int) -> list[NewEvent]:
    user_id = str(uuid.uuid5(tenant, str(number)))
    return [NewEvent("UserCreated", {"user_id": user_id, "user_name": f"u{number}@example.com",
                                     "attributes": {"externalId": f"x{number}"}, "active": True,
                                     "login_method": "sso", "permission_profile": None}),
            NewEvent("UserDeactivated", {"user_id": user_id, "reason": "patch"})]


async def test_two_projectors_over_50_tenants_project_every_event_once(database_url: str, pool: asyncpg.Pool):
    await pool.execute("CREATE TABLE projected (n bigserial, tenant_id uuid, event_id uuid, tenant_position bigint, "
                       "projector text)")
    tenants = [uuid.uuid4() for _ in range(50)]
    writer = EventStore(pool)
    pools = [await create_pool(database_url, min_size=1, max_size=2) for _ in range(2)]
    runners = [CatchUpRunner(EventStore(p), "audit", Recording(tag), batch_size=3)
               for p, tag in zip(pools, ("one", "two"), strict=True)]
    writing = True
    applied = {"one": 0, "two": 0}

    async def write(offset: int) -> None:
        for number in range(6):
            for tenant in tenants[offset::4]:
                await writer.append(f"user-{number}", 0, user_created(tenant, number), {}, tenant_id=tenant)

    async def project(runner: CatchUpRunner, tag: str) -> None:
        while writing:
            applied[tag] += await runner.catch_up()
            await asyncio.sleep(0)
        applied[tag] += await runner.catch_up()

    try:
        projecting = [asyncio.create_task(project(r, t)) for r, t in zip(runners, ("one", "two"), strict=True)]
        await asyncio.gather(*(write(offset) for offset in range(4)))
        writing = False
        await asyncio.gather(*projecting)
        # Whatever one projector skipped as claimed by the other, the other finished.
        assert sum(applied.values()) == 50 * 6 * 2
        for tenant in tenants:
            rows = await pool.fetch("SELECT tenant_position FROM projected WHERE tenant_id = $1 ORDER BY n", tenant)
            assert [r["tenant_position"] for r in rows] == list(range(1, 13))
            audit = await pool.fetch("SELECT seq, action FROM audit_trail WHERE tenant_id = $1 ORDER BY seq", tenant)
            assert [r["seq"] for r in audit] == list(range(1, 13))
            assert [r["action"] for r in audit] == ["create", "deactivate"] * 6
            provisioning = await pool.fetch(
                "SELECT seq, action FROM provisioning_log WHERE tenant_id = $1 ORDER BY seq", tenant)
            assert [(r["seq"], r["action"]) for r in provisioning] == [(n, "create") for n in range(1, 7)]
        assert await pool.fetchval("SELECT count(*) FROM projected") == 600
        assert await runners[0].positions() == {tenant: 12 for tenant in tenants}
        assert await verify(database_url, writer, "audit") == []
    finally:
        for created in pools:
            await created.close()

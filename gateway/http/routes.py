"""URL map: probes, and the SCIM surface under both base paths."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from eventstore.errors import DATABASE_ERRORS
from gateway.http import admin_handlers as admin
from gateway.http import audit_handlers as audit
from gateway.http import group_handlers as groups
from gateway.http import integrity_handlers as integrity
from gateway.http import scim_handlers as scim
from gateway.http import search
from gateway.http.keys import METRICS, POOL, SETTINGS
from gateway.http.responses import json_response

# Entra ID's tenant URL for the reference product, and the conventional one.
BASE_PATHS = ("/api/2/scim", "/scim/v2")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(request.app[SETTINGS].db_timeout):
            await request.app[POOL].fetchval("SELECT 1")
    except Exception as error:  # any failure means not ready
        return web.Response(
            body=f'{{"status":"unavailable","error":"{type(error).__name__}"}}',
            status=503, content_type="application/json", headers={"Retry-After": "1"},
        )
    return json_response({"status": "ok"})


OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/yaml")


# Events not yet projected, summed over the tenants: each tenant's head against its audit
# checkpoint (a deliberate fan-out over the heads, one row per tenant).
_AUDIT_LAG = """
SELECT coalesce(sum(h.position - coalesce(c.tenant_position, 0)), 0)::bigint
FROM tenant_heads AS h
LEFT JOIN projection_tenant_checkpoints AS c ON c.tenant_id = h.tenant_id AND c.name = 'audit'
"""


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    pool = request.app[POOL]
    registry.pool.labels("max").set(pool.get_max_size())
    registry.pool.labels("open").set(pool.get_size())
    registry.pool.labels("idle").set(pool.get_idle_size())
    try:
        async with asyncio.timeout(request.app[SETTINGS].db_timeout):
            lag = await pool.fetchval(_AUDIT_LAG)
        registry.projection_lag.labels("audit").set(lag)
    except DATABASE_ERRORS:
        pass  # the scrape still answers; the gauge keeps its last value
    return registry.render()


def _ci(word: str) -> str:
    """A path segment matched case-insensitively: clients send /users as well as /Users.

    One empty segment before it is accepted too: a Tenant URL entered with a trailing slash
    (``https://host/scim/v2/``) makes Entra ID request ``/scim/v2//Users``."""
    name = word.lower().replace(".", "")
    pattern = word.replace(".", r"\.")
    return f"{{_{name}:/?(?i:{pattern})}}"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.yaml", openapi)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/2/audit/events", audit.audit_events)
    app.router.add_get("/api/2/audit/provisioning", audit.provisioning_log)
    app.router.add_get("/api/2/audit/users/{user_id}/timeline", audit.user_timeline)
    app.router.add_get("/api/2/audit/users/{user_id}", audit.user_at)
    app.router.add_get("/api/2/audit/checkpoints", integrity.list_checkpoints)
    app.router.add_get("/api/2/audit/checkpoints/latest", integrity.latest_checkpoint)
    app.router.add_get("/api/2/audit/proofs/inclusion", integrity.inclusion_proof)
    app.router.add_get("/api/2/audit/proofs/consistency", integrity.consistency_proof)
    app.router.add_post("/api/2/admin/users/{user_id}/erase", admin.erase)
    for base in BASE_PATHS:
        users = f"{base}/{_ci('Users')}"
        app.router.add_get(users, scim.list_users)
        app.router.add_get(users + "/", scim.list_users)  # Microsoft's collection lists at /Users/
        app.router.add_post(users, scim.create_user)
        app.router.add_post(f"{users}/{_ci('.search')}", scim.search_users)
        app.router.add_get(f"{users}/{{user_id}}", scim.get_user)
        app.router.add_put(f"{users}/{{user_id}}", scim.replace_user)
        app.router.add_patch(f"{users}/{{user_id}}", scim.patch_user)
        app.router.add_delete(f"{users}/{{user_id}}", scim.delete_user)
        app.router.add_post(f"{base}/{_ci('.search')}", search.search_all)
        for name, handler in (
            ("ServiceProviderConfig", scim.service_provider_config),
            # Microsoft's reference server and test collection use this name.
            ("serviceConfiguration", scim.service_provider_config),
            ("ResourceTypes", scim.resource_types),
            ("Schemas", scim.schemas),
        ):
            app.router.add_route("*", f"{base}/{_ci(name)}", handler)
            app.router.add_route("*", f"{base}/{_ci(name)}/{{item_id:.+}}", handler)
        group_list = f"{base}/{_ci('Groups')}"
        app.router.add_get(group_list, groups.list_groups)
        app.router.add_get(group_list + "/", groups.list_groups)
        app.router.add_post(group_list, groups.create_group)
        app.router.add_post(f"{group_list}/{_ci('.search')}", groups.search_groups)
        app.router.add_get(f"{group_list}/{{group_id}}", groups.get_group)
        app.router.add_put(f"{group_list}/{{group_id}}", groups.replace_group)
        app.router.add_patch(f"{group_list}/{{group_id}}", groups.patch_group)
        app.router.add_delete(f"{group_list}/{{group_id}}", groups.delete_group)

"""Tenant settings page: the settable policy keys, changed through ``Tenancy.set_tenant`` so
each change is a ``TenantPolicyChanged`` event attributed to the admin's token."""

from __future__ import annotations

from aiohttp import web

from domain.errors import Rejected
from domain.policy import PROFILES, SETTABLE, policy_for
from gateway.console.security import render, see_other
from gateway.http.keys import PRINCIPAL, TENANCY
from gateway.tenancy import TenantRow

CHOICES = {"profile": PROFILES, "patch_response": ("resource", "no_content"),
           "group_patch_response": ("resource", "no_content"), "unknown_members": ("reject", "ignore")}
LABELS = {
    "profile": "Policy profile",
    "default_profile": "Default permission profile for new users (empty: none)",
    "reactivation_cooldown_days": "Reactivation cooldown (days)",
    "patch_response": "User PATCH answer",
    "group_patch_response": "Group PATCH answer",
    "unknown_members": "Group member that is no user of the tenant",
}


def current_values(tenant: TenantRow) -> dict[str, str]:
    """The effective value of each setting (the profile's default unless overridden), as text."""
    policy = policy_for(tenant.profile, tenant.settings)  # type: ignore[arg-type]
    current = {key: tenant.profile if key == "profile" else getattr(policy, key) for key in SETTABLE}
    return {key: "" if value is None else str(value) for key, value in current.items()}


async def _page(request: web.Request, status: int = 200, error: str | None = None,
                entered: dict[str, str] | None = None) -> web.Response:
    principal = request[PRINCIPAL]
    tenant = await request.app[TENANCY].tenant(principal.tenant_name)
    values = entered or current_values(tenant)
    return render(request, "settings.html", {
        "section": "settings", "tenant": tenant, "keys": list(SETTABLE), "values": values,
        "choices": CHOICES, "labels": LABELS, "error": error, "saved": request.query.get("saved") == "1",
    }, status=status)


async def settings_page(request: web.Request) -> web.Response:
    return await _page(request)


async def save_settings(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    form = await request.post()
    entered = {key: str(form.get(key, "")).strip() for key in SETTABLE}
    tenancy = request.app[TENANCY]
    current = current_values(await tenancy.tenant(principal.tenant_name))
    # Only what the admin changed: a profile default shown on the form and sent back as is
    # must not become an override.
    changed = {key: value for key, value in entered.items() if value != current[key]}
    try:
        await tenancy.set_tenant(principal.tenant_name, changed, principal.actor())
    except Rejected as rejected:
        return await _page(request, 400, rejected.detail, entered)
    return see_other("/admin/settings?saved=1")

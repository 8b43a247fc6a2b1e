"""Every projection: its tables, the migrations that create them, and how it is kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eventstore import InlineProjection
from projections import MIGRATIONS
from projections.audit import AuditProjection
from projections.groups_view import GroupsView
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


@dataclass(frozen=True, slots=True)
class ProjectionSpec:
    name: str
    tables: tuple[str, ...]
    # The migrations that create the tables; replayed into a scratch schema to rebuild.
    migrations: tuple[str, ...]
    factory: Callable[[], InlineProjection]
    inline: bool

    def ddl(self) -> list[str]:
        return [(MIGRATIONS / name).read_text() for name in self.migrations]


# 0006 puts tenant_id first in every key of the three projections' tables (one file, guarded per table).
_TENANT_KEYS = "0006_tenant_keys.sql"
TENANCY = ProjectionSpec("tenancy", ("tenants", "tokens"), ("0001_tenancy.sql", "0010_token_lifecycle.sql"),
                         TenancyProjection, True)
# 0009 keys case-insensitive values by one fold (also guarded per table).
_CASE_FOLD = "0009_one_case_fold.sql"
USERS_VIEW = ProjectionSpec("users_view", ("users_view",), ("0002_users_view.sql", _TENANT_KEYS, _CASE_FOLD),
                            UsersView, True)
GROUPS = ProjectionSpec("groups", ("groups_view", "group_members"), ("0005_groups.sql", _TENANT_KEYS, _CASE_FOLD),
                        GroupsView, True)
AUDIT = ProjectionSpec(
    "audit", ("audit_trail", "provisioning_log", "audit_identities"),
    ("0004_audit.sql", _TENANT_KEYS, "0011_client_request_id.sql", "0013_audit_seq_per_tenant.sql",
     "0015_audit_folded_keys.sql"),
    AuditProjection, False,
)

PROJECTIONS = {spec.name: spec for spec in (TENANCY, USERS_VIEW, GROUPS, AUDIT)}

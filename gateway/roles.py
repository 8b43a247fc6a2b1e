"""The two database roles: an owner that migrates, and the application role that serves.

The application role may append to the log and read it, and write the projections;
it owns nothing, so it cannot ALTER a table, disable the append-only triggers, or
``SET session_replication_role`` (superuser only). ``APP_GRANTS`` is the one list of
its privileges: ``db migrate`` applies it to ``SCIM_GATEWAY_APP_ROLE``, the embedded
default applies it to its own role, and docs/operations.md quotes it (a test checks
that the two agree and that every table the migrations create is in it).
"""

from __future__ import annotations

import re

import asyncpg

# The embedded default's roles; a server configured by URL uses the operator's own.
EMBEDDED_OWNER = "scim_gateway_owner"
EMBEDDED_APP = "scim_gateway_app"

APP_GRANTS = """\
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT ON events TO {role};
GRANT SELECT ON schema_migrations TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, tokens, token_usage, users_view,
      groups_view, group_members, audit_trail, provisioning_log, audit_identities,
      projection_checkpoints, console_sessions, subject_keys TO {role};
GRANT SELECT, INSERT ON event_seals, integrity_checkpoints TO {role};
GRANT SELECT, INSERT, UPDATE ON integrity_heads TO {role};
GRANT SELECT, INSERT, UPDATE ON tenant_heads TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_tenant_checkpoints TO {role};
GRANT SELECT ON tenant_directory TO {role};
"""

# Tables only the owner touches: none today. A table a migration adds must be named in
# APP_GRANTS or here, or the test of this module fails.
OWNER_ONLY: frozenset[str] = frozenset()

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_grants(role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise ValueError(f"role name {role!r} must be lower-case letters, digits and '_'")
    return APP_GRANTS.format(role=role)


def granted_tables() -> frozenset[str]:
    """Every table APP_GRANTS names."""
    names: set[str] = set()
    for clause in re.findall(r" ON (.*?) TO ", APP_GRANTS.replace("\n", " ")):
        if not clause.startswith("SCHEMA "):
            names.update(name.strip() for name in clause.split(","))
    return frozenset(names)


async def grant_app_role(connection: asyncpg.Connection, role: str) -> None:
    await connection.execute(app_grants(role))


# Run by the embedded server's superuser on every start: both roles exist, the owner may
# create in ``public``, and gateway objects made before the roles existed (by the
# superuser) are handed to the owner. Neither role is a superuser; the server trusts local
# connections, so they need no password.
_EMBEDDED_ROLES = f"""
DO $$
DECLARE item record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EMBEDDED_OWNER}') THEN
        CREATE ROLE {EMBEDDED_OWNER} LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EMBEDDED_APP}') THEN
        CREATE ROLE {EMBEDDED_APP} LOGIN;
    END IF;
    GRANT CREATE, USAGE ON SCHEMA public TO {EMBEDDED_OWNER};
    GRANT CREATE ON DATABASE postgres TO {EMBEDDED_OWNER};
    FOR item IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relowner <> '{EMBEDDED_OWNER}'::regrole
    LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO {EMBEDDED_OWNER}', item.relname);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner <> '{EMBEDDED_OWNER}'::regrole
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {EMBEDDED_OWNER}', item.signature);
    END LOOP;
END
$$;
"""


async def prepare_embedded_roles(connection: asyncpg.Connection) -> None:
    """As the embedded server's superuser: create both roles and hand the schema to the owner."""
    await connection.execute(_EMBEDDED_ROLES)

"""``scim-gateway users import``: bring existing portal accounts under SCIM management.

Each line is a SCIM User; ``loginMethod`` (``sso`` or ``credentials``) at the top level or in
the gateway extension says how the person signs in (default ``credentials``: imported
accounts predate SSO). Imported users can be matched and updated by the identity provider;
under the ``bynder`` profile credential users cannot be deactivated through SCIM.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.domain.errors import Reason, Rejected
from gateway.domain.policy import policy_for
from gateway.domain.user import CREDENTIALS, SSO
from gateway.keys import cli_cipher
from gateway.scim.errors import ScimError
from gateway.scim.resource import parse_user
from gateway.scim.schema import GATEWAY_USER
from gateway.settings import Settings
from gateway.tenancy import Principal, Tenancy
from gateway.users import Users
from gateway.writes import RequestContext
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


def _login_method(body: dict) -> str:
    extension = body.get(GATEWAY_USER) if isinstance(body.get(GATEWAY_USER), dict) else {}
    method = body.get("loginMethod") or extension.get("loginMethod") or CREDENTIALS
    if method not in (SSO, CREDENTIALS):
        raise Rejected(Reason.INVALID_VALUE, f"loginMethod must be {SSO} or {CREDENTIALS}")
    return str(method)


async def import_users(dsn: str, settings: Settings, tenant: str, path: Path,
                       actor: dict[str, str]) -> int:
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        view = UsersView()
        store = EventStore(pool, [TenancyProjection(), view], cipher=cli_cipher(settings))
        tenancy = Tenancy(store)
        row = await tenancy.tenant(tenant)
        principal = Principal(row.tenant_id, row.name, uuid.UUID(int=0), actor["owner"],
                              actor["token_description"], frozenset({"admin"}),
                              policy_for(row.profile, row.settings))  # type: ignore[arg-type]
        users = Users(store, view, settings)
        count = 0
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    body = orjson.loads(line)
                    if not isinstance(body, dict):
                        raise ScimError.invalid_syntax("not a JSON object")
                    method = _login_method(body)
                    attributes, active = parse_user(body)
                    context = RequestContext(f"import-{uuid.uuid4()}", "IMPORT", str(path),
                                             None, "scim-gateway users import")
                    await users.create(principal, context, attributes, active, login_method=method)
                except orjson.JSONDecodeError as error:
                    raise Rejected(Reason.INVALID_VALUE, f"{path}:{number}: invalid JSON: {error}") from None
                except ScimError as error:
                    raise Rejected(Reason.INVALID_VALUE, f"{path}:{number}: {error.detail}") from None
                count += 1
        return count
    finally:
        await pool.close()

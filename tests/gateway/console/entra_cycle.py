"""A scripted Entra ID cycle for one user: create, update, disable, and a refused re-enable."""

from __future__ import annotations

from typing import Any

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def new_user(user_name: str) -> dict[str, Any]:
    return {"schemas": [CORE], "userName": user_name, "externalId": user_name.split("@")[0], "active": True,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"type": "work", "value": user_name, "primary": True}]}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


# (method, path relative to the user, body, expected status); "{id}" is the user's id.
STEPS = (
    ("PATCH", patch({"op": "Replace", "path": "name.givenName", "value": "Augusta"}), 200),
    ("PATCH", patch({"op": "Replace", "path": "active", "value": "False"}), 200),
    # Re-enabled within the bynder profile's 180-day cooldown: refused, and on record.
    ("PATCH", patch({"op": "Replace", "path": "active", "value": "True"}), 400),
)

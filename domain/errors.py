"""Why the domain refuses a command. The SCIM layer maps each reason to a status and scimType."""

from __future__ import annotations

import enum


class Reason(enum.Enum):
    INVALID_VALUE = "invalid_value"
    MUTABILITY = "mutability"
    UNIQUENESS = "uniqueness"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    NO_TARGET = "no_target"  # a PATCH filter selects nothing to change (RFC 7644 section 3.5.2)


class Rejected(Exception):
    """A command the domain will not turn into events."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

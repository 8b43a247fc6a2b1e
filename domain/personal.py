"""What is personal data in an event, and whose: the one list the store's cipher seals by.

Personal: userName, name.*, displayName, nickName, the values of emails, phoneNumbers, ims,
photos and addresses, externalId, employeeNumber and manager, a refusal's detail (it may
echo any of them) and a member's display in a group. Actors, actions, times, ids, attribute
names and the ``type``/``primary`` of multi-valued entries stay in clear. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.schema import ENTERPRISE_USER as ENTERPRISE

Path = tuple[str | int, ...]  # a leaf in an event's data: keys and list indexes

_PERSONAL = frozenset(name.lower() for name in (
    "userName", "name", "displayName", "nickName", "emails", "phoneNumbers", "ims", "photos", "addresses",
    "externalId", "employeeNumber", "manager",
))
# Sub-attributes of a personal attribute that say nothing about the person.
CLEAR = frozenset({"type", "primary"})
USER_PREFIX = "user:"


def user_subject(user_id: str) -> str:
    return USER_PREFIX + user_id


_ENTERPRISE_PREFIX = ENTERPRISE.lower() + ":"


def is_personal(attribute: str) -> bool:
    """``name.givenName``, ``emails[type eq "work"].value``, ``urn:...:User:manager.value``..."""
    head = attribute.lower()
    if head in _PERSONAL:
        return True
    if head.startswith(_ENTERPRISE_PREFIX):
        head = head[len(_ENTERPRISE_PREFIX):]
    return head.split(".", 1)[0].split("[", 1)[0] in _PERSONAL


def leaves(value: Any, path: Path) -> list[Path]:
    """The paths under ``path`` of ``value``'s non-null scalars, ``type``/``primary`` left out."""
    found: list[Path] = []
    _leaves(value, path, found)
    return found


def _leaves(value: Any, path: Path, found: list[Path]) -> None:
    # Appends to one list: nested generators cost a frame per level and value.
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() not in CLEAR:
                _leaves(item, (*path, key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _leaves(item, (*path, index), found)
    elif value is not None:
        found.append(path)


def attribute_paths(attributes: Mapping[str, Any], prefix: Path = ()) -> list[Path]:
    """The personal leaves of a SCIM attributes object."""
    found: list[Path] = []
    for key, value in attributes.items():
        if key == ENTERPRISE and isinstance(value, dict):
            for sub, item in value.items():
                if is_personal(sub):
                    _leaves(item, (*prefix, key, sub), found)
        elif is_personal(key):
            _leaves(value, (*prefix, key), found)
    return found

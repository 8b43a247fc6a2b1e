"""Dotted attribute paths over a SCIM attribute document, and the diff between two documents.

Paths are ``userName``, ``name.givenName``, ``emails`` (a multi-valued attribute is one
value), ``urn:...:enterprise:2.0:User:department`` and ``urn:...:User:manager.value``.
Objects are descended into; lists and scalars are leaves.
"""

from __future__ import annotations

import copy

from domain.json import JsonObject, JsonValue


def split(path: str) -> list[str]:
    if path.startswith("urn:"):
        extension, _, rest = path.rpartition(":")
        # "urn:...:User:manager.value" -> ["urn:...:User", "manager", "value"]
        return [extension, *rest.split(".")]
    return path.split(".")


def get(document: JsonObject, path: str) -> JsonValue:
    value: JsonValue = document
    for key in split(path):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def with_value(document: JsonObject, path: str, value: JsonValue) -> JsonObject:
    """A copy of ``document`` with ``path`` set to ``value`` (None removes it, and empty parents).

    Copies on write, as ``patch.apply`` does: the objects along the path are new, the rest is
    shared with ``document``, which is never changed. (A deep copy of the whole document per
    change was most of the cost of folding a long stream.)
    """
    keys = split(path)
    result = dict(document)
    parents: list[JsonObject] = [result]
    for key in keys[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            if value is None:
                return result
            child = {}
        else:
            child = dict(child)
        parents[-1][key] = child
        parents.append(child)
    if value is None:
        parents[-1].pop(keys[-1], None)
        for parent, key in zip(reversed(parents[:-1]), reversed(keys[:-1]), strict=True):
            if parent.get(key) == {}:
                parent.pop(key)
    else:
        parents[-1][keys[-1]] = copy.deepcopy(value)
    return result


def diff(old: JsonObject, new: JsonObject) -> list[tuple[str, JsonValue, JsonValue]]:
    """Every leaf path whose value differs, as (path, old, new), in a stable order."""
    changes: list[tuple[str, JsonValue, JsonValue]] = []

    def walk(path: str, before: JsonValue, after: JsonValue, depth: int) -> None:
        descend = (isinstance(before, dict) or isinstance(after, dict)) and all(
            v is None or isinstance(v, dict) for v in (before, after)
        )
        if not descend:
            if before != after:
                changes.append((path, before, after))
            return
        before_map = before if isinstance(before, dict) else {}
        after_map = after if isinstance(after, dict) else {}
        for key in sorted(set(before_map) | set(after_map)):
            # An extension's attributes join with ':', sub-attributes with '.'.
            separator = ":" if depth == 1 and path.startswith("urn:") else "."
            child = f"{path}{separator}{key}" if path else key
            walk(child, before_map.get(key), after_map.get(key), depth + 1)

    walk("", old, new, 0)
    return changes


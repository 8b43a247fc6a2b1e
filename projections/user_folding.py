"""What filters compare: a user's attribute document with every case-insensitive string
folded (``domain.identifiers.fold``), and the view row's folded keys taken from it. The users
view stores both; the rule for which paths fold comes from the schema."""

from __future__ import annotations

from domain.identifiers import fold
from domain.json import JsonObject, JsonValue
from domain.schema import EXTENSIONS, EXTERNAL_ID, USER_SCHEMA, Attribute
from domain.user import UserState

# Attribute types compared as values, not as text: never folded.
_TYPED = frozenset({"boolean", "integer", "decimal", "dateTime"})


def _folded_paths() -> frozenset[str]:
    """Lower-cased dotted paths (``emails.value``, ``urn:...:user:department``) of the
    case-insensitive string attributes: the ones whose values are folded."""
    paths: set[str] = set()

    def visit(prefix: str, attribute: Attribute) -> None:
        path = prefix + attribute.name.lower()
        if attribute.sub_attributes:
            for sub in attribute.sub_attributes:
                visit(path + ".", sub)
        elif not attribute.case_exact and attribute.type not in _TYPED:
            paths.add(path)

    for attribute in (*USER_SCHEMA.attributes, EXTERNAL_ID):
        visit("", attribute)
    for extension_id, extension in EXTENSIONS.items():
        for attribute in extension.attributes:
            visit(extension_id + ":", attribute)
    return frozenset(paths)


_FOLDED_PATHS = _folded_paths()
# Paths some folded path lies below (``emails``, ``name``, ``urn:...:user:manager``): every
# prefix of a folded path that ends where a ``.`` follows. A value at any other path that is
# not folded itself has nothing to fold anywhere inside it.
_ABOVE_FOLDED = frozenset(path[:i] for path in _FOLDED_PATHS for i, c in enumerate(path) if c == ".")


def _fold_value(path: str, value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return fold(value) if path in _FOLDED_PATHS else value
    if isinstance(value, list):
        # A list's items sit at its own path.
        if path in _FOLDED_PATHS or path in _ABOVE_FOLDED:
            return [_fold_value(path, item) for item in value]
    elif isinstance(value, dict) and path in _ABOVE_FOLDED:
        return {key: _fold_value(f"{path}.{key.lower()}", item) for key, item in value.items()}
    return value  # case-exact, typed, or not in the schema: compared as stored


def folded_document(attributes: JsonObject) -> JsonObject:
    """The attribute document with every case-insensitive string folded: what filters compare."""
    folded: JsonObject = {}
    for key, value in attributes.items():
        lowered = key.lower()
        if lowered in EXTENSIONS and isinstance(value, dict):
            folded[key] = {k: _fold_value(f"{lowered}:{k.lower()}", v) for k, v in value.items()}
        else:
            folded[key] = _fold_value(lowered, value)
    return folded


def folded_keys(state: UserState) -> tuple[str, list[str], str | None, str | None, str | None, JsonObject]:
    """(userName, emails, givenName, familyName, displayName, document) as filters compare them."""
    attributes = state.attributes
    folded = folded_document(attributes)
    name = folded.get("name") if isinstance(folded.get("name"), dict) else {}
    emails = [
        str(e["value"])
        for e in folded.get("emails") or []  # type: ignore[union-attr]
        if isinstance(e, dict) and isinstance(e.get("value"), str)
    ]
    display = folded.get("displayName")
    return (fold(state.user_name), emails, name.get("givenName"), name.get("familyName"),  # type: ignore[union-attr]
            display if isinstance(display, str) else None, folded)

"""What every client value must fit before it reaches SQL, and the one check of each kind.

PostgreSQL refuses some values that JSON and Python accept: NUL in ``text`` and ``jsonb``,
numbers past ``bigint``, times past its calendar once their offset is applied, and index
rows past about 2.7 kB. A value that would fail there is refused here, as a SCIM error, so
the database never turns a client's mistake into a 500.

The limits (documented in ``docs/scim.md``; the per-attribute ones are also stated in the
attribute descriptions of ``/Schemas``):

- identifiers that are indexed (``userName``, ``externalId``, ``emails.value``, a Group's
  ``displayName``): at most ``IDENTIFIER_MAX`` characters, counted both as sent and case-folded
  (folding can lengthen a string), so the folded index key stays under PostgreSQL's btree limit;
- any other string: at most ``TEXT_MAX`` characters;
- no NUL in any string or object key of a body, a path or a query parameter;
- numbers in a filter: integers inside 64 bits, other numbers finite doubles;
- positions (export cursors, ``position=``): ``0 .. 2**63 - 1`` (PostgreSQL ``bigint``).
"""

from __future__ import annotations

import math

from domain.identifiers import fold
from domain.json import JsonValue
from gateway.scim.errors import ScimError

TEXT_MAX = 16_384
BIGINT_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def text(value: str, name: str, limit: int | None = None, *, folded: bool = False) -> str:
    """A string attribute value within its length cap and without NUL."""
    if "\x00" in value:
        raise ScimError.invalid_value(f"{name} must not contain NUL characters")
    cap = limit or TEXT_MAX
    if len(value) > cap or (folded and len(fold(value)) > cap):
        raise ScimError.invalid_value(f"{name} must be at most {cap} characters (case-folded)"
                                      if folded and len(value) <= cap else
                                      f"{name} must be at most {cap} characters")
    return value


def no_nul(value: JsonValue, where: str = "the request body", raw: bytes | None = None) -> None:
    """Refuse NUL in any string or key of a parsed JSON document, at any depth.

    The message never quotes the value, so a refusal record can always be stored. Given the
    JSON text it was parsed from, the walk is skipped when the text has no ``\\u0000``
    escape: JSON cannot carry a NUL any other way (a raw control byte is invalid JSON).
    """
    if raw is not None and b"\\u0000" not in raw:
        return
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ScimError.invalid_value(f"{where} must not contain NUL characters")
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise ScimError.invalid_value(f"{where} must not contain NUL characters")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def filter_number(value: int | float, where: str) -> int | float:
    """A number from a filter, within what a comparison in SQL can take."""
    if isinstance(value, int):
        if not INT64_MIN <= value <= BIGINT_MAX:
            raise ScimError.invalid_filter(f"number at {where} is outside the 64-bit integer range")
        return value
    if not math.isfinite(value):
        raise ScimError.invalid_filter(f"number at {where} is out of range")
    return value


def position(text_value: str, name: str) -> int:
    """A log position or cursor sequence: a decimal integer inside ``bigint``, not negative."""
    stripped = text_value.strip()
    if not stripped.isdigit() or len(stripped) > 19 or int(stripped) > BIGINT_MAX:
        raise ValueError(f"{name} must be an integer between 0 and {BIGINT_MAX}")
    return int(stripped)

"""List and search requests (RFC 7644 sections 3.4.2 and 3.4.3) and ListResponse bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.json import JsonObject, JsonValue
from domain.schema import LIST_RESPONSE, ResolvedPath
from gateway.scim.errors import ScimError
from gateway.scim.filter import Filter, parse_filter
from gateway.scim.resource import parse_attribute_list

# Far past any real tenant; keeps OFFSET inside PostgreSQL's bigint.
MAX_START_INDEX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: Filter | None
    start_index: int
    count: int
    sort_by: str | None
    descending: bool


def _integer(name: str, value: JsonValue, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ScimError.invalid_value(f"{name} must be an integer, not {value!r}") from None


def parse_list_request(
    params: Mapping[str, JsonValue], default_count: int, max_count: int, resolve_attributes: bool = True,
    lenient_attributes: bool = False,
) -> tuple[ListQuery, list[ResolvedPath], list[ResolvedPath]]:
    """From query parameters or a SearchRequest body: (ListQuery, attributes, excludedAttributes)."""
    lowered = {k.lower(): v for k, v in params.items()}
    filter_text = lowered.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise ScimError.invalid_filter("filter must be a string")
    # RFC 7644 section 3.4.2.4: startIndex below 1 means 1, a negative count means 0.
    start_index = min(max(1, _integer("startIndex", lowered.get("startindex"), 1)), MAX_START_INDEX)
    count = min(max(0, _integer("count", lowered.get("count"), default_count)), max_count)
    sort_by = lowered.get("sortby")
    sort_order = str(lowered.get("sortorder") or "ascending").lower()
    if sort_order not in ("ascending", "descending"):
        raise ScimError.invalid_value("sortOrder must be ascending or descending")
    query = ListQuery(
        filter=parse_filter(filter_text) if filter_text else None,
        start_index=start_index,
        count=count,
        sort_by=str(sort_by) if sort_by else None,
        descending=sort_order == "descending",
    )
    if not resolve_attributes:  # the caller selects attributes against another schema
        return query, [], []
    include = parse_attribute_list(attribute_list_text(lowered.get("attributes")), lenient_attributes)
    exclude = parse_attribute_list(attribute_list_text(lowered.get("excludedattributes")), lenient_attributes)
    return query, include, exclude


def attribute_list_text(value: JsonValue) -> str | None:
    """``attributes``/``excludedAttributes`` as one comma-separated text: a query string gives
    a string, a SearchRequest a list of strings (RFC 7644 section 3.4.3); nothing else."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if value is None or isinstance(value, str):
        return value
    raise ScimError.invalid_value("attributes and excludedAttributes must be strings or lists of strings")


def list_response(total: int, start_index: int, resources: list[JsonObject]) -> JsonObject:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }

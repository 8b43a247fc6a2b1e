"""Audit rows as JSON values, JSON Lines and CSV (RFC 4180), for the HTTP export and the CLI."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from gateway.timestamps import timestamp

FORMATS = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
}
_BY_MEDIA_TYPE = {media: name for name, media in FORMATS.items()}
_BY_MEDIA_TYPE["application/jsonl"] = "jsonl"


def negotiate(format_param: str | None, accept: str) -> str | None:
    """``format=`` wins; else the first acceptable media type; None when nothing fits."""
    if format_param:
        name = {"ndjson": "jsonl"}.get(format_param.lower(), format_param.lower())
        return name if name in FORMATS else None
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _BY_MEDIA_TYPE:
            return _BY_MEDIA_TYPE[media]
        if media in ("*/*", "application/*", ""):
            return "json"
    return None


def as_dict(row: Mapping[str, Any], fields: Sequence[str], stable_id: str) -> dict[str, Any]:
    """One export row: plain JSON values; ``id`` is the dedup key for at-least-once consumers."""
    result: dict[str, Any] = {"id": str(row[stable_id])}
    for name in fields:
        if name == stable_id:
            continue
        value = row[name]
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = timestamp(value)
        result[name] = value
    return result


def jsonl_line(item: dict[str, Any]) -> bytes:
    return orjson.dumps(item) + b"\n"


def csv_header(columns: Sequence[str]) -> bytes:
    return _csv_row(list(columns))


# Columns whose values are JSON of any type: CSV carries them as JSON text, so they read back
# exactly ("Ann" stays a string, true a boolean).
JSON_COLUMNS = frozenset({"old_value", "new_value", "changed_attributes", "ignored_attributes"})


def csv_line(item: dict[str, Any], columns: Sequence[str]) -> bytes:
    cells = []
    for column in columns:
        value = item.get(column)
        if column in JSON_COLUMNS:
            cells.append("" if value is None else orjson.dumps(value).decode())
        elif value is None:
            cells.append("")
        else:
            cells.append(str(value))
    return _csv_row(cells)


def _csv_row(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()

"""A user's history as a picture: ``Replay.timeline`` entries laid out for an inline SVG.

Pure layout, no I/O: one mark per request (the entries a request wrote share its id), top
to bottom in log order, coloured by what happened. The template draws it; Jinja escapes
every text, so a hostile userName is shown, never run.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from datetime import datetime

from gateway.replay import Entry
from gateway.timestamps import timestamp

ROW = 22  # px per text line
TOP = 16
GAP = 14  # between marks
LINE_LIMIT = 88  # characters per line: 13 px monospace in a 760 px picture

# When one request wrote several entries, the mark is named for the weightiest.
_WEIGHT = {"refused": 6, "delete": 5, "deactivate": 4, "reactivate": 4, "create": 3, "update": 2,
           "ignored_attribute": 1, "no_change": 0}


@dataclass(frozen=True, slots=True)
class Mark:
    kind: str  # the action: create, update, deactivate, reactivate, delete, refused, ...
    y: int
    height: int
    lines: tuple[str, ...]  # first line: time, action and actor
    after: bool  # later than the "as of" time: drawn faded


@dataclass(frozen=True, slots=True)
class Picture:
    marks: tuple[Mark, ...]
    height: int
    as_of_y: int | None  # where the "as of" rule goes, if a time was chosen


def _value(value: object) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _wrap(text: str) -> list[str]:
    """SVG text does not wrap by itself; long lines become several, continuation indented."""
    return textwrap.wrap(text, LINE_LIMIT, subsequent_indent="  ", break_on_hyphens=False) or [""]


def _groups(entries: list[Entry]) -> list[list[Entry]]:
    groups: list[list[Entry]] = []
    for item in entries:
        if groups and item.request_id is not None and groups[-1][0].request_id == item.request_id:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _lines(group: list[Entry], kind: str) -> tuple[str, ...]:
    first = group[0]
    actor = first.actor.owner or "unknown"
    lines = [f"{timestamp(first.recorded_at)}  {kind}  by {actor}"]
    for item in group:
        for change in item.changes:
            if item.action == "create":
                lines.append(f"{change.attribute} = {_value(change.new)}")
            elif item.action == "ignored_attribute":
                lines.append(f"{change.attribute}: {_value(change.new)} ignored (not updatable)")
            else:
                lines.append(f"{change.attribute}: {_value(change.old)} → {_value(change.new)}")
        if item.detail:
            lines.append(item.detail)
    return tuple(part for line in lines for part in _wrap(line))


def layout(entries: list[Entry], as_of: datetime | None = None) -> Picture:
    marks: list[Mark] = []
    as_of_y = None
    y = TOP
    for group in _groups(entries):
        kind = max((item.action for item in group), key=lambda action: _WEIGHT.get(action, 1))
        after = as_of is not None and group[0].recorded_at > as_of
        if after and as_of_y is None:
            as_of_y = y - GAP // 2
        lines = _lines(group, kind)
        height = len(lines) * ROW
        marks.append(Mark(kind, y, height, lines, after))
        y += height + GAP
    if as_of is not None and as_of_y is None:
        as_of_y = y - GAP // 2
    return Picture(tuple(marks), y, as_of_y)

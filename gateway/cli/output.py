"""How the command line speaks: people on stderr, programs on stdout (DESIGN.md section 6)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson


class UserError(Exception):
    """Reported as one line on stderr with exit status 1."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip() for row in rows]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def table_time(moment: datetime | None) -> str:
    """A time for a table cell: UTC to the second, pasteable back as RFC 3339."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_values(settings: Mapping[str, object]) -> str:
    """Tenant settings as ``key=value`` pairs, the form ``tenant set`` takes."""
    return " ".join(f"{key}={_setting_text(value)}" for key, value in sorted(settings.items()))


def _setting_text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def cli_actor() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return {"token_id": "", "owner": f"cli:{user}", "token_description": "scim-gateway CLI"}

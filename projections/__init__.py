"""Read models folded from the event log: users view, tenancy, audit trail."""

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"

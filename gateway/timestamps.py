"""Times in and out: RFC 3339 text, always with an offset on the way out.

One precision end to end: PostgreSQL stores ``timestamptz`` to the microsecond, and every
time we print carries all six fractional digits, so a printed time pasted back into
``--at``, ``--until``, ``?at=``, ``since``/``until`` or a filter means exactly the stored
instant (a millisecond print would fall before it and leave the event out).
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain.errors import Reason, Rejected


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(name: str, text: str | None, *, naive_is_utc: bool = False) -> datetime | None:
    """An RFC 3339 time from a parameter; without an offset it is refused, or taken as UTC.

    A ``+`` in a query string arrives as a space; it is read back as the offset sign. The
    result is in UTC, so a time whose offset pushes it past year 1 or 9999 is refused here
    rather than overflowing when it is sent to PostgreSQL.
    """
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise Rejected(Reason.INVALID_VALUE, f"{name} must be an RFC 3339 date-time, not {text!r}") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise Rejected(Reason.INVALID_VALUE, f"{name} needs a time zone offset (e.g. Z)")
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Rejected(Reason.INVALID_VALUE,
                       f"{name} is out of range: it must fall between years 1 and 9999 in UTC") from None

"""Times in and out: RFC 3339 text, always with an offset on the way out."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.domain.errors import Reason, Rejected


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(name: str, text: str | None, *, naive_is_utc: bool = False) -> datetime | None:
    """An RFC 3339 time from a parameter; without an offset it is refused, or taken as UTC.

    A ``+`` in a query string arrives as a space; it is read back as the offset sign.
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
    return moment

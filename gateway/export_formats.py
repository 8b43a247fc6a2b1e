"""The export's formats and their media types, chosen by ``format=`` or ``Accept`` (the bytes of
each come from ``projections.audit_export.stream_export``)."""

from __future__ import annotations

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

"""Small formatting helpers shared by the live and VOD playlists [RFC 8216]."""

from __future__ import annotations

from datetime import UTC, datetime

_MEDIA_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",  # [RFC 8216 §4]
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".flv": "video/x-flv",
}


def format_duration(seconds: float) -> str:
    """Decimal-floating-point seconds with millisecond precision [RFC 8216 §4.2]."""
    return f"{seconds:.3f}"


def format_pdt(posix_seconds: float) -> str:
    """ISO 8601 date-time with milliseconds and a time zone, as EXT-X-PROGRAM-DATE-TIME wants [§4.3.2.6]."""
    moment = datetime.fromtimestamp(posix_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def media_type_for(name: str) -> str:
    """Content-Type for a playlist, init, segment, part or FLV resource name."""
    for suffix, media_type in _MEDIA_TYPES.items():
        if name.endswith(suffix):
            return media_type
    return "application/octet-stream"

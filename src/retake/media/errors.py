"""The media package's one exception tree.

Malformed AMF0 and codec configuration records raise :mod:`retake.av.errors` (``AmfError``,
``CodecConfigError``): those structures live in :mod:`retake.av`, shared with the ingest.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by :mod:`retake.media`."""


class FlvError(MediaError):
    """Malformed FLV file header, tag or tag body."""


class UnsupportedCodecError(MediaError):
    """A codec other than legacy FLV H.264 (CodecID 7) / AAC (SoundFormat 10), e.g. Enhanced RTMP."""


class Mp4Error(MediaError):
    """Invalid input to the fMP4 muxer or a malformed ISO BMFF box."""


class HlsError(MediaError):
    """LL-HLS packaging or playlist request error."""


class PlaylistRequestError(HlsError):
    """A blocking playlist request that must be answered at once with an error.

    ``status_hint`` is the HTTP status RFC 8216bis §6.2.5.2 asks for (400 for directives that can never be
    satisfied, 503 when a blocking request timed out); translating it is the edge's job.
    """

    def __init__(self, message: str, status_hint: int) -> None:
        super().__init__(message)
        self.status_hint = status_hint

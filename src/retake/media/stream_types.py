"""The small types of the FLV fan-out (``stream.py``): its sinks, its memory limits, its cached keyframe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from retake.av.headers import Tracks
from retake.av.message import MediaMessage


class MediaSink(Protocol):
    """Something fed with every repaired message of a stream, e.g. :class:`retake.media.hls.HlsPackager`."""

    def share_tracks(self, tracks: Tracks) -> None:
        """Called when the sink is added: the stream's codec headers, parsed before each sequence header
        is pushed, for the sink to read rather than parse its own."""

    def push(self, message: MediaMessage) -> None: ...

    def end(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Memory bounds of one stream and of each of its viewers."""

    gop_max_bytes: int = 4 * 1024 * 1024  # GOP cache; past it the cache waits for the next keyframe
    gop_max_duration_ms: int = 10_000
    queue_max_bytes: int = 8 * 1024 * 1024  # per viewer, bootstrap included (keep > gop_max_bytes)
    queue_max_lag_ms: int = 4_000  # media time queued behind the live edge (bootstrap GOP not counted)
    max_skips: int = 3  # skip-aheads tolerated within a minute before the viewer is dropped


class Keyframe(NamedTuple):
    """The newest cached AVC keyframe and what it takes to decode it alone (preview images)."""

    avc_config: bytes  # AVCDecoderConfigurationRecord [ISO/IEC 14496-15 §5.3.3.1], the decoder's extradata
    data: bytes  # the keyframe's length-prefixed NAL units: its AVC tag body after the 5-byte header
    timestamp_ms: int

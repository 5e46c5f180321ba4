"""The input contract from the RTMP ingest.

Defined here (not imported from ``retake.ingest``) so that media depends on nothing above it; the ingest
delivers an identical dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["audio", "video", "script"]


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """One RTMP audio/video/data message.

    ``payload`` is exactly an FLV tag body [FLV E.4]: video = FrameType/CodecID byte, AVCPacketType,
    CompositionTime SI24, data; audio = SoundFormat byte, AACPacketType, data; script = AMF0 onMetaData
    (possibly still prefixed by ``@setDataFrame``).
    """

    kind: MediaKind
    timestamp_ms: int
    payload: bytes

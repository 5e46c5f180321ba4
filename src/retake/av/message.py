"""The one media message: what the RTMP ingest emits and every media consumer takes."""

from __future__ import annotations

from typing import Final, Literal

MediaKind = Literal["audio", "video", "script"]


class MediaMessage:
    """One audio, video or script message of a publish, in arrival order.

    ``payload`` is exactly an FLV tag body [FLV E.4]: video = FrameType/CodecID byte, AVCPacketType,
    CompositionTime SI24, data; audio = SoundFormat byte, AACPacketType, data; script = AMF0 ``onMetaData``
    (the RTMP ``@setDataFrame`` wrapper removed by the ingest). ``timestamp_ms`` is the RTMP timestamp
    (32-bit, absolute, extended-timestamp aware; it wraps at 2^32) until the media layer repairs it.

    Immutable (the attributes are ``Final`` for the type checker). A plain class rather than a frozen
    dataclass: one is made per message, ~73 a second per stream, and a frozen dataclass costs four times as
    much to construct (``object.__setattr__`` per field). The payload is left out of ``repr``.
    """

    __slots__ = ("kind", "payload", "timestamp_ms")

    def __init__(self, kind: MediaKind, timestamp_ms: int, payload: bytes) -> None:
        self.kind: Final = kind
        self.timestamp_ms: Final = timestamp_ms
        self.payload: Final = payload

    def with_timestamp(self, timestamp_ms: int) -> MediaMessage:
        """The same message at another time (timestamp repair)."""
        return MediaMessage(self.kind, timestamp_ms, self.payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MediaMessage):
            return NotImplemented
        return self.kind == other.kind and self.timestamp_ms == other.timestamp_ms and self.payload == other.payload

    def __hash__(self) -> int:
        return hash((self.kind, self.timestamp_ms, self.payload))

    def __repr__(self) -> str:
        return f"MediaMessage({self.kind!r}, {self.timestamp_ms}, <{len(self.payload)} bytes>)"

"""FLV file structures [Adobe FLV spec v10.1, Annex E]: header, tags, AVC/AAC tag bodies, script data.

The codec configuration records carried by sequence-header tags, the AMF0 codec of script tags and the
media message live in :mod:`retake.av`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from retake.av import amf0
from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord
from retake.av.errors import AmfError
from retake.av.message import MediaKind, MediaMessage

from .errors import FlvError, UnsupportedCodecError

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
HEADER_SIZE = 9
TAG_HEADER_SIZE = 11
MAX_TAG_DATA = 0xFFFFFF  # DataSize is UI24 [FLV E.4.1]

_KIND_TO_TYPE: dict[MediaKind, int] = {"audio": TAG_AUDIO, "video": TAG_VIDEO, "script": TAG_SCRIPT}
_TYPE_TO_KIND: dict[int, MediaKind] = {v: k for k, v in _KIND_TO_TYPE.items()}

# Video [FLV E.4.3.1].
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE = 3
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5
CODEC_AVC = 7
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2
# Audio [FLV E.4.2.1].
SOUND_AAC = 10
SOUND_EX_HEADER = 9  # Enhanced RTMP v2 audio
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1
VIDEO_COMMAND = -1  # what video_header() gives as the packet type of a FrameType-5 frame (no AVC packet)

# TagType, DataSize (UI24 as UI8 + UI16), Timestamp (UI24 likewise), TimestampExtended, StreamID = 0 [FLV E.4.1].
_TAG_HEADER = struct.Struct(">BBHBHB3x")
_PREVIOUS_TAG_SIZE = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class FlvHeader:
    """The 9-byte FLV file header [FLV E.2]; PreviousTagSize0 follows it in a file."""

    has_audio: bool
    has_video: bool
    version: int = 1
    data_offset: int = HEADER_SIZE

    @classmethod
    def parse(cls, data: bytes) -> FlvHeader:
        if len(data) < HEADER_SIZE:
            raise FlvError("FLV header shorter than 9 bytes")
        if data[:3] != b"FLV":
            raise FlvError("missing FLV signature")
        (offset,) = struct.unpack_from(">I", data, 5)
        if offset < HEADER_SIZE:
            raise FlvError(f"FLV DataOffset {offset} is smaller than the header")
        flags = data[4]
        return cls(has_audio=bool(flags & 0x04), has_video=bool(flags & 0x01), version=data[3], data_offset=offset)

    def serialize(self) -> bytes:
        flags = (0x04 if self.has_audio else 0) | (0x01 if self.has_video else 0)
        head = b"FLV" + bytes([self.version, flags]) + struct.pack(">I", self.data_offset)
        return head + bytes(self.data_offset - HEADER_SIZE)


def tag_bytes(tag_type: int, timestamp_ms: int, payload: bytes) -> bytes:
    """One serialized FLV tag with its PreviousTagSize [FLV E.3, E.4.1]: ``FlvTag(...).serialize()`` without
    building the object, for the per-frame path."""
    size = len(payload)
    if size > MAX_TAG_DATA:
        raise FlvError(f"FLV tag data of {size} bytes exceeds the 24-bit DataSize")
    if not -(1 << 31) <= timestamp_ms < (1 << 31):
        raise FlvError(f"timestamp {timestamp_ms} does not fit FLV's SI32")
    ts = timestamp_ms & 0xFFFFFFFF
    header = _TAG_HEADER.pack(tag_type, size >> 16, size & 0xFFFF, (ts >> 16) & 0xFF, ts & 0xFFFF, ts >> 24)
    return b"".join((header, payload, _PREVIOUS_TAG_SIZE.pack(TAG_HEADER_SIZE + size)))


def video_header(payload: bytes) -> tuple[int, int]:
    """(FrameType, AVCPacketType) of a legacy AVC video tag body, with the checks of
    :meth:`VideoTagBody.parse` but no object and no copy; the packet type is :data:`VIDEO_COMMAND` for
    info/command frames [FLV E.4.3.1]."""
    if not payload:
        raise FlvError("empty video tag")
    first = payload[0]
    if first & 0x80:
        raise UnsupportedCodecError("Enhanced RTMP video (IsExHeader) is unsupported; send legacy H.264")
    frame_type = first >> 4
    if frame_type == FRAME_COMMAND:
        return frame_type, VIDEO_COMMAND
    codec_id = first & 0x0F
    if codec_id != CODEC_AVC:
        raise UnsupportedCodecError(f"video CodecID {codec_id} is not supported (only 7 = AVC)")
    if len(payload) < 5:
        raise FlvError("AVC video tag shorter than 5 bytes")
    return frame_type, payload[1]


def audio_packet_type(payload: bytes) -> int:
    """AACPacketType of an AAC audio tag body, with the checks of :meth:`AudioTagBody.parse` [FLV E.4.2]."""
    if len(payload) < 2:
        raise FlvError("AAC audio tag shorter than 2 bytes")
    sound_format = payload[0] >> 4
    if sound_format != SOUND_AAC:
        if sound_format == SOUND_EX_HEADER:
            raise UnsupportedCodecError("Enhanced RTMP audio (ExHeader) is not supported; send AAC")
        raise UnsupportedCodecError(f"audio SoundFormat {sound_format} is not supported (only 10 = AAC)")
    return payload[1]


def stream_start(has_audio: bool, has_video: bool) -> bytes:
    """FLV header plus PreviousTagSize0 = 0: the first bytes of an HTTP-FLV/WS-FLV body [FLV E.3]."""
    return FlvHeader(has_audio=has_audio, has_video=has_video).serialize() + b"\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLV tag with its trailing PreviousTagSize [FLV E.3, E.4.1]. Timestamps are SI32 milliseconds."""

    tag_type: int
    timestamp_ms: int
    payload: bytes

    @property
    def size(self) -> int:
        """Bytes on the wire, PreviousTagSize included."""
        return TAG_HEADER_SIZE + len(self.payload) + 4

    @classmethod
    def parse(cls, data: bytes) -> FlvTag:
        """Parse exactly one tag followed by its PreviousTagSize."""
        tag, used = cls.parse_prefix(data)
        if tag is None or used != len(data):
            raise FlvError("data is not exactly one FLV tag")
        return tag

    @classmethod
    def parse_prefix(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[FlvTag | None, int]:
        """Parse a tag at ``offset``; returns (None, 0) when more bytes are needed, else (tag, bytes used)."""
        if len(data) - offset < TAG_HEADER_SIZE:
            return None, 0
        type_byte = data[offset]
        if type_byte & 0x20:
            raise FlvError("encrypted (Filter=1) FLV tags are not supported")
        if type_byte & 0xC0:
            raise FlvError(f"reserved bits set in FLV TagType 0x{type_byte:02x}")
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        total = TAG_HEADER_SIZE + size + 4
        if len(data) - offset < total:
            return None, 0
        low = int.from_bytes(data[offset + 4 : offset + 7], "big")
        raw_ts = (data[offset + 7] << 24) | low  # TimestampExtended holds bits 24–31 [FLV E.4.1]
        timestamp = raw_ts - (1 << 32) if raw_ts & 0x80000000 else raw_ts
        if int.from_bytes(data[offset + 8 : offset + 11], "big") != 0:
            raise FlvError("FLV StreamID must be 0")
        end = offset + TAG_HEADER_SIZE + size
        (previous,) = struct.unpack_from(">I", data, end)
        if previous != TAG_HEADER_SIZE + size:
            raise FlvError(f"PreviousTagSize {previous} does not match tag size {TAG_HEADER_SIZE + size}")
        payload = bytes(data[offset + TAG_HEADER_SIZE : end])
        return cls(tag_type=type_byte & 0x1F, timestamp_ms=timestamp, payload=payload), total

    def serialize(self) -> bytes:
        return tag_bytes(self.tag_type, self.timestamp_ms, self.payload)

    @classmethod
    def from_message(cls, message: MediaMessage) -> FlvTag:
        return cls(_KIND_TO_TYPE[message.kind], message.timestamp_ms, message.payload)

    def to_message(self) -> MediaMessage:
        kind = _TYPE_TO_KIND.get(self.tag_type)
        if kind is None:
            raise FlvError(f"unknown FLV TagType {self.tag_type}")
        return MediaMessage(kind=kind, timestamp_ms=self.timestamp_ms, payload=self.payload)


@dataclass
class FlvReader:
    """Incremental FLV file/stream parser: ``feed()`` bytes in any split, get headers and tags out."""

    max_buffer: int = 32 * 1024 * 1024
    _buffer: bytearray = field(default_factory=bytearray)
    _header: FlvHeader | None = None
    _skip: int = 0

    @property
    def header(self) -> FlvHeader | None:
        return self._header

    def feed(self, data: bytes) -> list[FlvHeader | FlvTag]:
        self._buffer += data
        if len(self._buffer) > self.max_buffer:
            raise FlvError("FLV reader buffer limit exceeded")
        out: list[FlvHeader | FlvTag] = []
        pos = 0
        if self._header is None:
            if len(self._buffer) < HEADER_SIZE:
                return out
            self._header = FlvHeader.parse(bytes(self._buffer[:HEADER_SIZE]))
            out.append(self._header)
            pos = HEADER_SIZE
            self._skip = self._header.data_offset - HEADER_SIZE + 4  # extra header bytes + PreviousTagSize0
        if self._skip:
            taken = min(self._skip, len(self._buffer) - pos)
            self._skip -= taken
            pos += taken
        while not self._skip:
            tag, used = FlvTag.parse_prefix(self._buffer, pos)
            if tag is None:
                break
            out.append(tag)
            pos += used
        del self._buffer[:pos]
        return out


def _si24(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    return value - (1 << 24) if value & 0x800000 else value


@dataclass(frozen=True, slots=True)
class VideoTagBody:
    """Legacy AVC VIDEODATA [FLV E.4.3.1] + AVCVIDEOPACKET [FLV E.4.3.2].

    ``packet_type`` is None for video info/command frames (FrameType 5), which carry no AVC packet.
    """

    frame_type: int
    packet_type: int | None
    composition_time: int
    data: bytes
    codec_id: int = CODEC_AVC

    @classmethod
    def parse(cls, payload: bytes) -> VideoTagBody:
        frame_type, packet_type = video_header(payload)
        if packet_type == VIDEO_COMMAND:
            return cls(frame_type, None, 0, payload[1:], payload[0] & 0x0F)
        return cls(frame_type, packet_type, _si24(payload[2:5]), payload[5:], CODEC_AVC)

    def serialize(self) -> bytes:
        first = bytes([(self.frame_type << 4) | self.codec_id])
        if self.packet_type is None:
            return first + self.data
        if not -(1 << 23) <= self.composition_time < (1 << 23):
            raise FlvError(f"composition time {self.composition_time} does not fit SI24")
        cts = (self.composition_time & 0xFFFFFF).to_bytes(3, "big")
        return first + bytes([self.packet_type]) + cts + self.data

    @property
    def is_keyframe(self) -> bool:
        return self.frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)

    @property
    def is_sequence_header(self) -> bool:
        return self.packet_type == AVC_SEQUENCE_HEADER

    @property
    def is_coded_frame(self) -> bool:
        return self.packet_type == AVC_NALU

    def decoder_config(self) -> AvcDecoderConfigurationRecord:
        if not self.is_sequence_header:
            raise FlvError("not an AVC sequence header")
        return AvcDecoderConfigurationRecord.parse(self.data)


@dataclass(frozen=True, slots=True)
class AudioTagBody:
    """AUDIODATA [FLV E.4.2.1] with AACAUDIODATA [FLV E.4.2.2]."""

    packet_type: int
    data: bytes
    sound_format: int = SOUND_AAC
    sound_rate: int = 3
    sound_size: int = 1
    sound_type: int = 1

    @classmethod
    def parse(cls, payload: bytes) -> AudioTagBody:
        packet_type = audio_packet_type(payload)
        b0 = payload[0]
        return cls(packet_type, payload[2:], SOUND_AAC, (b0 >> 2) & 3, (b0 >> 1) & 1, b0 & 1)

    def serialize(self) -> bytes:
        b0 = (self.sound_format << 4) | (self.sound_rate << 2) | (self.sound_size << 1) | self.sound_type
        return bytes([b0, self.packet_type]) + self.data

    @property
    def is_sequence_header(self) -> bool:
        return self.packet_type == AAC_SEQUENCE_HEADER

    def audio_config(self) -> AudioSpecificConfig:
        if not self.is_sequence_header:
            raise FlvError("not an AAC sequence header")
        return AudioSpecificConfig.parse(self.data)


@dataclass(frozen=True, slots=True)
class ScriptData:
    """SCRIPTDATA [FLV E.4.4]: a name (e.g. ``onMetaData``) and one value.

    ``parse`` drops the ``@setDataFrame`` prefix RTMP publishers add (as ffmpeg's handle_notify does).
    """

    name: str
    value: amf0.AmfValue

    @classmethod
    def parse(cls, payload: bytes) -> ScriptData:
        values = amf0.decode(payload)
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if not values or not isinstance(values[0], str):
            raise AmfError("script data does not start with a name string")
        return cls(values[0], values[1] if len(values) > 1 else None)

    def serialize(self) -> bytes:
        return amf0.encode(self.name, self.value)

"""Sequence headers, parsed once per stream and shared by every consumer.

An encoder sends its codec configuration as sequence-header messages: an AVC one carries the
AVCDecoderConfigurationRecord [ISO/IEC 14496-15 §5.3.3.1] behind the 5-byte FLV AVC video header
[FLV E.4.3.1], an AAC one the AudioSpecificConfig [ISO/IEC 14496-3 §1.6.2.1] behind the 2-byte AAC audio
header [FLV E.4.2.1]. :class:`Tracks` holds a stream's current ones; the FLV fan-out, the CMAF segmenter (and
through it the LL-HLS packager and the recorder) read the same parsed objects, so a header is parsed — SPS
included — once, by whoever sees it first, and a resent identical header is not parsed at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .aac import AudioSpecificConfig
from .avc import AvcDecoderConfigurationRecord, SpsInfo
from .errors import CodecConfigError

_CODEC_AVC = 7  # CodecID [FLV E.4.3.1]
_SOUND_AAC = 10  # SoundFormat [FLV E.4.2.1]
_AVC_PREFIX = bytes([0x10 | _CODEC_AVC, 0, 0, 0, 0])  # keyframe, AVCPacketType 0, CompositionTime 0
_AAC_PREFIX = bytes([(_SOUND_AAC << 4) | 0x0F, 0])  # AAC, 44 kHz / 16-bit / stereo flags (ignored), type 0


@dataclass(frozen=True, slots=True)
class VideoHeader:
    """An AVC sequence header: the message payload and what it decodes to, the first SPS included."""

    payload: bytes  # the FLV video tag body, as received (re-sent to FLV viewers as is)
    record: AvcDecoderConfigurationRecord
    sps: SpsInfo

    @classmethod
    def parse(cls, payload: bytes) -> VideoHeader:
        if len(payload) < 5 or payload[0] & 0x0F != _CODEC_AVC or payload[1] != 0:
            raise CodecConfigError("not an AVC sequence header")
        record = AvcDecoderConfigurationRecord.parse(payload[5:])
        # The SPS is parsed here, once: a bad one fails the header, not a muxer later.
        return cls(payload, record, record.sps_info)

    @classmethod
    def of(cls, record: AvcDecoderConfigurationRecord) -> VideoHeader:
        """The sequence header an encoder would send for ``record``."""
        return cls.parse(_AVC_PREFIX + record.serialize())

    def serialize(self) -> bytes:
        return self.payload

    @property
    def avc_config(self) -> bytes:
        """The AVCDecoderConfigurationRecord as received: a decoder's extradata."""
        return self.payload[5:]

    @property
    def codec_string(self) -> str:
        return self.record.codec_string


@dataclass(frozen=True, slots=True)
class AudioHeader:
    """An AAC sequence header: the message payload and its AudioSpecificConfig."""

    payload: bytes  # the FLV audio tag body, as received
    config: AudioSpecificConfig

    @classmethod
    def parse(cls, payload: bytes) -> AudioHeader:
        if len(payload) < 2 or payload[0] >> 4 != _SOUND_AAC or payload[1] != 0:
            raise CodecConfigError("not an AAC sequence header")
        return cls(payload, AudioSpecificConfig.parse(payload[2:]))

    @classmethod
    def of(cls, config: AudioSpecificConfig) -> AudioHeader:
        return cls.parse(_AAC_PREFIX + config.serialize())

    def serialize(self) -> bytes:
        return self.payload

    @property
    def codec_string(self) -> str:
        return self.config.codec_string


class Tracks:
    """A stream's current codec headers. Whoever sees a sequence header first updates it; the others call the
    same update with the same payload and get the object already parsed.

    An update returns the header now in effect: the current object when the new payload carries the same
    configuration (compare by identity to learn whether anything changed), a new one otherwise.
    """

    __slots__ = ("audio", "video")

    def __init__(self) -> None:
        self.video: VideoHeader | None = None
        self.audio: AudioHeader | None = None

    def update_video(self, payload: bytes) -> VideoHeader:
        current = self.video
        # The 5-byte prefix (frame type, composition time) carries nothing of the configuration.
        if current is not None and current.payload[5:] == payload[5:]:
            return current
        header = VideoHeader.parse(payload)
        if current is not None and header.record == current.record:
            return current
        self.video = header
        return header

    def update_audio(self, payload: bytes) -> AudioHeader:
        current = self.audio
        if current is not None and current.payload[2:] == payload[2:]:
            return current
        header = AudioHeader.parse(payload)  # the AudioSpecificConfig is its bytes (``raw``): no deeper compare
        self.audio = header
        return header

    @property
    def codecs(self) -> str:
        """RFC 6381 CODECS list of the known tracks, e.g. ``avc1.64001f,mp4a.40.2``."""
        return ",".join(h.codec_string for h in (self.video, self.audio) if h is not None)

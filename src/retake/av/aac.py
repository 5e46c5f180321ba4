"""AAC AudioSpecificConfig [ISO/IEC 14496-3 §1.6.2.1]."""

from __future__ import annotations

from dataclasses import dataclass

from .bits import BitReader
from .errors import CodecConfigError

# samplingFrequencyIndex → Hz [ISO/IEC 14496-3 §1.6.3.4, Table 1.18]; 15 means "explicit 24-bit value".
SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# channelConfiguration → channel count [ISO/IEC 14496-3 §1.6.3.5, Table 1.19]; 0 = defined in a PCE.
_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}
_AOT_SBR = 5
_AOT_PS = 29
_SYNC_EXTENSION = 0x2B7
# Object types whose GASpecificConfig we can walk [ISO/IEC 14496-3 §4.4.1].
_GA_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})


def _read_object_type(reader: BitReader) -> int:
    object_type = reader.read_bits(5)
    if object_type == 31:  # escape [§1.6.2.1 GetAudioObjectType()]
        object_type = 32 + reader.read_bits(6)
    return object_type


def _read_rate(reader: BitReader) -> int:
    index = reader.read_bits(4)
    if index == 15:
        return reader.read_bits(24)
    if index >= len(SAMPLE_RATES):
        raise CodecConfigError(f"reserved samplingFrequencyIndex {index}")
    return SAMPLE_RATES[index]


def _sync_extension_sbr_rate(reader: BitReader) -> int:
    """SBR output rate from a trailing syncExtensionType 0x2B7 block, or 0 if absent / no SBR."""
    if reader.bits_left < 16 or reader.read_bits(11) != _SYNC_EXTENSION:
        return 0
    if _read_object_type(reader) != _AOT_SBR or reader.bits_left < 1 or not reader.read_flag():
        return 0
    return _read_rate(reader)


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """Decoded summary of an AudioSpecificConfig; ``raw`` is kept verbatim (it may carry extensions)."""

    object_type: int
    sample_rate: int
    channel_config: int
    raw: bytes
    sbr_sample_rate: int = 0  # output rate when SBR (HE-AAC) is signalled, else 0
    frame_length_960: bool = False

    @classmethod
    def parse(cls, data: bytes) -> AudioSpecificConfig:
        reader = BitReader(data)
        object_type = _read_object_type(reader)
        sample_rate = _read_rate(reader)
        channel_config = reader.read_bits(4)
        sbr_rate = 0
        if object_type in (_AOT_SBR, _AOT_PS):
            # Explicit hierarchical SBR signalling: extension rate, then the core object type [§1.6.5.2].
            sbr_rate = _read_rate(reader)
            object_type = _read_object_type(reader)
        frame_960 = False
        if object_type in _GA_TYPES:
            frame_960 = reader.read_flag()  # frameLengthFlag
            if reader.read_flag():  # dependsOnCoreCoder
                reader.read_bits(14)  # coreCoderDelay
            extension_flag = reader.read_flag()
            if channel_config == 0:
                pass  # program_config_element(): not walked; the sync extension below is then not found
            elif object_type in (6, 20):
                reader.read_bits(3)  # layerNr
            if extension_flag and object_type in (17, 19, 20, 21, 22, 23):
                reader.read_bits(3 if object_type != 22 else 16)
            # Backward-compatible SBR signalling in a trailing sync extension [§1.6.5.2, §1.6.6.1].
            if channel_config != 0 and sbr_rate == 0:
                sbr_rate = _sync_extension_sbr_rate(reader)
        elif object_type == 0:
            raise CodecConfigError("audioObjectType 0 (null) is not a codec")
        return cls(
            object_type=object_type,
            sample_rate=sample_rate,
            channel_config=channel_config,
            raw=bytes(data),
            sbr_sample_rate=sbr_rate,
            frame_length_960=frame_960,
        )

    @classmethod
    def build(cls, object_type: int, sample_rate: int, channels: int) -> AudioSpecificConfig:
        """The plain two-byte form (no extensions) for a standard sample rate and channel configuration."""
        if not 1 <= object_type <= 30:
            raise CodecConfigError(f"object type {object_type} needs the escape form")
        if sample_rate not in SAMPLE_RATES:
            raise CodecConfigError(f"sample rate {sample_rate} has no samplingFrequencyIndex")
        if not 0 <= channels <= 7:
            raise CodecConfigError(f"invalid channel configuration {channels}")
        value = (object_type << 11) | (SAMPLE_RATES.index(sample_rate) << 7) | (channels << 3)
        return cls.parse(value.to_bytes(2, "big"))

    def serialize(self) -> bytes:
        return self.raw

    @property
    def channels(self) -> int:
        """Channel count (2 when the layout lives in a program_config_element)."""
        return _CHANNELS.get(self.channel_config, 2)

    @property
    def output_sample_rate(self) -> int:
        return self.sbr_sample_rate or self.sample_rate

    @property
    def samples_per_frame(self) -> int:
        """PCM samples per raw AAC frame at :attr:`output_sample_rate` (SBR doubles the core's 1024/960)."""
        core = 960 if self.frame_length_960 else 1024
        return core * 2 if self.sbr_sample_rate else core

    @property
    def codec_string(self) -> str:
        """RFC 6381 CODECS value; the object type is the one signalled first (5 for explicit HE-AAC)."""
        first = self.raw[0] >> 3 if self.raw else 2
        return f"mp4a.40.{first if first != 31 else self.object_type}"

"""H.264 SPS / avcC and AAC AudioSpecificConfig parsing on real encoder output."""

from __future__ import annotations

from pathlib import Path

import pytest

from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord, parse_sps, split_nal_units
from retake.av.bits import BitReader, strip_emulation_prevention
from retake.av.errors import CodecConfigError
from retake.media.flv import FlvReader, FlvTag, VideoTagBody

# Real parameter sets written by x264 (ffmpeg 5.1): 1920x1080 High@4.0 (cropped from 1088 lines) and
# 322x242 Constrained Baseline@1.3 (cropped on both axes). Both contain emulation-prevention bytes.
SPS_1080P = bytes.fromhex("67640028acd940780227e5c044000003000400000300c83c60c658")
SPS_322X242 = bytes.fromhex("6742c00dd90150878888c044000003000400000300c83c50a920")
AVCC_1080P = bytes.fromhex(
    "01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000468ef8fcbfdf8f800"
)


def test_sps_1080p() -> None:
    info = parse_sps(SPS_1080P)
    assert (info.width, info.height) == (1920, 1080)
    assert (info.profile_idc, info.level_idc, info.chroma_format_idc) == (100, 40, 1)
    assert info.frame_mbs_only and info.bit_depth_luma == 8


def test_sps_odd_size_baseline() -> None:
    info = parse_sps(SPS_322X242)
    assert (info.width, info.height) == (322, 242)
    assert (info.profile_idc, info.constraint_flags, info.level_idc) == (66, 0xC0, 13)


def test_sps_from_ffmpeg_stream(ffmpeg_flv: dict[str, Path]) -> None:
    for tag in FlvReader().feed(ffmpeg_flv["no_bframes"].read_bytes()):
        if isinstance(tag, FlvTag) and tag.tag_type == 9:
            record = VideoTagBody.parse(tag.payload).decoder_config()
            assert (record.sps_info.width, record.sps_info.height) == (320, 240)
            assert record.codec_string.startswith("avc1.64")
            return
    pytest.fail("no AVC sequence header in the ffmpeg file")


def test_sps_rejects_non_sps_and_truncation() -> None:
    with pytest.raises(CodecConfigError):
        parse_sps(b"\x68\xef\x8f\xcb")  # a PPS
    for end in range(1, 11):  # the picture size is known after 11 bytes; VUI follows
        with pytest.raises(CodecConfigError):
            parse_sps(SPS_1080P[:end])


def test_avcc_round_trip() -> None:
    record = AvcDecoderConfigurationRecord.parse(AVCC_1080P)
    assert record.serialize() == AVCC_1080P
    assert record.sps == (SPS_1080P,)
    assert record.pps == (bytes.fromhex("68ef8fcb"),)
    assert record.length_size == 4
    assert record.extension == bytes.fromhex("fdf8f800")  # High-profile chroma/bit-depth trailer
    assert record.codec_string == "avc1.640028"


def test_avcc_byte_at_a_time_truncation() -> None:
    for end in range(0, len(AVCC_1080P) - 4):  # the trailer is optional, the rest is not
        with pytest.raises(CodecConfigError):
            AvcDecoderConfigurationRecord.parse(AVCC_1080P[:end])


def test_avcc_rejects_bad_version_and_no_sps() -> None:
    with pytest.raises(CodecConfigError):
        AvcDecoderConfigurationRecord.parse(b"\x02" + AVCC_1080P[1:])
    with pytest.raises(CodecConfigError):
        AvcDecoderConfigurationRecord.parse(bytes.fromhex("01640028ffe000"))


def test_split_nal_units() -> None:
    data = b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x03\x65\x88\x84"
    assert split_nal_units(data) == [b"\x09\xf0", b"\x65\x88\x84"]
    with pytest.raises(CodecConfigError):
        split_nal_units(data[:-1])


def test_exp_golomb() -> None:
    # 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3, 4; the same codes read as se: 0, 1, −1, 2, −2.
    bits = "1" + "010" + "011" + "00100" + "00101"
    data = int(bits.ljust(24, "0"), 2).to_bytes(3, "big")
    reader = BitReader(data)
    assert [reader.read_ue() for _ in range(5)] == [0, 1, 2, 3, 4]
    reader = BitReader(data)
    assert [reader.read_se() for _ in range(5)] == [0, 1, -1, 2, -2]
    with pytest.raises(CodecConfigError):
        BitReader(b"\x00").read_ue()


def test_strip_emulation_prevention() -> None:
    assert strip_emulation_prevention(b"\x00\x00\x03\x01\x00\x00\x03\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x03"
    assert strip_emulation_prevention(b"\x01\x02") == b"\x01\x02"


@pytest.mark.parametrize(
    ("raw", "object_type", "rate", "channels", "output_rate", "frame", "codec"),
    [
        ("1210", 2, 44100, 2, 44100, 1024, "mp4a.40.2"),
        ("1190", 2, 48000, 2, 48000, 1024, "mp4a.40.2"),
        # [LAB] ffmpeg mono 44.1 kHz: explicit "no SBR" sync extension, 5 bytes, kept verbatim.
        ("120856e500", 2, 44100, 1, 44100, 1024, "mp4a.40.2"),
        # Explicit HE-AAC: AOT 5, core 22050 Hz, SBR 44100 Hz, stereo, core AOT 2.
        ("2b920800", 2, 22050, 2, 44100, 2048, "mp4a.40.5"),
        # Backward-compatible SBR in a sync extension: LC 24 kHz core, SBR 48 kHz.
        ("131056e598", 2, 24000, 2, 48000, 2048, "mp4a.40.2"),
        # 960-sample frames (frameLengthFlag).
        ("1214", 2, 44100, 2, 44100, 960, "mp4a.40.2"),
    ],
)
def test_audio_specific_config(
    raw: str, object_type: int, rate: int, channels: int, output_rate: int, frame: int, codec: str
) -> None:
    asc = AudioSpecificConfig.parse(bytes.fromhex(raw))
    assert asc.object_type == object_type
    assert asc.sample_rate == rate
    assert asc.channels == channels
    assert asc.output_sample_rate == output_rate
    assert asc.samples_per_frame == frame
    assert asc.codec_string == codec
    assert asc.serialize() == bytes.fromhex(raw)


def test_audio_specific_config_build_and_explicit_rate() -> None:
    asc = AudioSpecificConfig.build(2, 48000, 2)
    assert asc.raw == bytes.fromhex("1190")
    # samplingFrequencyIndex 15 + 24-bit rate (escape form) [ISO/IEC 14496-3 §1.6.2.1].
    value = (2 << 35) | (15 << 31) | (50000 << 7) | (1 << 3)
    explicit = AudioSpecificConfig.parse(value.to_bytes(5, "big"))
    assert (explicit.sample_rate, explicit.channels) == (50000, 1)
    escaped = AudioSpecificConfig.parse(bytes([0xF8, 0x00 | 0x02, 0x20]))  # AOT 31+ escape → 32
    assert escaped.object_type == 32
    with pytest.raises(CodecConfigError):
        AudioSpecificConfig.build(2, 12345, 2)
    with pytest.raises(CodecConfigError):
        AudioSpecificConfig.parse(b"\x12")
    with pytest.raises(CodecConfigError):
        AudioSpecificConfig.parse(bytes.fromhex("1680"))  # samplingFrequencyIndex 13 is reserved

"""Sequence headers [FLV E.4.2.1, E.4.3.1] carrying avcC [ISO/IEC 14496-15] and AudioSpecificConfig
[ISO/IEC 14496-3], and the per-stream Tracks that parses each once."""

from __future__ import annotations

import pytest

from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord
from retake.av.errors import AvError, CodecConfigError
from retake.av.headers import AudioHeader, Tracks, VideoHeader

# x264 (ffmpeg 5.1) 320x240 High@1.3, and 1920x1080 High@4.0, as FLV sequence-header payloads.
AVCC_320X240 = bytes.fromhex("0164000dffe100176764000dacb40a0fd80880000003008000001e478a155001000468ef0fcbfdf8f800")
AVCC_1080P = bytes.fromhex(
    "01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000468ef8fcbfdf8f800"
)
AVC_HEADER = b"\x17\x00\x00\x00\x00" + AVCC_320X240
AAC_HEADER = b"\xaf\x00\x12\x10"  # AAC LC, 44.1 kHz, stereo


def test_video_header_parses_record_and_sps_and_round_trips() -> None:
    header = VideoHeader.parse(AVC_HEADER)
    assert header.serialize() == AVC_HEADER
    assert VideoHeader.parse(header.serialize()) == header
    assert header.record == AvcDecoderConfigurationRecord.parse(AVCC_320X240)
    assert (header.sps.width, header.sps.height) == (320, 240)
    assert header.avc_config == AVCC_320X240
    assert header.codec_string == "avc1.64000d"
    assert VideoHeader.of(header.record) == header


def test_audio_header_parses_and_round_trips() -> None:
    header = AudioHeader.parse(AAC_HEADER)
    assert header.serialize() == AAC_HEADER
    assert AudioHeader.parse(header.serialize()) == header
    assert (header.config.sample_rate, header.config.channels) == (44100, 2)
    assert header.codec_string == "mp4a.40.2"
    assert AudioHeader.of(AudioSpecificConfig.build(2, 44100, 2)).config == header.config


def test_headers_fed_a_byte_at_a_time_fail_cleanly() -> None:
    # Every truncation up to the last parameter set raises CodecConfigError; the high-profile trailer after it
    # (chroma format, bit depths) is kept verbatim as the record's extension [ISO/IEC 14496-15 §5.3.3.1.2].
    trailer = 4
    for end in range(len(AVC_HEADER) - trailer):
        with pytest.raises(CodecConfigError):
            VideoHeader.parse(AVC_HEADER[:end])
    for end in range(len(AVC_HEADER) - trailer, len(AVC_HEADER) + 1):
        header = VideoHeader.parse(AVC_HEADER[:end])
        assert header.record.extension == AVC_HEADER[len(AVC_HEADER) - trailer : end]
        assert header.serialize() == AVC_HEADER[:end]
    for end in range(len(AAC_HEADER)):
        with pytest.raises(CodecConfigError):
            AudioHeader.parse(AAC_HEADER[:end])


def test_not_a_sequence_header_is_refused() -> None:
    with pytest.raises(CodecConfigError):
        VideoHeader.parse(b"\x17\x01\x00\x00\x00" + AVCC_320X240)  # a NALU packet
    with pytest.raises(CodecConfigError):
        VideoHeader.parse(b"\x1c\x00\x00\x00\x00" + AVCC_320X240)  # CodecID 12 (HEVC)
    with pytest.raises(CodecConfigError):
        AudioHeader.parse(b"\xaf\x01\x12\x10")  # a raw AAC frame
    with pytest.raises(CodecConfigError):
        AudioHeader.parse(b"\x2f\x00\x12\x10")  # MP3
    assert issubclass(CodecConfigError, AvError)


def test_a_bad_sps_fails_the_header() -> None:
    record = AvcDecoderConfigurationRecord.parse(AVCC_320X240)
    broken = AvcDecoderConfigurationRecord(
        record.profile, record.profile_compatibility, record.level, 4, (b"\x67\x64",), record.pps
    )
    with pytest.raises(CodecConfigError):
        VideoHeader.of(broken)


def test_tracks_parse_once_and_keep_identity_while_the_configuration_is_the_same() -> None:
    tracks = Tracks()
    assert tracks.codecs == "" and tracks.video is None and tracks.audio is None
    video = tracks.update_video(AVC_HEADER)
    assert tracks.video is video
    # Resent, or with another 5-byte prefix (composition time): the same object, nothing parsed.
    assert tracks.update_video(AVC_HEADER) is video
    assert tracks.update_video(b"\x17\x00\x00\x00\x21" + AVCC_320X240) is video
    audio = tracks.update_audio(AAC_HEADER)
    assert tracks.update_audio(b"\xae\x00\x12\x10") is audio
    assert tracks.codecs == "avc1.64000d,mp4a.40.2"
    # A new configuration replaces the old one.
    bigger = tracks.update_video(b"\x17\x00\x00\x00\x00" + AVCC_1080P)
    assert bigger is not video and tracks.video is bigger and bigger.sps.width == 1920
    he_aac = tracks.update_audio(b"\xaf\x00\x2b\x92\x08\x00")  # explicit HE-AAC, 22.05 → 44.1 kHz
    assert he_aac is not audio and he_aac.config.output_sample_rate == 44100
    assert tracks.codecs == "avc1.640028,mp4a.40.5"


def test_tracks_keep_the_old_header_when_an_update_fails() -> None:
    tracks = Tracks()
    video = tracks.update_video(AVC_HEADER)
    with pytest.raises(CodecConfigError):
        tracks.update_video(b"\x17\x00\x00\x00\x00\x01\x64")
    assert tracks.video is video

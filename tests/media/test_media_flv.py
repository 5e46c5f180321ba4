"""FLV header/tag/body structures, AMF0 script data: round trips and byte-at-a-time parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from retake.av import amf0
from retake.av.errors import AmfError
from retake.av.message import MediaMessage
from retake.media.errors import FlvError, UnsupportedCodecError
from retake.media.flv import (
    AudioTagBody,
    FlvHeader,
    FlvReader,
    FlvTag,
    ScriptData,
    VideoTagBody,
    stream_start,
)


@pytest.mark.parametrize(("audio", "video", "flags"), [(True, True, 5), (True, False, 4), (False, True, 1)])
def test_header_round_trip(audio: bool, video: bool, flags: int) -> None:
    header = FlvHeader(has_audio=audio, has_video=video)
    data = header.serialize()
    assert data == b"FLV\x01" + bytes([flags]) + b"\x00\x00\x00\x09"
    assert FlvHeader.parse(data) == header
    assert stream_start(audio, video) == data + b"\x00\x00\x00\x00"


def test_header_rejects_garbage() -> None:
    with pytest.raises(FlvError):
        FlvHeader.parse(b"FLX\x01\x05\x00\x00\x00\x09")
    with pytest.raises(FlvError):
        FlvHeader.parse(b"FLV\x01")


@pytest.mark.parametrize("timestamp", [0, 1, 0xFFFFFF, 0x1000000, 0x7FFFFFFF, -1, -(1 << 31)])
def test_tag_round_trip_and_extended_timestamp(timestamp: int) -> None:
    tag = FlvTag(9, timestamp, b"\x17\x01\x00\x00\x00abc")
    data = tag.serialize()
    assert len(data) == tag.size == 11 + 8 + 4
    assert data[-4:] == (11 + 8).to_bytes(4, "big")
    assert FlvTag.parse(data) == tag


def test_tag_timestamp_layout() -> None:
    # Bits 0–23 in bytes 4–6, bits 24–31 in TimestampExtended (byte 7) [FLV E.4.1].
    data = FlvTag(8, 0x12345678, b"\xaf\x01").serialize()
    assert data[4:8] == bytes([0x34, 0x56, 0x78, 0x12])


def test_tag_rejects_bad_previous_size_and_encryption() -> None:
    data = bytearray(FlvTag(8, 0, b"\xaf\x01").serialize())
    data[-1] ^= 1
    with pytest.raises(FlvError):
        FlvTag.parse(bytes(data))
    data = bytearray(FlvTag(8, 0, b"\xaf\x01").serialize())
    data[0] |= 0x20
    with pytest.raises(FlvError):
        FlvTag.parse(bytes(data))
    with pytest.raises(FlvError):
        FlvTag(8, 1 << 31, b"").serialize()


def test_tag_message_conversion() -> None:
    message = MediaMessage("script", 5, b"\x02\x00\x01x")
    assert FlvTag.from_message(message).to_message() == message
    with pytest.raises(FlvError):
        FlvTag(7, 0, b"").to_message()


def _stream_bytes() -> tuple[bytes, list[FlvTag]]:
    tags = [FlvTag(18, 0, ScriptData("onMetaData", amf0.EcmaArray(width=320.0)).serialize())]
    tags += [FlvTag(9, n * 33, b"\x27\x01\x00\x00\x00" + bytes([n]) * n) for n in range(20)]
    tags += [FlvTag(8, n * 23, b"\xaf\x01" + bytes(n)) for n in range(20)]
    return stream_start(True, True) + b"".join(t.serialize() for t in tags), tags


def test_reader_byte_at_a_time() -> None:
    data, tags = _stream_bytes()
    reader = FlvReader()
    out: list[FlvHeader | FlvTag] = []
    for byte in data:
        out += reader.feed(bytes([byte]))
    assert out[0] == FlvHeader(True, True)
    assert out[1:] == tags
    assert reader.header == FlvHeader(True, True)


def test_reader_random_splits_and_long_header() -> None:
    data, tags = _stream_bytes()
    # DataOffset 13: four extra header bytes the reader must skip [FLV E.2].
    data = FlvHeader(True, True, data_offset=13).serialize() + data[9:]
    reader = FlvReader()
    out: list[FlvHeader | FlvTag] = []
    pos = 0
    for size in [1, 5, 7, 13, 2, 100, 3] * 200:
        out += reader.feed(data[pos : pos + size])
        pos += size
    assert out[1:] == tags


def test_real_ffmpeg_file_byte_exact(ffmpeg_flv: dict[str, Path]) -> None:
    data = ffmpeg_flv["bframes"].read_bytes()
    items = FlvReader().feed(data)
    header = items[0]
    assert isinstance(header, FlvHeader)
    assert header.has_audio and header.has_video
    tags = [t for t in items if isinstance(t, FlvTag)]
    rebuilt = header.serialize() + b"\x00" * 4 + b"".join(t.serialize() for t in tags)
    assert rebuilt == data
    for tag in tags:
        if tag.tag_type == 9:
            assert VideoTagBody.parse(tag.payload).serialize() == tag.payload
        elif tag.tag_type == 8:
            assert AudioTagBody.parse(tag.payload).serialize() == tag.payload
    one_by_one: list[FlvHeader | FlvTag] = []
    reader = FlvReader()
    for i in range(0, 4000):
        one_by_one += reader.feed(data[i : i + 1])
    one_by_one += reader.feed(data[4000:])
    assert one_by_one == items


@pytest.mark.parametrize("cts", [0, 67, -33, (1 << 23) - 1, -(1 << 23)])
def test_video_body_round_trip(cts: int) -> None:
    body = VideoTagBody(frame_type=2, packet_type=1, composition_time=cts, data=b"\x00\x00\x00\x01\x41")
    payload = body.serialize()
    assert payload[0] == 0x27
    assert VideoTagBody.parse(payload) == body


def test_video_body_flags() -> None:
    key = VideoTagBody.parse(b"\x17\x01\x00\x00\x00xyz")
    assert key.is_keyframe and key.is_coded_frame and not key.is_sequence_header
    header = VideoTagBody.parse(b"\x17\x00\x00\x00\x00")
    assert header.is_sequence_header
    command = VideoTagBody.parse(b"\x57\x00")
    assert command.packet_type is None and command.serialize() == b"\x57\x00"


def test_video_body_refuses_other_codecs() -> None:
    with pytest.raises(UnsupportedCodecError):
        VideoTagBody.parse(b"\x90hvc1")  # Enhanced RTMP ExHeader
    with pytest.raises(UnsupportedCodecError):
        VideoTagBody.parse(b"\x12\x00\x00")  # Sorenson H.263
    with pytest.raises(FlvError):
        VideoTagBody.parse(b"\x17\x01")
    with pytest.raises(FlvError):
        VideoTagBody(1, 1, 1 << 23, b"").serialize()


def test_audio_body_round_trip() -> None:
    payload = b"\xaf\x01" + bytes(range(10))
    body = AudioTagBody.parse(payload)
    assert (body.sound_format, body.sound_rate, body.sound_size, body.sound_type) == (10, 3, 1, 1)
    assert not body.is_sequence_header
    assert body.serialize() == payload
    header = AudioTagBody.parse(b"\xaf\x00\x12\x10")
    assert header.audio_config().sample_rate == 44100
    with pytest.raises(FlvError):
        body.audio_config()


def test_audio_body_refuses_other_codecs() -> None:
    with pytest.raises(UnsupportedCodecError):
        AudioTagBody.parse(b"\x2f\xff\xfb")  # MP3
    with pytest.raises(UnsupportedCodecError):
        AudioTagBody.parse(b"\x90Opus")
    with pytest.raises(FlvError):
        AudioTagBody.parse(b"\xaf")


def test_script_data_strips_set_data_frame() -> None:
    meta = amf0.EcmaArray(duration=0.0, width=1280.0, stereo=False, encoder="Lavf59.27.100")
    over_rtmp = amf0.encode("@setDataFrame", "onMetaData", meta)
    script = ScriptData.parse(over_rtmp)
    assert script == ScriptData("onMetaData", meta)
    assert ScriptData.parse(script.serialize()) == script
    with pytest.raises(AmfError):
        ScriptData.parse(amf0.encode(1.0))

"""fMP4/CMAF boxes: init segment layout, fragment addressing and timing fields."""

from __future__ import annotations

import struct

import pytest

from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord
from retake.media.errors import Mp4Error
from retake.media.fmp4 import (
    NON_SYNC_SAMPLE_FLAGS,
    SYNC_SAMPLE_FLAGS,
    AudioTrack,
    Box,
    Sample,
    TrackFragment,
    VideoTrack,
    box,
    esds,
    init_segment,
    media_fragment,
)


def child(parent: Box, kind: bytes, skip: int = 0) -> Box:
    matches = [b for b in parent.children(skip) if b.kind == kind]
    assert len(matches) == 1, (kind, [b.kind for b in parent.children(skip)])
    return matches[0]


def tracks(avcc: bytes) -> tuple[VideoTrack, AudioTrack]:
    return VideoTrack(AvcDecoderConfigurationRecord.parse(avcc)), AudioTrack(AudioSpecificConfig.build(2, 44100, 2))


def test_init_segment_layout(avcc_320x240: bytes) -> None:
    video, audio = tracks(avcc_320x240)
    top = Box.parse_all(init_segment(video, audio))
    assert [b.kind for b in top] == [b"ftyp", b"moov"]
    assert top[0].payload[:4] == b"iso6" and b"cmfc" in top[0].payload
    moov = top[1]
    assert [b.kind for b in moov.children()] == [b"mvhd", b"trak", b"trak", b"mvex"]
    mvhd = child(moov, b"mvhd")
    assert struct.unpack_from(">I", mvhd.payload, 4 + 8)[0] == 1000  # timescale
    assert struct.unpack_from(">I", mvhd.payload, len(mvhd.payload) - 4)[0] == 3  # next_track_ID
    trak_v, trak_a = (b for b in moov.children() if b.kind == b"trak")

    tkhd = child(trak_v, b"tkhd")
    assert struct.unpack_from(">I", tkhd.payload, 4 + 8)[0] == 1
    assert struct.unpack_from(">II", tkhd.payload, len(tkhd.payload) - 8) == (320 << 16, 240 << 16)
    mdia = child(trak_v, b"mdia")
    assert struct.unpack_from(">I", child(mdia, b"mdhd").payload, 4 + 8)[0] == 90000
    assert child(mdia, b"hdlr").payload[8:12] == b"vide"
    stbl = child(child(mdia, b"minf"), b"stbl")
    assert [b.kind for b in stbl.children()] == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
    avc1 = child(child(stbl, b"stsd"), b"avc1", skip=8)
    assert struct.unpack_from(">HH", avc1.payload, 24) == (320, 240)
    assert Box.parse_all(avc1.payload[78:])[0] == Box(b"avcC", avcc_320x240)

    mdia_a = child(trak_a, b"mdia")
    assert struct.unpack_from(">I", child(mdia_a, b"mdhd").payload, 4 + 8)[0] == 44100
    assert child(mdia_a, b"hdlr").payload[8:12] == b"soun"
    stsd_a = child(child(child(mdia_a, b"minf"), b"stbl"), b"stsd")
    mp4a = child(stsd_a, b"mp4a", skip=8)
    channels, sample_size, _, _, rate = struct.unpack_from(">HHHHI", mp4a.payload, 16)
    assert (channels, sample_size, rate) == (2, 16, 44100 << 16)
    assert Box.parse_all(mp4a.payload[28:])[0].kind == b"esds"

    trex = [b for b in child(moov, b"mvex").children() if b.kind == b"trex"]
    assert [struct.unpack_from(">I", t.payload, 4)[0] for t in trex] == [1, 2]


def test_init_needs_a_track() -> None:
    with pytest.raises(Mp4Error):
        init_segment(None, None)


def test_esds_descriptors() -> None:
    asc = bytes.fromhex("120856e500")
    payload = Box.parse_all(esds(2, asc))[0].payload[4:]
    # ES_Descriptor(3) > DecoderConfigDescriptor(4: OTI 0x40, audio) > DecoderSpecificInfo(5) = ASC; SL(6).
    assert payload[0] == 0x03
    assert payload[2:5] == b"\x00\x02\x00"
    assert payload[5] == 0x04 and payload[7:9] == b"\x40\x15"
    assert payload.find(b"\x05" + bytes([len(asc)]) + asc) > 0
    assert payload.endswith(b"\x06\x01\x02")
    long_asc = bytes(200)  # sizes ≥ 128 use the expandable multi-byte form [ISO/IEC 14496-1 §8.3.3]
    long_payload = Box.parse_all(esds(1, long_asc))[0].payload[4:]
    assert long_payload.find(b"\x05\x81\x48" + long_asc) > 0


def test_fragment_addressing_and_timing() -> None:
    video_samples = [
        Sample(b"K" * 10, 3000, True, 6000),
        Sample(b"P" * 7, 3000, False, -3000),
        Sample(b"B" * 5, 3003, False, 0),
    ]
    audio_samples = [Sample(b"a" * 4, 1024), Sample(b"b" * 6, 1024)]
    data = media_fragment(
        7,
        [
            TrackFragment(1, 90 * 100_000_000, video_samples, True),  # > 2^32: needs tfdt v1
            TrackFragment(2, 44100 * 3, audio_samples, False),
        ],
    )
    moof, mdat = Box.parse_all(data)
    assert (moof.kind, mdat.kind) == (b"moof", b"mdat")
    assert struct.unpack_from(">I", child(moof, b"mfhd").payload, 4)[0] == 7
    trafs = [b for b in moof.children() if b.kind == b"traf"]
    expected = [video_samples, audio_samples]
    for traf, samples in zip(trafs, expected, strict=True):
        tfhd = child(traf, b"tfhd")
        assert struct.unpack_from(">I", tfhd.payload)[0] & 0xFFFFFF == 0x020000  # default-base-is-moof
        tfdt = child(traf, b"tfdt")
        assert tfdt.payload[0] == 1
        trun = child(traf, b"trun")
        (version_flags, count, offset) = struct.unpack_from(">IIi", trun.payload)
        assert version_flags >> 24 == 1 and count == len(samples)
        # data_offset is relative to the moof start and must land on the first sample's bytes.
        assert data[offset : offset + len(samples[0].data)] == samples[0].data
    video_trun = child(trafs[0], b"trun")
    assert struct.unpack_from(">I", video_trun.payload)[0] & 0xFFFFFF == 0x000F01
    rows = struct.unpack_from(">" + "IIIi" * 3, video_trun.payload, 12)
    assert rows[:4] == (3000, 10, SYNC_SAMPLE_FLAGS, 6000)
    assert rows[4:8] == (3000, 7, NON_SYNC_SAMPLE_FLAGS, -3000)
    assert struct.unpack_from(">Q", child(trafs[0], b"tfdt").payload, 4)[0] == 9_000_000_000
    audio_trun = child(trafs[1], b"trun")
    assert struct.unpack_from(">I", audio_trun.payload)[0] & 0xFFFFFF == 0x000301
    assert mdat.payload == b"K" * 10 + b"P" * 7 + b"B" * 5 + b"a" * 4 + b"b" * 6


def test_fragment_without_composition_offsets_omits_them() -> None:
    data = media_fragment(1, [TrackFragment(1, 0, [Sample(b"x", 3000, True)], True)])
    trun = child(child(Box.parse_all(data)[0], b"traf"), b"trun")
    assert struct.unpack_from(">I", trun.payload)[0] & 0xFFFFFF == 0x000701


def test_fragment_input_errors() -> None:
    with pytest.raises(Mp4Error):
        media_fragment(1, [TrackFragment(1, 0, [], True)])
    with pytest.raises(Mp4Error):
        media_fragment(0, [TrackFragment(1, 0, [Sample(b"x", 1)], True)])


def test_box_round_trip_and_bounds() -> None:
    data = box(b"abcd", b"123") + box(b"wxyz", box(b"in  ", b"!"))
    boxes = Box.parse_all(data)
    assert b"".join(b.serialize() for b in boxes) == data
    assert boxes[1].children() == [Box(b"in  ", b"!")]
    large = struct.pack(">I4sQ", 1, b"big ", 16 + 2) + b"hi"
    assert Box.parse_all(large) == [Box(b"big ", b"hi")]
    assert Box.parse_all(struct.pack(">I4s", 0, b"rest") + b"tail") == [Box(b"rest", b"tail")]
    for end in range(1, len(data)):
        if end == len(box(b"abcd", b"123")):
            continue
        with pytest.raises(Mp4Error):
            Box.parse_all(data[:end])

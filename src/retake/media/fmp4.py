"""Fragmented MP4 / CMAF muxing for HLS [ISO/IEC 14496-12; RFC 8216bis §3.1.2].

Init segment = ftyp + moov (zero-sample tables + mvex/trex); media fragment = moof + mdat with one traf
per track, ``default-base-is-moof`` addressing and 64-bit ``tfdt``. Track 1 is video (90 kHz), track 2
audio (timescale = AAC output sample rate).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord, SpsInfo

from .errors import Mp4Error

VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2
VIDEO_TIMESCALE = 90_000
MOVIE_TIMESCALE = 1000

# Sample flags [ISO/IEC 14496-12 §8.8.3.1]: sample_depends_on=2 (I-frame) / =1 plus is_non_sync.
SYNC_SAMPLE_FLAGS = 0x02000000
NON_SYNC_SAMPLE_FLAGS = 0x01010000

# trun flags [§8.8.8.1].
_TRUN_DATA_OFFSET = 0x000001
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000  # [§8.8.7.1]

_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # ISO 639-2 'und', three 5-bit letters [§8.4.2.3]


def box(kind: bytes, *payload: bytes) -> bytes:
    """A plain box [§4.2]: 32-bit size, 4-character type, payload."""
    body = b"".join(payload)
    size = 8 + len(body)
    if size > 0xFFFFFFFF:
        raise Mp4Error(f"box {kind!r} too large")
    return struct.pack(">I4s", size, kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox [§4.2]: version byte and 24-bit flags before the payload."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


@dataclass(frozen=True, slots=True)
class Box:
    """A parsed box (used to inspect our own output and for tests)."""

    kind: bytes
    payload: bytes

    @classmethod
    def parse_all(cls, data: bytes) -> list[Box]:
        return list(cls.iter(data))

    @classmethod
    def iter(cls, data: bytes) -> Iterator[Box]:
        pos = 0
        while pos < len(data):
            if len(data) - pos < 8:
                raise Mp4Error("truncated box header")
            size, kind = struct.unpack_from(">I4s", data, pos)
            header = 8
            if size == 1:  # 64-bit largesize [§4.2]
                if len(data) - pos < 16:
                    raise Mp4Error("truncated largesize")
                (size,) = struct.unpack_from(">Q", data, pos + 8)
                header = 16
            elif size == 0:  # box extends to the end of the file
                size = len(data) - pos
            if size < header or pos + size > len(data):
                raise Mp4Error(f"box {kind!r} size {size} out of bounds")
            yield cls(kind, data[pos + header : pos + size])
            pos += size

    def serialize(self) -> bytes:
        return box(self.kind, self.payload)

    def children(self, skip: int = 0) -> list[Box]:
        """Parse the payload (after ``skip`` bytes, e.g. 4 for a FullBox header) as child boxes."""
        return Box.parse_all(self.payload[skip:])


# -- init segment ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoTrack:
    config: AvcDecoderConfigurationRecord
    track_id: int = VIDEO_TRACK_ID
    timescale: int = VIDEO_TIMESCALE
    sps: SpsInfo | None = None  # the parsed first SPS, when the caller has it already (retake.av.headers)


@dataclass(frozen=True, slots=True)
class AudioTrack:
    config: AudioSpecificConfig
    track_id: int = AUDIO_TRACK_ID

    @property
    def timescale(self) -> int:
        return self.config.output_sample_rate


def ftyp() -> bytes:
    # HLS needs a brand compatible with 'iso6' or later [RFC 8216bis §3.1.2]; 'cmfc' = CMAF [ISO 23000-19].
    return box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"mp41")


def styp() -> bytes:
    """Segment type box [§8.16.2] that may open each media segment."""
    return box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh", b"msix", b"cmfs")


def _mvhd(next_track_id: int) -> bytes:
    # [§8.2.2] version 0; duration 0 because fragments carry the media.
    return full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, MOVIE_TIMESCALE, 0),
        struct.pack(">IH", 0x00010000, 0x0100),
        bytes(10),
        _UNITY_MATRIX,
        bytes(24),
        struct.pack(">I", next_track_id),
    )


def _tkhd(track_id: int, audio: bool, width: int, height: int) -> bytes:
    # [§8.3.2] flags 3 = track_enabled | track_in_movie; width/height are 16.16 fixed point.
    return full_box(
        b"tkhd",
        0,
        0x000003,
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),
        bytes(8),
        struct.pack(">hhHH", 0, 0, 0x0100 if audio else 0, 0),
        _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )


def _mdhd(timescale: int) -> bytes:
    return full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _LANGUAGE_UND, 0))


def _hdlr(handler: bytes, name: bytes) -> bytes:
    return full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, handler), bytes(12), name + b"\x00")


def _dinf() -> bytes:
    # One self-contained data reference: 'url ' with flags 1 = media in this file [§8.7.2].
    return box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))


def _stbl(sample_entry: bytes) -> bytes:
    # Sample tables stay empty: every sample lives in a movie fragment [§8.8.1].
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )


def _avc1(track: VideoTrack) -> tuple[bytes, int, int]:
    info = track.sps or track.config.sps_info
    entry = box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # SampleEntry.data_reference_index [§8.5.2.2]
        bytes(16),  # VisualSampleEntry pre_defined/reserved [§12.1.3.2]
        struct.pack(">HHIIIH", info.width, info.height, 0x00480000, 0x00480000, 0, 1),
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),
        box(b"avcC", track.config.serialize()),  # [ISO/IEC 14496-15 §5.4.2.1]
    )
    return entry, info.width, info.height


def _descriptor(tag: int, payload: bytes) -> bytes:
    # Expandable size field of ISO/IEC 14496-1 §8.3.3: 7 bits per byte, high bit = more bytes follow.
    size = len(payload)
    if size >= 1 << 28:
        raise Mp4Error("descriptor too large")
    encoded = [size & 0x7F]
    size >>= 7
    while size:
        encoded.insert(0, 0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag, *encoded]) + payload


def esds(track_id: int, asc: bytes) -> bytes:
    """Elementary stream descriptor box [ISO/IEC 14496-14 §5.6; ISO/IEC 14496-1 §7.2.6.5]."""
    decoder_config = _descriptor(
        0x04,
        # objectTypeIndication 0x40 = ISO/IEC 14496-3 audio; streamType 5 (audio) << 2 | reserved bit.
        bytes([0x40, 0x15]) + bytes(3) + struct.pack(">II", 0, 0) + _descriptor(0x05, asc),
    )
    sl_config = _descriptor(0x06, b"\x02")  # predefined = 2 (reserved for MP4 files)
    es = _descriptor(0x03, struct.pack(">HB", track_id, 0) + decoder_config + sl_config)
    return full_box(b"esds", 0, 0, es)


def _mp4a(track: AudioTrack) -> bytes:
    rate = track.timescale
    return box(
        b"mp4a",
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),
        # channelcount, samplesize 16, pre_defined, reserved, samplerate 16.16 (0 if it cannot fit)
        struct.pack(">HHHHI", track.config.channels, 16, 0, 0, rate << 16 if rate <= 0xFFFF else 0),
        esds(track.track_id, track.config.serialize()),
    )


def _trak(track_id: int, timescale: int, handler: bytes, sample_entry: bytes, size: tuple[int, int]) -> bytes:
    audio = handler == b"soun"
    media_header = full_box(b"smhd", 0, 0, bytes(4)) if audio else full_box(b"vmhd", 0, 1, bytes(8))
    return box(
        b"trak",
        _tkhd(track_id, audio, *size),
        box(
            b"mdia",
            _mdhd(timescale),
            _hdlr(handler, b"SoundHandler" if audio else b"VideoHandler"),
            box(b"minf", media_header, _dinf(), _stbl(sample_entry)),
        ),
    )


def _trex(track_id: int) -> bytes:
    # [§8.8.3] defaults are all given per fragment, so they stay 0 here.
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))


def init_segment(video: VideoTrack | None, audio: AudioTrack | None) -> bytes:
    """ftyp + moov for the given tracks (at least one)."""
    if video is None and audio is None:
        raise Mp4Error("an init segment needs at least one track")
    traks: list[bytes] = []
    trexes: list[bytes] = []
    if video is not None:
        entry, width, height = _avc1(video)
        traks.append(_trak(video.track_id, video.timescale, b"vide", entry, (width, height)))
        trexes.append(_trex(video.track_id))
    if audio is not None:
        traks.append(_trak(audio.track_id, audio.timescale, b"soun", _mp4a(audio), (0, 0)))
        trexes.append(_trex(audio.track_id))
    next_id = max(t.track_id for t in (video, audio) if t is not None) + 1
    return ftyp() + box(b"moov", _mvhd(next_id), *traks, box(b"mvex", *trexes))


# -- media fragments ---------------------------------------------------------------------------------


class Sample(NamedTuple):
    """One access unit; durations and offsets are in the track's timescale. A named tuple: the packager makes
    one per frame, and that is several times cheaper than a frozen dataclass."""

    data: bytes
    duration: int
    is_sync: bool = True
    composition_offset: int = 0


@dataclass(frozen=True, slots=True)
class TrackFragment:
    track_id: int
    base_decode_time: int
    samples: Sequence[Sample]
    is_video: bool


def _trun_rows(fragment: TrackFragment) -> tuple[int, bytes]:
    """(trun flags, the sample rows) [§8.8.8]: packed in one call, as a part holds dozens of samples."""
    samples = fragment.samples
    for sample in samples:
        if sample.duration < 0 or sample.duration > 0xFFFFFFFF:
            raise Mp4Error(f"sample duration {sample.duration} out of range")
    flags = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE
    values: list[int]
    if not fragment.is_video:
        values = [v for s in samples for v in (s.duration, len(s.data))]
        row = "II"
    elif any(s.composition_offset for s in samples):
        flags |= _TRUN_FLAGS | _TRUN_CTO
        values = [
            v
            for s in samples
            for v in (
                s.duration,
                len(s.data),
                SYNC_SAMPLE_FLAGS if s.is_sync else NON_SYNC_SAMPLE_FLAGS,
                s.composition_offset,
            )
        ]
        row = "IIIi"
    else:
        flags |= _TRUN_FLAGS
        values = [
            v
            for s in samples
            for v in (s.duration, len(s.data), SYNC_SAMPLE_FLAGS if s.is_sync else NON_SYNC_SAMPLE_FLAGS)
        ]
        row = "III"
    return flags, struct.pack(">" + row * len(samples), *values)


# traf + tfhd + tfdt + the trun header, as box() and full_box() would write them, in one pack: every part has
# one or two trafs. tfdt version 1: a 64-bit decode time, as 32 bits at 90 kHz wrap after 13.25 h
# (mediamtx#403) [§8.8.12]; trun version 1: signed composition offsets [§8.8.8].
_TRAF_HEAD = struct.Struct(">I4sI4sII I4sIQ I4sIIi")
_TRAF_HEAD_SIZE = _TRAF_HEAD.size  # traf 8 + tfhd 16 + tfdt 20 + trun header 20
_TFHD_SIZE = 16
_TFDT_SIZE = 20
_TFDT_VERSION_1 = 1 << 24


def _traf(fragment: TrackFragment, data_offset: int, trun: tuple[int, bytes] | None = None) -> bytes:
    flags, rows = trun if trun is not None else _trun_rows(fragment)
    trun_size = 20 + len(rows)
    if trun_size > 0xFFFFFFFF:
        raise Mp4Error("box b'trun' too large")
    traf_size = _TRAF_HEAD_SIZE + len(rows)
    if traf_size > 0xFFFFFFFF:
        raise Mp4Error("box b'traf' too large")
    head = _TRAF_HEAD.pack(
        traf_size,
        b"traf",
        _TFHD_SIZE,
        b"tfhd",
        _TFHD_DEFAULT_BASE_IS_MOOF,
        fragment.track_id,
        _TFDT_SIZE,
        b"tfdt",
        _TFDT_VERSION_1,
        fragment.base_decode_time,
        trun_size,
        b"trun",
        _TFDT_VERSION_1 | flags,
        len(fragment.samples),
        data_offset,
    )
    return head + rows


def media_fragment(sequence_number: int, fragments: Sequence[TrackFragment]) -> bytes:
    """moof + mdat; each traf's data_offset points into the single mdat, relative to the moof start."""
    fragments = [f for f in fragments if f.samples]
    if not fragments:
        raise Mp4Error("a media fragment needs at least one sample")
    if sequence_number < 1:
        raise Mp4Error("mfhd sequence numbers start at 1")
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
    runs = [_trun_rows(f) for f in fragments]
    # The moof size does not depend on the offset values: each traf is its fixed header plus its trun rows.
    moof_size = 8 + len(mfhd) + sum(_TRAF_HEAD_SIZE + len(rows) for _, rows in runs)
    trafs = []
    offset = moof_size + 8  # the mdat header
    for fragment, run in zip(fragments, runs, strict=True):
        trafs.append(_traf(fragment, offset, run))
        offset += sum(len(s.data) for s in fragment.samples)
    datas = [s.data for f in fragments for s in f.samples]
    mdat_size = 8 + sum(map(len, datas))
    if mdat_size > 0xFFFFFFFF:
        raise Mp4Error("box b'mdat' too large")
    # One join for moof, the mdat header and every sample: the frames are copied once, not three times.
    return b"".join([box(b"moof", mfhd, *trafs), struct.pack(">I4s", mdat_size, b"mdat"), *datas])

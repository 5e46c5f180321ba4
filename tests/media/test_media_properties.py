"""Property tests: FLV parsing under any split, repaired time always monotonic, parts within target."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from retake.av.message import MediaMessage
from retake.media.cmaf import CmafPart, CmafSegmenter
from retake.media.flv import FlvHeader, FlvReader, FlvTag, stream_start
from retake.media.timestamps import TimestampRepair

AVCC = bytes.fromhex("0164000dffe100176764000dacb40a0fd80880000003008000001e478a155001000468ef0fcbfdf8f800")

tags = st.lists(
    st.builds(
        FlvTag,
        st.sampled_from([8, 9, 18]),
        st.integers(-(1 << 31), (1 << 31) - 1),
        st.binary(max_size=64),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(tags, st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_reader_any_split(items: list[FlvTag], sizes: list[int]) -> None:
    data = stream_start(True, True) + b"".join(t.serialize() for t in items)
    reader = FlvReader()
    out: list[FlvHeader | FlvTag] = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        out += reader.feed(data[pos : pos + size])
        pos += size
        index += 1
    assert out == [FlvHeader(True, True), *items]


media = st.lists(
    st.tuples(st.sampled_from(["audio", "video"]), st.integers(-100_000, 100_000)),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(media, st.integers(0, 59))
def test_repair_is_strictly_monotonic_per_track(items: list[tuple[str, int]], takeover_at: int) -> None:
    repair = TimestampRepair()
    last: dict[str, int] = {}
    for index, (kind, ts) in enumerate(items):
        if index == takeover_at:
            repair.mark_discontinuity()
        payload = b"\x27\x01\x00\x00\x10nal" if kind == "video" else b"\xaf\x01aac"
        out = repair.repair(MediaMessage("video" if kind == "video" else "audio", ts, payload))
        assert out.timestamp_ms >= 0
        assert out.timestamp_ms > last.get(kind, -1)
        last[kind] = out.timestamp_ms


@settings(max_examples=40, deadline=None)
@given(st.integers(10, 60), st.integers(1, 40), st.integers(200, 1000), st.integers(1, 3))
def test_parts_within_target_and_segments_start_at_keyframes(
    fps: int, frames_per_gop: int, part_ms: int, target_s: int
) -> None:
    segmenter = CmafSegmenter(segment_target_ms=max(target_s * 1000, part_ms), part_target_ms=part_ms)
    events = segmenter.push(MediaMessage("video", 0, b"\x17\x00\x00\x00\x00" + AVCC))
    for n in range(fps * 6):
        key = n % frames_per_gop == 0
        body = bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + b"\x00\x00\x00\x01" + (b"\x65" if key else b"\x41")
        events += segmenter.push(MediaMessage("video", n * 1000 // fps, body))
    events += segmenter.flush()
    parts = [e for e in events if isinstance(e, CmafPart)]
    assert parts
    frame_ms = -(-1000 // fps)
    starts_segment = True
    for part in parts:
        assert part.duration <= max(part_ms, frame_ms) / 1000 + 1e-9
        if starts_segment:
            assert part.independent
        starts_segment = part.ends_segment
    assert parts[-1].ends_segment

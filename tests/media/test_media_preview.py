"""Preview images: the cached keyframe accessor, and keyframe → JPEG with PyAV + Pillow on real x264 output."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from retake.av.message import MediaMessage
from retake.media.preview import PreviewError, preview_size, render_preview
from retake.media.stream import Keyframe, LiveStream
from tests.media.conftest import MessageFactory, read_flv_messages


def fed(messages: list[MediaMessage]) -> LiveStream:
    stream = LiveStream("s")
    for message in messages:
        stream.publish(message)
    return stream


@pytest.mark.parametrize(
    ("size", "sar", "expected"),
    [
        ((1280, 720), None, (640, 360)),
        ((1920, 1080), None, (640, 360)),
        ((640, 480), None, (640, 480)),
        ((320, 240), None, (320, 240)),  # never upscaled
        ((720, 576), Fraction(16, 11), (640, 352)),  # PAL 16:9 anamorphic: 1047x576 displayed
        ((1280, 721), None, (640, 360)),  # odd sizes rounded down to even
        ((1, 1), None, (2, 2)),
    ],
)
def test_preview_size(size: tuple[int, int], sar: Fraction | None, expected: tuple[int, int]) -> None:
    assert preview_size(*size, sar) == expected


def test_preview_size_rejects_empty_pictures() -> None:
    with pytest.raises(PreviewError):
        preview_size(0, 720)


@pytest.mark.parametrize("kind", ["no_bframes", "bframes"])
def test_real_keyframe_becomes_a_jpeg(ffmpeg_flv: dict[str, Path], kind: str) -> None:
    stream = fed(read_flv_messages(ffmpeg_flv[kind]))
    keyframe = stream.latest_keyframe()
    assert keyframe is not None
    assert 2900 <= keyframe.timestamp_ms <= 3100  # -g 30 at 30 fps over 4 s: the last GOP starts near 3 s
    assert stream.tracks.video is not None and keyframe.avc_config == stream.tracks.video.record.serialize()
    data = render_preview(keyframe)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "JPEG" and image.size == (320, 240)
        # testsrc's colour bars, not a grey or green decoder failure picture
        assert len(image.resize((32, 24)).getcolors(maxcolors=32 * 24) or []) > 20
    small = render_preview(keyframe, width=160)
    assert Image.open(io.BytesIO(small)).size == (160, 120)


def test_garbage_keyframe_raises_preview_error(ffmpeg_flv: dict[str, Path]) -> None:
    keyframe = fed(read_flv_messages(ffmpeg_flv["no_bframes"])).latest_keyframe()
    assert keyframe is not None
    with pytest.raises(PreviewError):
        render_preview(Keyframe(keyframe.avc_config, b"\x00\x00\x00\x05\x65junk", 0))
    with pytest.raises(PreviewError):
        render_preview(Keyframe(keyframe.avc_config, b"", 0))


def test_latest_keyframe_follows_the_gop_cache(messages: MessageFactory) -> None:
    assert LiveStream("s").latest_keyframe() is None
    assert fed(messages(3000, video=False)).latest_keyframe() is None  # audio only
    # frames without a sequence header are not decodable alone
    assert fed(messages(3000, headers=False)).latest_keyframe() is None
    stream = fed(messages(2500, gop_ms=1000))
    keyframe = stream.latest_keyframe()
    assert keyframe is not None and keyframe.timestamp_ms == 2000
    assert keyframe.data[4] == 0x65  # AVCC: a 4-byte length, then the IDR slice NAL unit
    stream.begin_publish()  # a new publisher: the old GOP is gone until its first keyframe
    assert stream.latest_keyframe() is None
    stream.close()
    assert stream.latest_keyframe() is None


def test_latest_keyframe_is_the_same_before_and_after_a_viewer_joins(messages: MessageFactory) -> None:
    # FLV tags are serialized only when a viewer needs them, and then only the serialized tag is kept.
    stream = fed(messages(2500, gop_ms=1000))
    before = stream.latest_keyframe()
    stream.subscribe()  # bootstraps from the cached GOP: its tags are serialized now
    after = stream.latest_keyframe()
    assert before is not None and before == after

"""Preview images: one cached AVC keyframe → a small JPEG. Bytes in, bytes out; blocking (run it in a thread).

The keyframe is decoded on its own with the stream's AVCDecoderConfigurationRecord as decoder extradata, so
the AVCC-framed NAL units of the FLV tag go to the decoder as they are [ISO/IEC 14496-15 §5.3.3.1].
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
from av.error import FFmpegError
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame
from PIL import Image

from .errors import MediaError
from .stream import Keyframe

PREVIEW_WIDTH = 640
JPEG_QUALITY = 80


class PreviewError(MediaError):
    """The keyframe did not decode into a picture."""


def preview_size(
    width: int, height: int, sample_aspect: Fraction | None = None, target: int = PREVIEW_WIDTH
) -> tuple[int, int]:
    """Output size for a ``width``x``height`` picture: ``target`` wide (never upscaled), display aspect kept
    (non-square pixels are widened by their sample aspect ratio), both sides even and at least 2."""
    if width <= 0 or height <= 0:
        raise PreviewError(f"picture size {width}x{height} is empty")
    display_width = Fraction(width) * (sample_aspect if sample_aspect and sample_aspect > 0 else 1)
    out_width = min(target, round(display_width))
    out_height = round(Fraction(height) * out_width / display_width)
    return max(2, out_width - out_width % 2), max(2, out_height - out_height % 2)


def decode_keyframe(keyframe: Keyframe) -> tuple[VideoFrame, Fraction | None]:
    """Decode one keyframe alone: (picture, sample aspect ratio). Raises :class:`PreviewError`."""
    codec = av.CodecContext.create("h264", "r")
    assert isinstance(codec, VideoCodecContext)
    codec.extradata = keyframe.avc_config
    codec.thread_count = 1  # one picture: decoder threads would only add start-up cost
    try:
        frames = list(codec.decode(av.Packet(keyframe.data)))
        frames += codec.decode(None)  # drain: with B-frames the decoder may hold the picture back
    except (FFmpegError, ValueError) as exc:
        raise PreviewError(f"keyframe did not decode: {exc}") from exc
    if not frames:
        raise PreviewError("keyframe decoded to no picture")
    return frames[0], codec.sample_aspect_ratio


def render_preview(keyframe: Keyframe, width: int = PREVIEW_WIDTH, quality: int = JPEG_QUALITY) -> bytes:
    """A JPEG of ``keyframe``, ``width`` pixels wide (or its own width if narrower), aspect ratio kept."""
    frame, sample_aspect = decode_keyframe(keyframe)
    out_width, out_height = preview_size(frame.width, frame.height, sample_aspect, width)
    scaled = frame.reformat(width=out_width, height=out_height, format="rgb24", interpolation="AREA")
    plane = scaled.planes[0]  # packed RGB, rows possibly padded to line_size
    image = Image.frombuffer("RGB", (out_width, out_height), bytes(plane), "raw", "RGB", plane.line_size, 1)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)  # Pillow encodes; PyAV only decodes and scales
    return out.getvalue()

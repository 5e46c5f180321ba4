"""Shared fixtures for the media tests: real ffmpeg-made FLV files and a synthetic stream factory."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from retake.av.message import MediaMessage
from retake.media.flv import FlvReader, FlvTag

# A real x264 record (320x240 High@1.3), as ffmpeg 5.1 writes it in the FLV AVC sequence header.
AVCC_320X240 = bytes.fromhex("0164000dffe100176764000dacb40a0fd80880000003008000001e478a155001000468ef0fcbfdf8f800")
ASC_LC_44100_STEREO = bytes.fromhex("1210")

MessageFactory = Callable[..., list[MediaMessage]]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required for the media real-peer tests (apt-get install -y ffmpeg)")
    return path


def run_tool(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg/ffprobe with an argv list, bounded by ``timeout``; fail the test on a hang."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[0]} timed out after {timeout} s: {' '.join(argv)}")


def read_flv_messages(path: Path) -> list[MediaMessage]:
    return [item.to_message() for item in FlvReader().feed(path.read_bytes()) if isinstance(item, FlvTag)]


def _ffmpeg_flv(out: Path, bframes: int) -> Path:
    ffmpeg = require_tool("ffmpeg")
    argv = [ffmpeg, "-nostdin", "-v", "error", "-y"]
    argv += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"]
    argv += ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100"]
    argv += ["-c:v", "libx264", "-preset", "veryfast"]
    if bframes == 0:
        argv += ["-tune", "zerolatency"]
    argv += [
        "-pix_fmt",
        "yuv420p",
        "-g",
        "30",
        "-bf",
        str(bframes),
        "-c:a",
        "aac",
        "-t",
        "4",
        "-f",
        "flv",
        str(out),
    ]
    result = run_tool(argv, timeout=60)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def ffmpeg_flv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s of 320x240@30 H.264 + stereo AAC made by ffmpeg: without and with B-frames."""
    base = tmp_path_factory.mktemp("ffmpeg-flv")
    return {
        "no_bframes": _ffmpeg_flv(base / "no_bframes.flv", 0),
        "bframes": _ffmpeg_flv(base / "bframes.flv", 2),
    }


def _video(ts: int, key: bool, size: int, cts: int = 0) -> MediaMessage:
    nal_type = 0x65 if key else 0x41  # IDR slice / non-IDR slice
    nal = bytes([nal_type]) + bytes(size)
    body = bytes([0x17 if key else 0x27, 1]) + (cts & 0xFFFFFF).to_bytes(3, "big")
    return MediaMessage("video", ts, body + len(nal).to_bytes(4, "big") + nal)


def make_messages(
    duration_ms: int,
    *,
    gop_ms: int = 1000,
    fps: int = 30,
    video: bool = True,
    audio: bool = True,
    start_ms: int = 0,
    frame_bytes: int = 200,
    headers: bool = True,
) -> list[MediaMessage]:
    """Synthetic interleaved A/V messages (timestamps as an encoder sends them, in DTS order)."""
    out: list[MediaMessage] = []
    if headers:
        if video:
            out.append(MediaMessage("video", start_ms, b"\x17\x00\x00\x00\x00" + AVCC_320X240))
        if audio:
            out.append(MediaMessage("audio", start_ms, b"\xaf\x00" + ASC_LC_44100_STEREO))
    events: list[tuple[int, int, MediaMessage]] = []
    if video:
        frames = duration_ms * fps // 1000
        frames_per_gop = max(1, gop_ms * fps // 1000)
        for n in range(frames):
            ts = start_ms + n * 1000 // fps
            events.append((ts, 0, _video(ts, n % frames_per_gop == 0, frame_bytes)))
    if audio:
        n = 0
        while (ts := start_ms + n * 1024 * 1000 // 44100) < start_ms + duration_ms:
            events.append((ts, 1, MediaMessage("audio", ts, b"\xaf\x01" + bytes(20))))
            n += 1
    events.sort(key=lambda e: (e[0], e[1]))
    return out + [e[2] for e in events]


@pytest.fixture
def messages() -> MessageFactory:
    return make_messages


@pytest.fixture
def avcc_320x240() -> bytes:
    return AVCC_320X240


@pytest.fixture(name="run_tool")
def run_tool_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_tool


@pytest.fixture(name="read_flv_messages")
def read_flv_messages_fixture() -> Callable[[Path], list[MediaMessage]]:
    return read_flv_messages


@pytest.fixture(scope="session")
def ffmpeg_bin() -> str:
    return require_tool("ffmpeg")


@pytest.fixture(scope="session")
def ffprobe_bin() -> str:
    return require_tool("ffprobe")

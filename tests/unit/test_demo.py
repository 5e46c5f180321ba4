"""The demo agent's ffmpeg command line (golden) and its small pure helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retake.identity.validation import check_wallet
from retake.server.demo import DEMO_WALLET, demo_ffmpeg_command, find_font, ingest_host

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CLOCK = (
    "testsrc2=size=1280x720:rate=30"
    f",drawtext=fontfile={FONT}:text='%{{localtime\\:%H\\\\\\:%M\\\\\\:%S}}':fontsize=120:fontcolor=white"
    ":box=1:boxcolor=black@0.55:boxborderw=28:x=(w-text_w)/2:y=(h-text_h)/2-30"
    f",drawtext=fontfile={FONT}:text='retake demo agent · live test signal':fontsize=34"
    ":fontcolor=white@0.9:box=1:boxcolor=black@0.45:boxborderw=14:x=(w-text_w)/2:y=(h/2)+90"
)


def test_command_with_clock_is_golden() -> None:
    assert demo_ffmpeg_command("rtmp://127.0.0.1:1935/live/sk_x", font=FONT) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", CLOCK,
        "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
        "-pix_fmt", "yuv420p", "-g", "30",
        "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", "rtmp://127.0.0.1:1935/live/sk_x",
    ]  # fmt: skip


def test_command_without_a_font_has_no_drawtext() -> None:
    command = demo_ffmpeg_command("rtmp://h/live/k", font=None, size="640x360", rate=25, ffmpeg="/opt/ffmpeg")
    assert command[0] == "/opt/ffmpeg"
    assert command[command.index("-i") + 1] == "testsrc2=size=640x360:rate=25"
    assert command[command.index("-g") + 1] == "25"


def test_the_clock_filter_renders_with_this_ffmpeg(tmp_path: Path) -> None:
    """The escaping is right for the ffmpeg installed here: one frame of the demo picture decodes."""
    font = find_font()
    if font is None:
        pytest.fail("no DejaVu/Liberation bold font found; install fonts-dejavu-core")
    command = demo_ffmpeg_command("unused", font=font)
    source = command[command.index("-i") + 1]
    out = tmp_path / "frame.png"
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1", "-y", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000


def test_helpers() -> None:
    assert check_wallet(DEMO_WALLET) == DEMO_WALLET  # passes registration's own check
    assert ingest_host("0.0.0.0") == "127.0.0.1"
    assert ingest_host("::") == "127.0.0.1"
    assert ingest_host("10.1.2.3") == "10.1.2.3"
    assert ingest_host("fd00::1") == "[fd00::1]"
    assert find_font(["/nonexistent/font.ttf"]) is None

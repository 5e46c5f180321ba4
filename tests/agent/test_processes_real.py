"""The built command lines run for real: Xvfb on a free display, the drawtext encoder, the thumbnail grab.
(The xterm window and the RTMP push are covered by the whole-system test.)"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from retake.agent.commands import EncoderSettings, Size, TextOverlay, ffmpeg_command, thumbnail_command
from retake.agent.processes import child_env, spawn, start_xvfb
from retake.agent.screen import Screen, monospace_font
from tests.e2e.media_support import codecs, ffprobe

SIZE = Size(320, 180)


def test_display_encoder_with_overlay_and_thumbnail(tmp_path: Path) -> None:
    xvfb, display = start_xvfb(SIZE, log_path=tmp_path / "xvfb.log")
    try:
        assert xvfb.alive() and display.startswith(":")
        overlay = TextOverlay(tmp_path / "overlay.txt", monospace_font(), fontsize=16)
        screen = Screen(tmp_path / "stream.log", overlay, SIZE)
        screen.write("hello from the agent")
        assert screen.refresh_overlay(force=True)

        out = tmp_path / "thumb.png"
        grab = subprocess.run(
            thumbnail_command(display, SIZE, out, overlay), env=child_env(display), capture_output=True, timeout=30
        )
        assert grab.returncode == 0, grab.stderr
        with Image.open(out) as image:
            assert image.size == (320, 180)
            rgb = image.convert("RGB")
            colors = rgb.getcolors(maxcolors=320 * 180) or []
            green = sum(n for n, (r, g, b) in colors if g > 150 and r < 100 and b < 100)
        assert green > 50, "the drawtext overlay is in the thumbnail"

        flv = tmp_path / "out.flv"
        argv = ffmpeg_command(display, str(flv), settings=EncoderSettings(size=SIZE), overlay=overlay)
        encoder = spawn("ffmpeg", argv, env=child_env(display), log_path=tmp_path / "ffmpeg.log")
        time.sleep(2.5)
        assert encoder.alive(), encoder.log_tail()
        assert encoder.stop() is not None
        assert not encoder.alive()
        probe = ffprobe(str(flv))
        assert codecs(probe) == {"h264", "aac"}
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (320, 180)
    finally:
        pid = xvfb.pid
        xvfb.stop()
    assert not Path(f"/proc/{pid}").exists() or _is_zombie_free(pid)


def _is_zombie_free(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return True


def test_children_do_not_see_the_access_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAKE_ACCESS_TOKEN", "rtk_secret")
    env = child_env(":9")
    assert env["DISPLAY"] == ":9" and "RETAKE_ACCESS_TOKEN" not in env

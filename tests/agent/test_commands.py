"""Golden tests for the command builders: argv lists, the skill's settings by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from retake.agent.commands import (
    AudioFile,
    EncoderSettings,
    PulseAudio,
    Size,
    TextOverlay,
    drawtext_filter,
    ffmpeg_command,
    scrot_command,
    thumbnail_command,
    xterm_command,
    xterm_geometry,
    xvfb_command,
)
from tests.e2e.media_support import SKILL_FFMPEG_ARGS

TARGET = "rtmp://127.0.0.1:1935/live/sk_test"


def test_default_encoder_is_the_skills_command() -> None:
    assert ffmpeg_command(":99", TARGET) == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-thread_queue_size", "512",
        "-f", "x11grab", "-draw_mouse", "0", "-video_size", "1280x720", "-framerate", "30", "-i", ":99",
        "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
        "-pix_fmt", "yuv420p", "-g", "60",
        "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", TARGET,
    ]  # fmt: skip


def test_default_encoder_differs_from_the_skill_only_by_quiet_flags_and_the_hidden_pointer() -> None:
    argv = ffmpeg_command(":99", TARGET)
    assert argv[:5] == ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    core = argv[5:]
    at = core.index("-draw_mouse")
    del core[at : at + 2]
    skill = [a.replace("{display}", ":99") for a in SKILL_FFMPEG_ARGS]
    assert core == [*skill, TARGET]


def test_small_capture_and_audio_sources() -> None:
    small = ffmpeg_command(":3", TARGET, settings=EncoderSettings(size=Size(640, 360), framerate=15))
    assert small[small.index("-video_size") + 1] == "640x360"
    assert small[small.index("-framerate") + 1] == "15"

    looped = ffmpeg_command(":3", TARGET, audio=AudioFile(Path("/srv/voice.wav")))
    assert looped[looped.index("-stream_loop") : looped.index("/srv/voice.wav") + 1] == [
        "-stream_loop", "-1", "-re", "-thread_queue_size", "512", "-i", "/srv/voice.wav",
    ]  # fmt: skip
    assert "anullsrc=channel_layout=stereo:sample_rate=44100" not in looped
    assert looped[-8:] == ["-b:a", "128k", "-ar", "44100", "-ac", "2", "-f", "flv", TARGET][-8:]

    once = ffmpeg_command(":3", TARGET, audio=AudioFile(Path("/srv/v.wav"), loop=False))
    assert "-stream_loop" not in once

    pulse = ffmpeg_command(":3", TARGET, audio=PulseAudio("tts.monitor"))
    i = pulse.index("pulse")
    assert pulse[i - 3 : i + 3] == ["-thread_queue_size", "512", "-f", "pulse", "-i", "tts.monitor"]
    assert pulse.count("-i") == 2


def test_drawtext_overlay() -> None:
    overlay = TextOverlay(Path("/tmp/retake-golive-abc/overlay.txt"), Path("/usr/share/fonts/DejaVuSansMono.ttf"))
    assert drawtext_filter(overlay) == (
        "drawtext=fontfile=/usr/share/fonts/DejaVuSansMono.ttf:textfile=/tmp/retake-golive-abc/overlay.txt"
        ":reload=1:expansion=none:fontcolor=0x00ff00:fontsize=18:line_spacing=4:x=12:y=12"
    )
    argv = ffmpeg_command(":5", TARGET, overlay=overlay)
    assert argv[argv.index("-vf") + 1] == drawtext_filter(overlay)
    assert argv.index("-vf") < argv.index("-c:v")
    no_font = drawtext_filter(TextOverlay(Path("/tmp/o.txt")))
    assert no_font.startswith("drawtext=font=Monospace:textfile=/tmp/o.txt:")


@pytest.mark.parametrize("bad", ["/tmp/a:b/o.txt", "/tmp/it's/o.txt", "/tmp/a,b.txt", "/tmp/a b.txt", "/tmp/[x].txt"])
def test_drawtext_refuses_paths_it_cannot_quote(bad: str) -> None:
    with pytest.raises(ValueError):
        drawtext_filter(TextOverlay(Path(bad)))


def test_xvfb_and_xterm() -> None:
    assert xvfb_command(Size(1280, 720), displayfd=7) == [
        "Xvfb", "-displayfd", "7", "-screen", "0", "1280x720x24", "-ac", "-nolisten", "tcp",
    ]  # fmt: skip
    assert xterm_geometry(Size(1280, 720)) == "160x45+0+0"  # the skill's geometry
    assert xterm_geometry(Size(640, 360)) == "80x22+0+0"
    assert xterm_command(":4", Path("/tmp/stream.log"), Size(1280, 720)) == [
        "xterm", "-display", ":4", "-fa", "Monospace", "-fs", "12", "-bg", "black", "-fg", "#00ff00",
        "-geometry", "160x45+0+0", "-title", "retake", "-e", "tail", "-n", "200", "-F", "/tmp/stream.log",
    ]  # fmt: skip


def test_thumbnail_grabbers() -> None:
    assert thumbnail_command(":4", Size(640, 360), Path("/tmp/t.png")) == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "x11grab", "-draw_mouse", "0", "-video_size", "640x360", "-i", ":4",
        "-frames:v", "1", "-update", "1", "/tmp/t.png",
    ]  # fmt: skip
    overlay = TextOverlay(Path("/tmp/o.txt"))
    with_text = thumbnail_command(":4", Size(640, 360), Path("/tmp/t.png"), overlay)
    assert with_text[with_text.index("-vf") + 1] == drawtext_filter(overlay)
    assert scrot_command(Path("/tmp/t.png")) == ["scrot", "--overwrite", "/tmp/t.png"]


@pytest.mark.parametrize("text", ["1280", "1280x", "x720", "1281x720", "12x7200000", "axb"])
def test_size_parsing_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        Size.parse(text)


def test_size_parsing() -> None:
    assert Size.parse(" 640x360 ") == Size(640, 360)
    assert str(Size(1280, 720)) == "1280x720"

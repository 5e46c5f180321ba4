"""Command lines of the go-live runtime, built by pure functions (argv lists, never shell strings) and
golden-tested. The defaults are the skill's (retake skill 2.1.2, section 4 "FFmpeg Streaming"): Xvfb
1280x720x24 with ``-ac``; ffmpeg x11grab at 30 fps plus ``anullsrc``, libx264 veryfast/zerolatency at 1500k,
yuv420p, GOP 60, AAC 128k, FLV to ``$RTMP_URL/$RTMP_KEY``. One addition: ``-draw_mouse 0``, so the idle X
pointer does not sit in the middle of the picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
# Characters that would need the filtergraph's two levels of escaping in a drawtext option value; our paths
# never contain them (they come from mkdtemp), so a path that does is refused rather than escaped wrongly.
_FILTER_UNSAFE = set("\\':,;[]=% \t\n\"")


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        match = _SIZE.match(text.strip())
        if not match:
            raise ValueError(f"size must look like 1280x720 (got {text!r})")
        width, height = int(match.group(1)), int(match.group(2))
        if width % 2 or height % 2:
            raise ValueError("width and height must be even (yuv420p halves them)")
        return cls(width, height)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


DEFAULT_SIZE = Size(1280, 720)


@dataclass(frozen=True)
class SilentAudio:
    """The skill's ``anullsrc`` track: players will not render a stream without audio."""


@dataclass(frozen=True)
class AudioFile:
    """A file played in a loop at its own pace (``-re``), replacing ``anullsrc`` (the skill's "simple
    method" for TTS)."""

    path: Path
    loop: bool = True


@dataclass(frozen=True)
class PulseAudio:
    """A PulseAudio source, usually a virtual sink's monitor (``tts.monitor``): voice without restarts."""

    source: str


AudioSource = SilentAudio | AudioFile | PulseAudio


@dataclass(frozen=True)
class EncoderSettings:
    size: Size = DEFAULT_SIZE
    framerate: int = 30
    video_bitrate: str = "1500k"
    maxrate: str = "1500k"
    bufsize: str = "3000k"
    gop: int = 60
    audio_bitrate: str = "128k"


@dataclass(frozen=True)
class TextOverlay:
    """ffmpeg's drawtext reading ``textfile`` again on every frame: the text window when xterm is missing."""

    textfile: Path
    fontfile: Path | None = None
    fontsize: int = 18
    color: str = "0x00ff00"
    margin: int = 12
    line_spacing: int = 4


def xvfb_command(size: Size, displayfd: int, depth: int = 24) -> list[str]:
    """A virtual screen on a free display: Xvfb picks the number and writes it to ``displayfd`` once it accepts
    connections. ``-ac`` as the skill says (X clients connect without cookies); no TCP listener."""
    return ["Xvfb", "-displayfd", str(displayfd), "-screen", "0", f"{size}x{depth}", "-ac", "-nolisten", "tcp"]


def xterm_geometry(size: Size) -> str:
    """Columns and rows of a 12-point monospace xterm filling the screen: 160x45 at 1280x720, as the skill."""
    return f"{size.width // 8}x{size.height // 16}+0+0"


def xterm_command(display: str, textfile: Path, size: Size, font_size: int = 12) -> list[str]:
    """The skill's content window: green on black, following the file the agent writes to."""
    return [
        "xterm", "-display", display,
        "-fa", "Monospace", "-fs", str(font_size),
        "-bg", "black", "-fg", "#00ff00",
        "-geometry", xterm_geometry(size),
        "-title", "retake",
        "-e", "tail", "-n", "200", "-F", str(textfile),
    ]  # fmt: skip


def drawtext_filter(overlay: TextOverlay) -> str:
    for path in (overlay.textfile, overlay.fontfile):
        if path is not None and _FILTER_UNSAFE & set(str(path)):
            raise ValueError(f"path not usable in an ffmpeg filter (quote-like or separator characters): {path}")
    font = f"fontfile={overlay.fontfile}" if overlay.fontfile else "font=Monospace"
    options = [
        font,
        f"textfile={overlay.textfile}",
        "reload=1",  # re-read every frame: the runtime rewrites the file atomically
        "expansion=none",  # viewer text may contain %{...}: show it, never evaluate it
        f"fontcolor={overlay.color}",
        f"fontsize={overlay.fontsize}",
        f"line_spacing={overlay.line_spacing}",
        f"x={overlay.margin}",
        f"y={overlay.margin}",
    ]
    return "drawtext=" + ":".join(options)


def _audio_input(audio: AudioSource) -> list[str]:
    if isinstance(audio, AudioFile):
        loop = ["-stream_loop", "-1"] if audio.loop else []
        return [*loop, "-re", "-thread_queue_size", "512", "-i", str(audio.path)]
    if isinstance(audio, PulseAudio):
        return ["-thread_queue_size", "512", "-f", "pulse", "-i", audio.source]
    return ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100"]


def ffmpeg_command(
    display: str,
    target: str,
    *,
    settings: EncoderSettings = EncoderSettings(),
    audio: AudioSource = SilentAudio(),
    overlay: TextOverlay | None = None,
    loglevel: str = "error",
) -> list[str]:
    """The skill's encoder: capture ``display`` and push FLV to ``target`` (``$RTMP_URL/$RTMP_KEY``)."""
    s = settings
    video_filter = ["-vf", drawtext_filter(overlay)] if overlay else []
    resample = [] if isinstance(audio, SilentAudio) else ["-ar", "44100", "-ac", "2"]
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", loglevel,
        "-thread_queue_size", "512",
        "-f", "x11grab", "-draw_mouse", "0",
        "-video_size", str(s.size), "-framerate", str(s.framerate), "-i", display,
        *_audio_input(audio),
        *video_filter,
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", s.video_bitrate, "-maxrate", s.maxrate, "-bufsize", s.bufsize,
        "-pix_fmt", "yuv420p", "-g", str(s.gop),
        "-c:a", "aac", "-b:a", s.audio_bitrate, *resample,
        "-f", "flv", target,
    ]  # fmt: skip


def thumbnail_command(display: str, size: Size, out: Path, overlay: TextOverlay | None = None) -> list[str]:
    """One frame of the screen as PNG (what ``scrot`` does in the skill, with the ffmpeg already needed); with
    the drawtext overlay when the text is drawn by the encoder, so the thumbnail shows what viewers see."""
    video_filter = ["-vf", drawtext_filter(overlay)] if overlay else []
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "x11grab", "-draw_mouse", "0", "-video_size", str(size), "-i", display,
        *video_filter,
        "-frames:v", "1", "-update", "1", str(out),
    ]  # fmt: skip


def scrot_command(out: Path) -> list[str]:
    """The skill's thumbnail grabber, used when installed (``DISPLAY`` goes in the environment)."""
    return ["scrot", "--overwrite", str(out)]

"""The local media rig of a stream: Xvfb on a free display, the text window (xterm following the stream log,
or drawtext inside the encoder), ffmpeg pushing to the ingest, and screen grabs for thumbnails. Every child is
started here and ended here, by the PID it got (``processes.py``); the rig knows nothing of the platform API."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Literal

from retake.agent.commands import (
    AudioSource,
    EncoderSettings,
    Size,
    TextOverlay,
    ffmpeg_command,
    scrot_command,
    thumbnail_command,
    xterm_command,
)
from retake.agent.processes import Child, ProcessError, child_env, spawn, start_xvfb
from retake.agent.screen import Screen

TextWindowMode = Literal["xterm", "drawtext", "none"]


class CaptureError(ProcessError):
    """The screen could not be grabbed."""


class Stage:
    def __init__(
        self,
        work_dir: Path,
        screen: Screen,
        *,
        size: Size,
        framerate: int,
        audio: AudioSource,
        text_window: TextWindowMode,
    ) -> None:
        self.work_dir = work_dir
        self.screen = screen
        self.size = size
        self.framerate = framerate
        self.audio = audio
        self.text_window = text_window
        self.display: str | None = None
        self.xvfb: Child | None = None
        self.window: Child | None = None
        self.encoder: Child | None = None

    @property
    def overlay(self) -> TextOverlay | None:
        return self.screen.overlay if self.text_window == "drawtext" else None

    def display_alive(self) -> bool:
        return self.xvfb is not None and self.xvfb.alive()

    def start_display(self) -> None:
        if self.xvfb is not None:
            self.xvfb.stop()
        self.display = None
        self.xvfb, self.display = start_xvfb(self.size, log_path=self.work_dir / "xvfb.log")

    def start_window(self) -> None:
        if self.display is None:
            raise ProcessError("no display for the text window")
        if self.window is not None:
            self.window.stop()
            self.window = None
        if self.text_window == "xterm":
            argv = xterm_command(self.display, self.screen.log_path, self.size)
            self.window = spawn("xterm", argv, env=child_env(self.display), log_path=self.work_dir / "xterm.log")
        elif self.text_window == "drawtext":
            self.screen.refresh_overlay(force=True)

    def start_encoder(self, target: str) -> None:
        """ffmpeg with the skill's settings, pushing to ``target`` (``$RTMP_URL/$RTMP_KEY``)."""
        if self.display is None:
            raise ProcessError("no display to capture")
        self.stop_encoder()
        argv = ffmpeg_command(
            self.display,
            target,
            settings=EncoderSettings(size=self.size, framerate=self.framerate),
            audio=self.audio,
            overlay=self.overlay,
        )
        self.encoder = spawn("ffmpeg", argv, env=child_env(self.display), log_path=self.work_dir / "ffmpeg.log")

    def stop_encoder(self) -> str:
        """End the encoder (if any); returns the end of its log."""
        if self.encoder is None:
            return ""
        self.encoder.stop()
        return self.encoder.log_tail()

    def children(self) -> list[Child]:
        return [c for c in (self.encoder, self.window, self.xvfb) if c is not None]

    async def stop_all(self) -> None:
        """Encoder first (the stream ends cleanly), then the window, then the display."""
        for child in self.children():
            await asyncio.to_thread(child.stop)

    async def capture(self) -> bytes:
        """One PNG of what viewers see: scrot when installed (the skill's tool), else one ffmpeg x11grab frame;
        with drawtext, always ffmpeg with the same overlay as the encoder."""
        if self.display is None or not self.display_alive():
            raise CaptureError("no display to capture (Xvfb is restarting)")
        out = self.work_dir / "thumbnail.png"
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        overlay = self.overlay
        if overlay is None and shutil.which("scrot"):
            argv = scrot_command(out)
        else:
            argv = thumbnail_command(self.display, self.size, out, overlay)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=child_env(self.display),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode or not out.exists():
            raise CaptureError(f"screen capture failed: {err.decode(errors='replace').strip()[-200:]}")
        return out.read_bytes()

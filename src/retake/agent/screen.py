"""What viewers read on stream: a text file the agent (and the runtime) append to, shown by xterm following
it, or (without xterm) mirrored into the file ffmpeg's drawtext re-reads every frame."""

from __future__ import annotations

import contextlib
import os
import tempfile
import textwrap
import time
import unicodedata
from pathlib import Path

from retake.agent.commands import Size, TextOverlay

MAX_LINE = 500


def sanitize(text: str) -> str:
    """One line of printable text: viewer messages must not carry terminal escapes into xterm."""
    flat = " ".join(text.split())
    clean = "".join(ch for ch in flat if unicodedata.category(ch)[0] != "C")
    return clean[:MAX_LINE]


class Screen:
    def __init__(self, log_path: Path, overlay: TextOverlay | None = None, size: Size | None = None) -> None:
        self.log_path = log_path
        self.overlay = overlay
        self.size = size or Size(1280, 720)
        self._mirrored: tuple[float, int] | None = None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch(exist_ok=True)

    def write(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {sanitize(text)}\n"
        with contextlib.suppress(OSError), self.log_path.open("a", encoding="utf-8") as out:
            out.write(line)

    # -- drawtext mirror -----------------------------------------------------------------------------------

    def overlay_geometry(self) -> tuple[int, int]:
        """(columns, rows) of text that fit the screen at the overlay's font size."""
        if self.overlay is None:
            return (0, 0)
        o = self.overlay
        cols = max(10, int((self.size.width - 2 * o.margin) / (o.fontsize * 0.62)))
        rows = max(1, (self.size.height - 2 * o.margin) // (o.fontsize + o.line_spacing))
        return cols, rows

    def overlay_text(self) -> str:
        cols, rows = self.overlay_geometry()
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-rows * 2 :]
        except OSError:
            lines = []
        wrapped: list[str] = []
        for line in lines:
            wrapped.extend(textwrap.wrap(line, cols) or [""])
        return "\n".join(wrapped[-rows:]) + "\n"

    def refresh_overlay(self, force: bool = False) -> bool:
        """Rewrite the overlay file when the log changed; atomically, so drawtext never reads half a file."""
        if self.overlay is None:
            return False
        try:
            st = self.log_path.stat()
            stamp = (st.st_mtime, st.st_size)
        except OSError:
            stamp = (0.0, 0)
        if not force and stamp == self._mirrored:
            return False
        target = self.overlay.textfile
        fd, tmp = tempfile.mkstemp(prefix=".overlay.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.overlay_text())
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return False
        self._mirrored = stamp
        return True


def monospace_font() -> Path | None:
    """A monospace TrueType file for drawtext (Debian's fontconfig pulls in DejaVu or Liberation)."""
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
    ):
        if Path(candidate).is_file():
            return Path(candidate)
    return None

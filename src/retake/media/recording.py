"""Segment listeners and the VOD recorder fed by :class:`retake.media.hls.HlsPackager`.

A recording is the live stream's init and media segments written as files, plus a VOD media playlist
written at the end (``EXT-X-PLAYLIST-TYPE:VOD``, ``EXT-X-ENDLIST`` [RFC 8216 §4.3.3.5, §4.3.3.4]).
Writes are small synchronous file writes (one ≈2 s segment at a time); callers that must not block
their event loop can run the listener methods in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .playlist import format_duration, format_pdt


@dataclass(frozen=True, slots=True)
class FinishedSegment:
    """A complete media segment as the packager announces it."""

    msn: int
    name: str
    data: bytes
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float  # POSIX seconds


class SegmentListener(Protocol):
    def on_init(self, name: str, data: bytes) -> None: ...

    def on_segment(self, segment: FinishedSegment) -> None: ...

    def on_end(self) -> None: ...


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float


class HlsRecorder:
    """Writes every init and finished segment into ``directory`` and, at the end, a VOD playlist."""

    def __init__(self, directory: Path | str, playlist_name: str = "index.m3u8") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.playlist_name = playlist_name
        self._entries: list[_Entry] = []
        self._finished = False

    @property
    def playlist_path(self) -> Path:
        return self.directory / self.playlist_name

    @property
    def duration(self) -> float:
        return sum(e.duration for e in self._entries)

    @property
    def segment_count(self) -> int:
        return len(self._entries)

    def on_init(self, name: str, data: bytes) -> None:
        _write_atomic(self.directory / name, data)

    def on_segment(self, segment: FinishedSegment) -> None:
        if self._finished:
            return
        _write_atomic(self.directory / segment.name, segment.data)
        self._entries.append(
            _Entry(
                segment.name,
                segment.duration,
                segment.init_name,
                segment.discontinuity,
                segment.program_date_time,
            )
        )

    def on_end(self) -> None:
        self.finish()

    def finish(self) -> Path | None:
        """Write the VOD playlist (idempotent); None when nothing was recorded."""
        self._finished = True
        if not self._entries:
            return None
        _write_atomic(self.playlist_path, render_vod_playlist(self._entries).encode("utf-8"))
        return self.playlist_path


def render_vod_playlist(entries: list[_Entry]) -> str:
    # TARGETDURATION = the longest EXTINF rounded to the nearest integer [RFC 8216 §4.3.3.1].
    target = max(1, max(int(e.duration + 0.5) for e in entries))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",  # EXT-X-MAP with fMP4 [RFC 8216 §4.3.2.5, §7]
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    current_init = None
    for index, entry in enumerate(entries):
        if entry.init_name != current_init:
            if index > 0:
                lines.append("#EXT-X-DISCONTINUITY")  # codec parameters changed [RFC 8216 §4.3.2.3]
            lines.append(f'#EXT-X-MAP:URI="{entry.init_name}"')
            current_init = entry.init_name
        elif entry.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(entry.program_date_time)}")
        lines.append(f"#EXTINF:{format_duration(entry.duration)},")
        lines.append(entry.name)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"

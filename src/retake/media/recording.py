"""Segment listeners and the VOD recorder fed by :class:`retake.media.hls.HlsPackager`.

A recording is the live stream's init segments as files and its media segments back to back in one media
file (``media.m4s``), plus a VOD media playlist written at the end that lists each segment as a byte range
of it (``EXT-X-BYTERANGE`` [RFC 8216 §4.3.2.2], ``EXT-X-PLAYLIST-TYPE:VOD``, ``EXT-X-ENDLIST``
[§4.3.3.5, §4.3.3.4]). One file per segment cost the writer an ext4 inode allocation (``openat`` with
O_CREAT, ~0.4 ms) every two seconds per stream: ~47 % of its time at 50 streams. Recordings made with one
file per segment (journal lines without a file name) are still finished and played as they are.

Without a :class:`FileWriter` the writes are synchronous. With one, they go to its single thread in order, so
a recorder fed from an event loop never blocks it on the disk: creating and writing a ≈400 KB segment file
took up to milliseconds on the loop, for every stream every two seconds.

Each part is written to the media file as it is made, followed by a journal line (media/journal.py), so
a process killed mid-stream leaves a recording that can be finished from the disk to within one part.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import journal
from .journal import RecordedSegment
from .playlist import format_duration, format_pdt
from .writer import Data, FileWriter, _Job, _perform, _size, _write_atomic

__all__ = ["Data", "FileWriter", "FinishedPart", "FinishedSegment", "HlsRecorder", "SegmentListener", "SegmentStore"]

log = logging.getLogger(__name__)

MEDIA_NAME = "media.m4s"  # a recording's segments back to back (after the recorder's prefix, if any)


@dataclass(frozen=True, slots=True)
class FinishedSegment:
    """A complete media segment as the packager announces it."""

    msn: int
    name: str
    # The segment's bytes in pieces (styp, then each part): a ≈400 KB segment is never joined just to be
    # written to a file (the join took ~0.2 ms per segment per stream).
    chunks: tuple[bytes, ...]
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float  # POSIX seconds

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def size(self) -> int:
        return sum(map(len, self.chunks))


@dataclass(frozen=True, slots=True)
class FinishedPart:
    """A part of the open segment, announced as soon as it is made (before the segment completes)."""

    segment_name: str
    index: int  # 0 = the segment's first part; its chunks start with the segment's styp
    chunks: tuple[bytes, ...]
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float  # of the segment

    @property
    def size(self) -> int:
        return sum(map(len, self.chunks))


class SegmentListener(Protocol):
    def on_init(self, name: str, data: bytes) -> None: ...

    def on_part(self, part: FinishedPart) -> None: ...

    def on_segment(self, segment: FinishedSegment) -> None: ...

    def on_end(self) -> None: ...


class SegmentStore(Protocol):
    """Where a packager finds its older complete segments once it no longer holds their bytes."""

    def stored(self, name: str) -> tuple[str, int, int] | None:
        """(file path, offset, size) of the packager's segment ``name`` once all its bytes are written."""
        ...


class HlsRecorder:
    """Writes every init into ``directory``, every part and segment into its media file, with a journal, and at
    the end a VOD playlist. It is also the packager's :class:`SegmentStore` for segments already written.

    A folder that already holds a recording (from a process that died, see media/journal.py) is continued:
    its journaled segments come first, the new files get a fresh name prefix, and a discontinuity separates
    the two. With a ``writer`` the files are written on its thread; :meth:`finish` waits for them before it
    writes the playlist, so a finished recording is complete on disk.
    """

    def __init__(
        self, directory: Path | str, playlist_name: str = "index.m3u8", writer: FileWriter | None = None
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.playlist_name = playlist_name
        self._writer = writer
        self._journal = self.directory / journal.JOURNAL_NAME
        self._entries: list[RecordedSegment] = journal.load(self.directory)
        self._prefix = journal.next_prefix(self.directory)
        # After the segments of an earlier process the encoder's timeline starts over: the first new segment
        # says so with EXT-X-DISCONTINUITY.
        self._resume_break = bool(self._entries)
        self._open: RecordedSegment | None = None  # the segment whose parts are being written, so far
        self._open_parts = 0
        self._media_name = self._prefix + MEDIA_NAME
        self._media = self.directory / self._media_name
        self._media_str = str(self._media)
        self._end = 0  # bytes given to the writer for the media file so far (the next segment's offset)
        # Written by the writer's thread, read by the packager's: a dict store and lookup are atomic under the
        # GIL. The packager's names (no prefix) -> (offset, size); only the latest few are kept.
        self._written: dict[str, tuple[int, int]] = {}
        self._part_failed = False  # a part of the segment being written failed: that segment is not servable
        self._on_part_written = self._part_written  # bound once: it goes with every part
        self._finished = False

    @property
    def playlist_path(self) -> Path:
        return self.directory / self.playlist_name

    @property
    def prefix(self) -> str:
        """What this recorder puts before the packager's names ("" unless it continues a recording)."""
        return self._prefix

    @property
    def duration(self) -> float:
        return sum(e.duration for e in self._entries)

    def on_init(self, name: str, data: bytes) -> None:
        self._write(self.directory / (self._prefix + name), data)

    def on_part(self, part: FinishedPart) -> None:
        if self._finished:
            return
        name = self._prefix + part.segment_name
        if part.index == 0:
            self._open_parts = 0
            self._open = RecordedSegment(
                name, 0.0, self._prefix + part.init_name, self._discontinuity(part.discontinuity),
                part.program_date_time, 0, self._media_name, self._end,
            )  # fmt: skip
        elif self._open is None or self._open.name != name or part.index != self._open_parts:
            self._open = None  # joined mid-segment: on_segment writes the whole segment
            return
        opened = self._open
        self._open = RecordedSegment(
            name, opened.duration + part.duration, opened.init_name, opened.discontinuity,
            opened.program_date_time, opened.size + part.size, opened.file, opened.offset,
        )  # fmt: skip
        self._open_parts += 1
        line = journal.segment_line(self._open, complete=False)
        self._write(self._media, part.chunks, line=line, at=self._end, done=self._on_part_written)
        self._end += part.size

    def on_segment(self, segment: FinishedSegment) -> None:
        if self._finished:
            return
        name = self._prefix + segment.name
        opened, self._open = self._open, None
        whole = opened is None or opened.name != name or opened.size != segment.size
        offset = self._end if whole or opened is None else opened.offset
        entry = RecordedSegment(
            name,
            segment.duration,
            self._prefix + segment.init_name,
            self._discontinuity(segment.discontinuity),
            segment.program_date_time,
            segment.size,
            self._media_name,
            offset,
        )
        line = journal.segment_line(entry, complete=True)
        done = functools.partial(self._segment_written, segment.name, offset, segment.size)
        if whole:
            self._write(self._media, segment.chunks, line=line, at=offset, done=done)
            self._end += segment.size
        else:  # its parts are all in the file already
            self._write(self._journal, b"", append=True, line=line, done=done)
        self._entries.append(entry)
        self._resume_break = False

    def _part_written(self, ok: bool) -> None:
        if not ok:
            self._part_failed = True

    def _segment_written(self, name: str, offset: int, size: int, ok: bool) -> None:
        # Jobs run in order: a part failed since the last segment was one of this segment's (or of one joined
        # mid-way, whose bytes a whole write made unused).
        failed, self._part_failed = self._part_failed, False
        if ok and not failed:
            self._written[name] = (offset, size)
            if len(self._written) > 32:  # the packager asks only about its listed and retained segments
                del self._written[next(iter(self._written))]

    def stored(self, name: str) -> tuple[str, int, int] | None:
        found = self._written.get(name)
        return None if found is None else (self._media_str, found[0], found[1])

    def _discontinuity(self, announced: bool) -> bool:
        return announced or self._resume_break

    def on_end(self) -> None:
        self.finish()

    def _write(
        self,
        path: Path,
        data: Data,
        *,
        append: bool = False,
        line: bytes | None = None,
        at: int = -1,
        done: Callable[[bool], None] | None = None,
    ) -> None:
        then = (self._journal, line) if line is not None else None
        if self._writer is not None:
            self._writer.submit(path, data, append=append, journal=then, at=at, done=done)
        else:
            _perform(_Job(path, data, _size(data), append, then, at, done))

    def finish(self) -> Path | None:
        """Write the VOD playlist (idempotent); None when nothing was recorded."""
        self._finished = True
        if self._writer is not None and not self._writer.flush():
            log.warning("recording %s: segment writes still pending after 10 s", self.directory)
        if not self._entries:
            return None
        _write_atomic(self.directory / journal.SUMMARY_NAME, journal.summary(self._entries))
        _write_atomic(self.playlist_path, render_vod_playlist(self._entries).encode("utf-8"))
        return self.playlist_path


def render_vod_playlist(entries: list[RecordedSegment]) -> str:
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
        if entry.file:  # a range of the media file [RFC 8216 §4.3.2.2]
            lines.append(f"#EXT-X-BYTERANGE:{entry.size}@{entry.offset}")
        lines.append(entry.stored_name)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"

"""Segment listeners and the VOD recorder fed by :class:`retake.media.hls.HlsPackager`.

A recording is the live stream's init and media segments written as files, plus a VOD media playlist
written at the end (``EXT-X-PLAYLIST-TYPE:VOD``, ``EXT-X-ENDLIST`` [RFC 8216 §4.3.3.5, §4.3.3.4]).
Without a :class:`FileWriter` the writes are synchronous. With one, they go to its single thread in order, so
a recorder fed from an event loop never blocks it on the disk: creating and writing a ≈400 KB segment file
took up to milliseconds on the loop, for every stream every two seconds.

Each part is appended to its segment's file as it is made, followed by a journal line (media/journal.py), so
a process killed mid-stream leaves a recording that can be finished from the disk to within one part.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from . import journal
from .journal import RecordedSegment
from .playlist import format_duration, format_pdt


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


log = logging.getLogger(__name__)


Data = bytes | Sequence[bytes]  # one piece, or pieces written back to back


def _write_atomic(path: Path, data: Data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file:
        if isinstance(data, bytes):
            file.write(data)
        else:
            file.writelines(data)
    os.replace(tmp, path)


def _append(path: Path, data: Data) -> None:
    with path.open("ab") as file:
        if isinstance(data, bytes):
            file.write(data)
        else:
            file.writelines(data)


def _size(data: Data) -> int:
    return len(data) if isinstance(data, bytes) else sum(map(len, data))


@dataclass(frozen=True, slots=True)
class _Job:
    path: Path
    data: Data
    size: int
    append: bool  # append to the file (a part of the open segment) rather than replace it atomically
    journal: tuple[Path, bytes] | None  # a line appended to this file once the data is written


class _AppendFiles:
    """Files the writer thread keeps open for appending: a recording's journal and its open segment get a line
    and a part every ~0.5 s, and opening and closing both each time cost the writer more than the writes (an
    ext4 open, a close, and the dentry lookups). Unbuffered: every write is in the kernel when it returns, as
    after a close, so a killed process leaves the same files. At most two per folder (the journal and the
    segment being appended) and ``limit`` in all; closed on ``close_all`` (every flush)."""

    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._open: dict[Path, BinaryIO] = {}  # oldest first

    def append(self, path: Path, data: Data) -> None:
        file = self._open.pop(path, None)
        if file is None:
            file = path.open("ab", buffering=0)
            self._evict(path.parent)
        self._open[path] = file
        if isinstance(data, bytes):
            file.write(data)
        else:
            file.writelines(data)

    def forget(self, path: Path) -> None:
        """``path`` is about to be replaced or removed: close its handle."""
        file = self._open.pop(path, None)
        if file is not None:
            file.close()

    def _evict(self, folder: Path) -> None:
        same = [p for p in self._open if p.parent == folder]
        for old in same[: max(0, len(same) - 1)]:  # the new one makes two
            self.forget(old)
        while len(self._open) >= self._limit:
            self.forget(next(iter(self._open)))

    def close_all(self) -> None:
        for path in list(self._open):
            with contextlib.suppress(OSError):
                self.forget(path)


def _perform(job: _Job, files: _AppendFiles | None = None) -> None:
    try:
        if job.append:
            if files is None:
                _append(job.path, job.data)
            else:
                files.append(job.path, job.data)
        elif job.data or job.journal is None:
            if files is not None:
                files.forget(job.path)
            _write_atomic(job.path, job.data)
    except OSError:
        log.exception("could not write %s", job.path)
        if files is not None:
            files.forget(job.path)
        return  # and no journal line: the journal names only what is on disk
    if job.journal is not None:
        path, line = job.journal
        try:
            if files is None:
                _append(path, line)
            else:
                files.append(path, line)
        except OSError:
            log.exception("could not write %s", path)
            if files is not None:
                files.forget(path)


class FileWriter:
    """Writes files on one background thread, in submission order, for any number of recorders.

    Memory stays bounded: when more than ``max_pending_bytes`` wait (a disk slower than the streams), the
    caller waits for the backlog and then writes its submission itself, which slows the caller down rather
    than queueing without end, and keeps the order (appends to one file must not overtake each other). A
    failed write is logged and skipped (the recording misses that file; the live stream goes on).
    """

    def __init__(self, max_pending_bytes: int = 64 * 1024 * 1024, batch_seconds: float = 0.05) -> None:
        self.max_pending_bytes = max_pending_bytes
        # After a batch the thread sleeps this long before it looks again, so that every recording's parts of
        # that moment go in one wake-up: a put into the queue wakes the thread only while it waits in get(),
        # which was once per part per stream (a futex wake on the event loop each time).
        self.batch_seconds = batch_seconds
        self._files = _AppendFiles()
        self._jobs: queue.SimpleQueue[_Job | threading.Event] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def submit(
        self, path: Path, data: Data, *, append: bool = False, journal: tuple[Path, bytes] | None = None
    ) -> None:
        """Write ``data`` to ``path`` soon: atomically (a reader never sees half a file), or appended; then
        append ``journal``'s line to its file, if given."""
        size = _size(data)
        job = _Job(path, data, size, append, journal)
        with self._lock:
            queued = self._pending + size <= self.max_pending_bytes
            if queued:
                self._pending += size
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="retake-file-writer", daemon=True)
                    self._thread.start()
        if queued:
            self._jobs.put(job)
            return
        if not self.flush(timeout=60):
            log.warning("file writer backlog still pending after 60 s; writing %s out of order", path)
        _perform(job)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; ``False`` if that took longer than ``timeout``."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._jobs.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            job: _Job | threading.Event | None = self._jobs.get()
            while job is not None:
                self._do(job)
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    job = None
            if self.batch_seconds > 0:
                time.sleep(self.batch_seconds)

    def _do(self, job: _Job | threading.Event) -> None:
        if isinstance(job, threading.Event):
            self._files.close_all()  # whoever flushed may remove, rename or read the files next
            job.set()
            return
        try:
            _perform(job, self._files)
        finally:
            with self._lock:
                self._pending -= job.size


class HlsRecorder:
    """Writes every init, part and segment into ``directory`` with a journal, and at the end a VOD playlist.

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
        self._open: RecordedSegment | None = None  # the segment whose parts are being appended, so far
        self._open_parts = 0
        self._open_path = self.directory  # its file (a Path join per part showed in profiles)
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
            self._open_path = self.directory / name
            self._open = RecordedSegment(
                name, 0.0, self._prefix + part.init_name, self._discontinuity(part.discontinuity),
                part.program_date_time,
            )  # fmt: skip
        elif self._open is None or self._open.name != name or part.index != self._open_parts:
            self._open = None  # joined mid-segment: on_segment writes the whole file
            return
        opened = self._open
        self._open = RecordedSegment(
            name, opened.duration + part.duration, opened.init_name, opened.discontinuity,
            opened.program_date_time, opened.size + part.size,
        )  # fmt: skip
        self._open_parts += 1
        line = journal.segment_line(self._open, complete=False)
        self._write(self._open_path, part.chunks, append=part.index > 0, line=line)

    def on_segment(self, segment: FinishedSegment) -> None:
        if self._finished:
            return
        name = self._prefix + segment.name
        opened, self._open = self._open, None
        entry = RecordedSegment(
            name,
            segment.duration,
            self._prefix + segment.init_name,
            self._discontinuity(segment.discontinuity),
            segment.program_date_time,
            segment.size,
        )
        line = journal.segment_line(entry, complete=True)
        if opened is not None and opened.name == name and opened.size == segment.size:
            self._write(self._journal, b"", append=True, line=line)  # its parts are all in the file already
        else:
            self._write(self.directory / name, segment.chunks, line=line)
        self._entries.append(entry)
        self._resume_break = False

    def _discontinuity(self, announced: bool) -> bool:
        return announced or self._resume_break

    def on_end(self) -> None:
        self.finish()

    def _write(self, path: Path, data: Data, *, append: bool = False, line: bytes | None = None) -> None:
        then = (self._journal, line) if line is not None else None
        if self._writer is not None:
            self._writer.submit(path, data, append=append, journal=then)
        else:
            _perform(_Job(path, data, _size(data), append, then))

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
        lines.append(entry.name)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"

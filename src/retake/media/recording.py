"""Segment listeners and the VOD recorder fed by :class:`retake.media.hls.HlsPackager`.

A recording is the live stream's init and media segments written as files, plus a VOD media playlist
written at the end (``EXT-X-PLAYLIST-TYPE:VOD``, ``EXT-X-ENDLIST`` [RFC 8216 §4.3.3.5, §4.3.3.4]).
Without a :class:`FileWriter` the writes are synchronous (one ≈2 s segment at a time). With one, they go to
its single thread in order, so a recorder fed from an event loop never blocks it on the disk: creating and
writing a ≈400 KB segment file took up to milliseconds on the loop, for every stream every two seconds.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


class SegmentListener(Protocol):
    def on_init(self, name: str, data: bytes) -> None: ...

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


def _size(data: Data) -> int:
    return len(data) if isinstance(data, bytes) else sum(map(len, data))


class FileWriter:
    """Writes files on one background thread, in submission order, for any number of recorders.

    Memory stays bounded: when more than ``max_pending_bytes`` wait (a disk slower than the streams), a
    submission is written at once by the caller instead, which slows the caller down rather than queueing
    without end. A failed write is logged and skipped (the recording misses that file; the live stream goes
    on).
    """

    def __init__(self, max_pending_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_pending_bytes = max_pending_bytes
        self._jobs: queue.SimpleQueue[tuple[Path, Data, int] | threading.Event] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def submit(self, path: Path, data: Data) -> None:
        """Write ``data`` to ``path`` (atomically: a reader never sees half a file) soon."""
        size = _size(data)
        with self._lock:
            queued = self._pending + size <= self.max_pending_bytes
            if queued:
                self._pending += size
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="retake-file-writer", daemon=True)
                    self._thread.start()
        if queued:
            self._jobs.put((path, data, size))
        else:
            _write_atomic(path, data)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; ``False`` if that took longer than ``timeout``."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._jobs.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if isinstance(job, threading.Event):
                job.set()
                continue
            path, data, size = job
            try:
                _write_atomic(path, data)
            except OSError:
                log.exception("could not write %s", path)
            finally:
                with self._lock:
                    self._pending -= size


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float


class HlsRecorder:
    """Writes every init and finished segment into ``directory`` and, at the end, a VOD playlist.

    With a ``writer`` the init and segment files are written on its thread; :meth:`finish` waits for them
    before it writes the playlist, so a finished recording is complete on disk.
    """

    def __init__(
        self, directory: Path | str, playlist_name: str = "index.m3u8", writer: FileWriter | None = None
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.playlist_name = playlist_name
        self._writer = writer
        self._entries: list[_Entry] = []
        self._finished = False

    @property
    def playlist_path(self) -> Path:
        return self.directory / self.playlist_name

    @property
    def duration(self) -> float:
        return sum(e.duration for e in self._entries)

    def on_init(self, name: str, data: bytes) -> None:
        self._write(self.directory / name, data)

    def on_segment(self, segment: FinishedSegment) -> None:
        if self._finished:
            return
        self._write(self.directory / segment.name, segment.chunks)
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

    def _write(self, path: Path, data: Data) -> None:
        if self._writer is not None:
            self._writer.submit(path, data)
        else:
            _write_atomic(path, data)

    def finish(self) -> Path | None:
        """Write the VOD playlist (idempotent); None when nothing was recorded."""
        self._finished = True
        if self._writer is not None and not self._writer.flush():
            log.warning("recording %s: segment writes still pending after 10 s", self.directory)
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

"""The recorder's file writer: every recording's writes on one background thread, in order.

Split from media/recording.py (which stays what the packager calls on the event loop): this runs on its own
thread, and recording.py had grown past the project's module size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


def _write_at(fd: int, data: Data, offset: int) -> None:
    chunks = [data] if isinstance(data, bytes) else list(data)
    total = sum(map(len, chunks))
    written = os.pwritev(fd, chunks, offset)
    if written < total:  # a short write (a signal, a nearly full disk): the rest in one piece, or OSError
        rest = memoryview(b"".join(chunks))[written:]
        while rest:
            count = os.pwrite(fd, rest, offset + written)
            rest, written = rest[count:], written + count


def _write_file_at(path: Path, data: Data, offset: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        _write_at(fd, data, offset)
    finally:
        os.close(fd)


def _size(data: Data) -> int:
    return len(data) if isinstance(data, bytes) else sum(map(len, data))


@dataclass(frozen=True, slots=True)
class _Job:
    path: Path
    data: Data
    size: int
    append: bool  # append to the file (a part of the open segment) rather than replace it atomically
    journal: tuple[Path, bytes] | None  # a line appended to this file once the data is written
    # >= 0: write the data at this offset of the file (the recording's media file), created if missing. An
    # explicit offset rather than an append, so a failed write cannot shift where later segments land.
    at: int = -1
    done: Callable[[bool], None] | None = None  # told, on the writer's thread, whether the data was written


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
        file = self._file(path, append=True)
        if isinstance(data, bytes):
            file.write(data)
        else:
            file.writelines(data)

    def write_at(self, path: Path, data: Data, offset: int) -> None:
        _write_at(self._file(path, append=False).fileno(), data, offset)

    def _file(self, path: Path, *, append: bool) -> BinaryIO:
        file = self._open.pop(path, None)
        if file is None:
            if append:
                file = path.open("ab", buffering=0)
            else:  # no O_APPEND: pwrite on an O_APPEND file appends whatever the offset (Linux)
                file = open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), "wb", buffering=0)  # noqa: SIM115
            self._evict(path.parent)
        self._open[path] = file
        return file

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
        if job.at >= 0:
            if files is None:
                _write_file_at(job.path, job.data, job.at)
            else:
                files.write_at(job.path, job.data, job.at)
        elif job.append:
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
        if job.done is not None:
            job.done(False)
        return  # and no journal line: the journal names only what is on disk
    if job.done is not None:
        job.done(True)
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
        self,
        path: Path,
        data: Data,
        *,
        append: bool = False,
        journal: tuple[Path, bytes] | None = None,
        at: int = -1,
        done: Callable[[bool], None] | None = None,
    ) -> None:
        """Write ``data`` to ``path`` soon: atomically (a reader never sees half a file), appended, or at offset
        ``at``; then tell ``done`` whether it was written and append ``journal``'s line to its file, if given."""
        size = _size(data)
        job = _Job(path, data, size, append, journal, at, done)
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

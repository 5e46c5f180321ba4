"""The recorder's background FileWriter: in-order writes off the caller's thread, a bounded backlog, flush before
the VOD playlist, and a failed write that costs only that file."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from retake.media import journal
from retake.media import writer as writer_module
from retake.media.hls import HlsPackager
from retake.media.recording import FileWriter, HlsRecorder
from tests.media.conftest import MessageFactory


def test_writes_land_after_flush(tmp_path: Path) -> None:
    writer = FileWriter()
    for i in range(20):
        writer.submit(tmp_path / f"f{i}", bytes([i]) * (i + 1))
    assert writer.flush()
    assert writer.pending_bytes == 0
    assert [(tmp_path / f"f{i}").read_bytes() for i in range(20)] == [bytes([i]) * (i + 1) for i in range(20)]
    assert not list(tmp_path.glob("*.tmp"))


def test_flush_without_writes_returns_at_once() -> None:
    assert FileWriter().flush(timeout=0)


def test_backlog_over_the_limit_is_written_by_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = FileWriter(max_pending_bytes=10)
    writers: list[int] = []
    real = writer_module._write_atomic

    def spy(path: Path, data: writer_module.Data) -> None:
        writers.append(threading.get_ident())
        real(path, data)

    monkeypatch.setattr(writer_module, "_write_atomic", spy)
    writer.submit(tmp_path / "big", (b"x" * 6, b"y" * 5))  # more than the whole backlog may hold
    assert writers == [threading.get_ident()]
    assert (tmp_path / "big").read_bytes() == b"x" * 6 + b"y" * 5
    assert writer.pending_bytes == 0


def test_a_failed_write_is_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = FileWriter()
    writer.submit(tmp_path / "missing-folder" / "a", b"a")
    writer.submit(tmp_path / "b", b"b")
    assert writer.flush()
    assert (tmp_path / "b").read_bytes() == b"b"
    assert "could not write" in caplog.text
    assert writer.pending_bytes == 0


def test_recorder_with_a_writer_is_complete_when_finished(tmp_path: Path, messages: MessageFactory) -> None:
    packager = HlsPackager(clock=lambda: 0.0)
    recorder = HlsRecorder(tmp_path / "rec", writer=FileWriter())
    packager.add_listener(recorder)
    for message in messages(6000):
        packager.push(message)
    packager.end()  # ends the recorder: waits for its files, then writes the playlist
    text = recorder.playlist_path.read_text()
    ranges = [
        (int(n), int(o)) for n, o in re.findall(r"^#EXT-X-BYTERANGE:(\d+)@(\d+)\nmedia\.m4s$", text, re.MULTILINE)
    ]
    assert [e.name for e in journal.load(tmp_path / "rec")] == ["seg0.m4s", "seg1.m4s", "seg2.m4s"]
    assert (tmp_path / "rec" / "init0.mp4").read_bytes() == packager.get("init0.mp4")
    media = (tmp_path / "rec" / "media.m4s").read_bytes()
    assert [media[o : o + n] for n, o in ranges] == [packager.get(f"seg{i}.m4s") for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == [
        "index.m3u8", "init0.mp4", "journal.jsonl", "media.m4s", "recording.json"
    ]  # fmt: skip


def _open_in(folder: Path) -> list[str]:
    """Files under ``folder`` this process holds open."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def test_appends_are_on_disk_at_once_with_at_most_two_files_open_per_folder(tmp_path: Path) -> None:
    writer = FileWriter(batch_seconds=0.01)
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    for segment in range(3):
        for part in range(4):
            for folder in folders:
                line = (folder / "journal.jsonl", f"{segment}.{part}\n".encode())
                writer.submit(folder / f"seg{segment}.m4s", bytes([part]) * 10, append=part > 0, journal=line)
    deadline = threading.Event()
    for _ in range(200):  # written, not flushed: what a clip or a viewer reads meanwhile is complete
        if writer.pending_bytes == 0:
            break
        deadline.wait(0.01)
    for folder in folders:
        assert (folder / "seg2.m4s").read_bytes() == b"".join(bytes([p]) * 10 for p in range(4))
        assert (folder / "journal.jsonl").read_text().split() == [f"{s}.{p}" for s in range(3) for p in range(4)]
        assert len(_open_in(folder)) <= 2  # the journal and the segment being appended
    assert writer.flush()
    assert _open_in(tmp_path) == []  # a flush closes them: the files may be removed or replaced next

"""The recording journal (issue 12 item 5): a recorder whose process dies mid-stream leaves, on disk, every
finished part and a journal naming them; a later recorder finishes that recording or continues it under new
names with a discontinuity, never rewriting a file of the first part. Segments are byte ranges of one media
file per recorder (issue 14); recordings of the older layout (one file per segment) still finish."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from retake.media import journal
from retake.media import writer as writer_module
from retake.media.hls import HlsPackager
from retake.media.recording import FileWriter, HlsRecorder
from retake.media.stream import LiveStream
from tests.media.conftest import MessageFactory, read_flv_messages, run_tool


def _record(folder: Path, messages: MessageFactory, ms: int, writer: FileWriter | None = None) -> HlsPackager:
    """Record ``ms`` of synthetic media into ``folder`` and stop there, as a killed process does: no end."""
    packager = HlsPackager(clock=lambda: 1000.0)
    packager.add_listener(HlsRecorder(folder, writer=writer))
    for message in messages(ms):
        packager.push(message)
    return packager


def _stored(folder: Path, entry: journal.RecordedSegment) -> bytes:
    with (folder / entry.stored_name).open("rb") as file:
        file.seek(entry.offset)
        return file.read(entry.size)


def _listed(text: str) -> list[tuple[str, int, int]]:
    """(URI, size, offset) of every segment a VOD playlist lists as a byte range."""
    found = re.findall(r"^#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)$", text, re.MULTILINE)
    return [(uri, int(size), int(offset)) for size, offset, uri in found]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir() if p.suffix in (".mp4", ".m4s")}


def test_journal_names_finished_segments_and_the_open_one_part_by_part(
    tmp_path: Path, messages: MessageFactory
) -> None:
    writer = FileWriter()
    packager = _record(tmp_path, messages, 5200, writer)  # 2 s + 2 s complete, then parts of the third
    assert writer.flush()
    entries = journal.load(tmp_path)
    assert [e.name for e in entries] == ["seg0.m4s", "seg1.m4s", "seg2.m4s"]
    assert [e.duration for e in entries[:2]] == pytest.approx([2.0, 2.0], abs=0.03)
    # The open segment: its complete parts (1/3 s each) are on disk and journaled, within a part of the end.
    assert 0.5 <= entries[2].duration <= 1.2
    assert {e.file for e in entries} == {"media.m4s"} and not (tmp_path / "seg0.m4s").exists()
    assert [e.offset for e in entries] == [0, entries[0].size, entries[0].size + entries[1].size]
    assert (tmp_path / "media.m4s").stat().st_size == entries[2].offset + entries[2].size
    for entry in entries[:2]:
        assert _stored(tmp_path, entry) == packager.get(entry.name)
    lines = (tmp_path / journal.JOURNAL_NAME).read_text().splitlines()
    assert sum(1 for line in lines if '"s":' in line) == 2  # one line per finished segment, after its file


def test_killed_recording_is_finished_from_the_disk(tmp_path: Path, messages: MessageFactory) -> None:
    _record(tmp_path, messages, 5200)
    assert not (tmp_path / "index.m3u8").exists()  # the process "died" before any playlist
    playlist = HlsRecorder(tmp_path).finish()
    assert playlist is not None
    text = playlist.read_text()
    entries = journal.load(tmp_path)
    assert _listed(text) == [("media.m4s", e.size, e.offset) for e in entries] and len(entries) == 3
    assert text.endswith("#EXT-X-ENDLIST\n") and "#EXT-X-DISCONTINUITY" not in text
    total = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text))
    assert total == pytest.approx(5.2, abs=0.7)  # all but the part being made at the kill
    assert json.loads((tmp_path / journal.SUMMARY_NAME).read_text())["duration_seconds"] == pytest.approx(total)
    assert journal.recorded_seconds(str(tmp_path)) == pytest.approx(total)


def test_half_written_tail_is_cut_and_a_torn_line_ignored(tmp_path: Path, messages: MessageFactory) -> None:
    _record(tmp_path, messages, 5200)
    journaled = (tmp_path / "media.m4s").read_bytes()
    with (tmp_path / "media.m4s").open("ab") as file:
        file.write(b"\x00\x00\x10\x00moof half a part")  # the write the kill interrupted
    with (tmp_path / journal.JOURNAL_NAME).open("ab") as file:
        file.write(b'{"p":"seg2.m4s","d":1.')
    entries = journal.load(tmp_path)
    assert [e.name for e in entries] == ["seg0.m4s", "seg1.m4s", "seg2.m4s"]
    assert (tmp_path / "media.m4s").read_bytes() == journaled


def test_a_segment_whose_file_is_missing_or_short_is_left_out(tmp_path: Path, messages: MessageFactory) -> None:
    _record(tmp_path, messages, 6700)  # seg3 open with one part
    entries = journal.load(tmp_path)
    os.truncate(tmp_path / "media.m4s", entries[2].offset + entries[2].size - 10)  # seg2 short, seg3 gone
    assert [e.name for e in journal.load(tmp_path)] == ["seg0.m4s", "seg1.m4s"]
    (tmp_path / "media.m4s").unlink()
    assert journal.load(tmp_path) == []


def _old_layout(folder: Path, packager: HlsPackager, open_part_bytes: int) -> list[journal.RecordedSegment]:
    """A recording as recorders before issue 14 left it: a file per segment, journal lines without a file."""
    (folder / "init0.mp4").write_bytes(packager.get("init0.mp4") or b"")
    entries = []
    with (folder / journal.JOURNAL_NAME).open("ab") as lines:
        for msn in range(3):
            data = packager.get(f"seg{msn}.m4s") or b""
            if msn == 2:
                data = data[:open_part_bytes]  # the open segment at the kill, then a half-written part
            entry = journal.RecordedSegment(f"seg{msn}.m4s", 2.0, "init0.mp4", False, 1000.0 + 2 * msn, len(data))
            (folder / entry.name).write_bytes(data + (b"half" if msn == 2 else b""))
            lines.write(journal.segment_line(entry, complete=msn < 2))
            entries.append(entry)
    return entries


def test_a_recording_of_the_old_layout_is_finished_and_continued(tmp_path: Path, messages: MessageFactory) -> None:
    source = HlsPackager(clock=lambda: 1000.0)
    for message in messages(6500):
        source.push(message)
    old = _old_layout(tmp_path, source, 1000)
    recorder = HlsRecorder(tmp_path, writer=FileWriter())
    assert recorder.prefix == "r1-"
    assert (tmp_path / "seg2.m4s").stat().st_size == 1000  # the half-written part cut off
    packager = HlsPackager(clock=lambda: 2000.0)
    packager.add_listener(recorder)
    for message in messages(4000):
        packager.push(message)
    packager.end()
    text = recorder.playlist_path.read_text()
    assert re.findall(r"^seg\d\.m4s$", text, re.MULTILINE) == [e.name for e in old]  # whole files, no range
    assert text.count("#EXT-X-BYTERANGE") == 2
    new = journal.load(tmp_path)[3:]
    assert _listed(text) == [("r1-media.m4s", e.size, e.offset) for e in new]
    assert _stored(tmp_path, new[1]) == packager.get("seg1.m4s")


def test_resumed_recording_gets_new_names_and_a_discontinuity(tmp_path: Path, messages: MessageFactory) -> None:
    _record(tmp_path, messages, 5200)
    first = journal.load(tmp_path)
    before = _snapshot(tmp_path)
    packager = HlsPackager(clock=lambda: 2000.0)  # the republish, in a new process: MSNs start at 0 again
    recorder = HlsRecorder(tmp_path, writer=FileWriter())
    assert recorder.prefix == "r1-"
    packager.add_listener(recorder)
    for message in messages(4000):
        packager.push(message)
    packager.end()
    assert _snapshot(tmp_path).items() >= before.items()  # every earlier file as it was: same bytes, same mtime
    text = recorder.playlist_path.read_text()
    entries = journal.load(tmp_path)
    assert [e.name for e in entries] == [e.name for e in first] + ["r1-seg0.m4s", "r1-seg1.m4s"]
    assert [uri for uri, _, _ in _listed(text)] == ["media.m4s"] * len(first) + ["r1-media.m4s"] * 2
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert text.index("#EXT-X-DISCONTINUITY") < text.index('#EXT-X-MAP:URI="r1-init0.mp4"') < text.index("r1-media")
    assert _stored(tmp_path, entries[len(first)]) == packager.get("seg0.m4s")
    assert recorder.duration == pytest.approx(sum(e.duration for e in first) + 4.0, abs=0.05)
    assert HlsRecorder(tmp_path).prefix == "r2-"  # a second crash and resume would not collide either


def test_late_listener_writes_the_segment_it_joined_whole(tmp_path: Path, messages: MessageFactory) -> None:
    packager = HlsPackager(clock=lambda: 0.0)
    stream = messages(4000)
    for message in stream[: len(stream) * 3 // 8]:  # 1.5 s: the first segment is open, with parts made
        packager.push(message)
    recorder = HlsRecorder(tmp_path)
    packager.add_listener(recorder)
    for message in stream[len(stream) * 3 // 8 :]:
        packager.push(message)
    packager.end()
    entries = journal.load(tmp_path)
    assert [e.name for e in entries] == ["seg0.m4s", "seg1.m4s"]
    assert _stored(tmp_path, entries[0]) == packager.get("seg0.m4s")
    assert _stored(tmp_path, entries[1]) == packager.get("seg1.m4s")


def test_over_the_backlog_the_caller_waits_and_keeps_the_order(tmp_path: Path) -> None:
    writer = FileWriter(max_pending_bytes=8)
    target = tmp_path / "seg0.m4s"
    line = (tmp_path / "journal.jsonl", b"x\n")
    writer.submit(target, b"a" * 6, journal=line)
    for piece in (b"b" * 6, b"c" * 6, b"d" * 6):  # each beyond the backlog while the one before is queued
        writer.submit(target, piece, append=True, journal=line)
    assert writer.flush()
    assert target.read_bytes() == b"a" * 6 + b"b" * 6 + b"c" * 6 + b"d" * 6
    assert (tmp_path / "journal.jsonl").read_bytes() == b"x\n" * 4


def test_failed_write_gets_no_journal_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path, data: writer_module.Data) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer_module, "_append", broken)
    monkeypatch.setattr(writer_module._AppendFiles, "append", lambda self, path, data: broken(path, data))
    monkeypatch.setattr(writer_module, "_write_at", lambda fd, data, offset: broken(Path(), data))
    told: list[bool] = []
    writer = FileWriter()
    writer.submit(tmp_path / "seg0.m4s", b"x", append=True, journal=(tmp_path / "journal.jsonl", b"line\n"))
    writer.submit(tmp_path / "media.m4s", b"x", at=0, journal=(tmp_path / "journal.jsonl", b"line\n"), done=told.append)
    assert writer.flush()
    assert not (tmp_path / "journal.jsonl").exists()
    assert told == [False]


def test_resumed_real_recording_decodes_across_the_discontinuity(
    tmp_path: Path, ffmpeg_flv: dict[str, Path], ffprobe_bin: str, ffmpeg_bin: str
) -> None:
    media = read_flv_messages(ffmpeg_flv["no_bframes"])  # 4 s of real H.264 + AAC
    stream = LiveStream("crashed")
    packager = HlsPackager()
    packager.add_listener(HlsRecorder(tmp_path))
    stream.add_sink(packager)
    for message in media:
        stream.publish(message)  # no close: the process is gone with its open segment's last part
    resumed = LiveStream("resumed")
    packager = HlsPackager()
    recorder = HlsRecorder(tmp_path)
    packager.add_listener(recorder)
    resumed.add_sink(packager)
    for message in media:
        resumed.publish(message)
    resumed.close()
    argv = [ffprobe_bin, "-v", "error", "-show_entries", "format=duration", "-of", "json"]
    result = run_tool([*argv, str(recorder.playlist_path)], timeout=30)
    assert result.returncode == 0, result.stderr
    assert float(json.loads(result.stdout)["format"]["duration"]) == pytest.approx(recorder.duration, abs=0.1)
    assert 7.0 <= recorder.duration <= 8.05
    # Both parts as byte ranges of their media files, and every frame of them decodes.
    text = recorder.playlist_path.read_text()
    assert {uri for uri, _, _ in _listed(text)} == {"media.m4s", "r1-media.m4s"}
    assert len(_listed(text)) == text.count("#EXTINF:")
    decoded = run_tool([ffmpeg_bin, "-v", "error", "-i", str(recorder.playlist_path), "-f", "null", "-"], timeout=60)
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr

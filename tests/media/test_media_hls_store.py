"""The packager with its recorder as segment store (issue 14): older segments leave memory once written and are
served from the recording's media file with the same bytes and the same playlist."""

from __future__ import annotations

import re
from pathlib import Path

from retake.media.hls import HlsPackager, HlsRecorder
from retake.media.recording import FileWriter
from retake.streams.media_bridge import Playback
from tests.media.conftest import MessageFactory

_URI = re.compile(r'URI="([^"]+)"|^(seg\d+\.m4s)$', re.MULTILINE)


def _pair(
    folder: Path, messages: MessageFactory, ms: int, writer: FileWriter | None = None
) -> tuple[HlsPackager, HlsPackager]:
    plain, stored = HlsPackager(clock=lambda: 1000.0), HlsPackager(clock=lambda: 1000.0)
    recorder = HlsRecorder(folder, writer=writer)
    stored.add_listener(recorder)
    stored.serve_from(recorder)
    for message in messages(ms):
        plain.push(message)
        stored.push(message)
    return plain, stored


def test_older_segments_are_served_from_the_recording(tmp_path: Path, messages: MessageFactory) -> None:
    plain, stored = _pair(tmp_path, messages, 21_000)  # 10 complete segments, 9 kept, one open
    assert stored.render_playlist() == plain.render_playlist()
    names = {a or b for a, b in _URI.findall(plain.render_playlist())} | {f"seg{m}.m4s" for m in range(1, 10)}
    assert "seg1.m4s" in names and "part9_0.m4s" in names and "init0.mp4" in names
    assert {name: stored.get(name) for name in names} == {name: plain.get(name) for name in names}
    assert stored.get("seg0.m4s") is None  # out of the window and the retention, as without a store
    # The open segment and the last complete one stay in memory: ~2 of 10 segments' worth.
    assert plain.held_bytes > 4 * stored.held_bytes > 0
    # Parts of a released segment (the playlist lists parts of the last three target durations) come by range.
    assert stored.get("part7_0.m4s") == plain.get("part7_0.m4s") and stored.get("part7_3.m4s") == plain.get(
        "part7_3.m4s"
    )


async def test_fetch_reads_a_released_segment_off_the_loop(tmp_path: Path, messages: MessageFactory) -> None:
    plain, stored = _pair(tmp_path, messages, 21_000)
    assert await stored.fetch("seg2.m4s") == plain.get("seg2.m4s")
    assert await stored.fetch("part9_0.m4s") == plain.get("part9_0.m4s")  # the open segment: in memory
    (tmp_path / "media.m4s").unlink()  # the recording was deleted: not found, no error
    assert await stored.fetch("seg2.m4s") is None
    assert await stored.fetch("seg9.m4s") == plain.get("seg9.m4s")  # still in memory


class _Store:
    """A store that has written nothing yet, or vouches for the wrong size."""

    def __init__(self, size: int | None) -> None:
        self.size = size

    def stored(self, name: str) -> tuple[str, int, int] | None:
        return None if self.size is None else ("/nonexistent", 0, self.size)


def test_segments_the_store_does_not_hold_as_made_stay_in_memory(messages: MessageFactory) -> None:
    for store in (_Store(None), _Store(7)):
        plain, stored = HlsPackager(clock=lambda: 1000.0), HlsPackager(clock=lambda: 1000.0)
        stored.serve_from(store)
        for message in messages(21_000):
            plain.push(message)
            stored.push(message)
        assert stored.held_bytes == plain.held_bytes
        assert stored.get("seg2.m4s") == plain.get("seg2.m4s") is not None


def test_with_a_writer_segments_are_released_once_written(tmp_path: Path, messages: MessageFactory) -> None:
    writer = FileWriter()
    plain, stored = _pair(tmp_path, messages, 21_000, writer)
    assert writer.flush()
    for message in messages(2_000, start_ms=21_000, headers=False):  # one more segment: releases what is written
        plain.push(message)
        stored.push(message)
    assert plain.held_bytes > 3 * stored.held_bytes
    assert [stored.get(f"seg{m}.m4s") for m in range(2, 11)] == [plain.get(f"seg{m}.m4s") for m in range(2, 11)]


async def test_a_playback_serves_older_segments_from_its_recording(tmp_path: Path, messages: MessageFactory) -> None:
    playback = Playback(tmp_path, health=None)
    playback.begin("user-1", "session-1")
    stream = playback.live_stream("user-1")
    assert stream is not None and stream.hls is not None
    plain = HlsPackager()
    stream.add_sink(plain)  # the same repaired messages, no store
    for message in messages(21_000):
        stream.publish(message)
    assert playback.flush_recordings()
    for message in messages(2_000, start_ms=21_000, headers=False):
        stream.publish(message)
    assert plain.held_bytes > 3 * stream.hls.held_bytes
    assert await stream.hls.fetch("seg3.m4s") == plain.get("seg3.m4s") is not None
    assert await stream.hls.fetch("part10_0.m4s") == plain.get("part10_0.m4s") is not None
    playback.close_all()

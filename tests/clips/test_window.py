"""The pure parts of clips: reading the journal's tail, picking segments, the ffmpeg command (golden)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retake.clips.window import Segment, concat_input, parse_journal_tail, pick_segments, remux_argv


def line(kind: str, name: str, duration: float, init: str = "init0.mp4", disc: bool = False, **more: object) -> bytes:
    record = {kind: name, "d": duration, "i": init, "x": disc, "t": 0.0, "b": 10, **more}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def test_the_tail_names_complete_segments_only() -> None:
    tail = b'e":1}\n' + line("p", "seg0.m4s", 0.5) + line("s", "seg0.m4s", 2.0) + line("p", "seg1.m4s", 0.5)
    tail += line("s", "../x.m4s", 2.0) + b'{"s":"seg2.m4s","d":'  # a hostile name, a line being written
    assert parse_journal_tail(tail, cut_first=True) == [Segment("seg0.m4s", 2.0, "init0.mp4", False, size=10)]
    assert parse_journal_tail(line("s", "seg0.m4s", 2.0), cut_first=False) == [
        Segment("seg0.m4s", 2.0, "init0.mp4", False, size=10)
    ]


def test_the_tail_names_byte_ranges_of_the_media_file() -> None:
    tail = line("s", "seg0.m4s", 2.0, f="media.m4s", o=0) + line("s", "seg1.m4s", 2.0, f="media.m4s", o=10)
    tail += line("s", "seg2.m4s", 2.0, f="../etc/x", o=20) + line("s", "seg3.m4s", 2.0, f="media.m4s", o=-1)
    assert parse_journal_tail(tail, cut_first=False) == [
        Segment("seg0.m4s", 2.0, "init0.mp4", False, "media.m4s", 0, 10),
        Segment("seg1.m4s", 2.0, "init0.mp4", False, "media.m4s", 10, 10),
    ]  # a range of a file elsewhere, or at a negative offset, names nothing


def test_pick_covers_the_seconds_within_one_run() -> None:
    segs = [Segment(f"seg{i}.m4s", 2.0, "init0.mp4", False) for i in range(10)]
    assert [s.name for s in pick_segments(segs, 5)] == ["seg7.m4s", "seg8.m4s", "seg9.m4s"]
    assert len(pick_segments(segs, 120)) == 10
    reconnected = [*segs[:4], Segment("r1-seg0.m4s", 2.0, "r1-init0.mp4", True), *segs[5:6]]
    reconnected[-1] = Segment("r1-seg1.m4s", 2.0, "r1-init0.mp4", False)
    assert [s.name for s in pick_segments(reconnected, 30)] == ["r1-seg0.m4s", "r1-seg1.m4s"]
    broken = [*segs[:3], Segment("seg3.m4s", 2.0, "init0.mp4", True), *segs[4:6]]
    assert [s.name for s in pick_segments(broken, 30)] == ["seg3.m4s", "seg4.m4s", "seg5.m4s"]
    assert pick_segments([], 10) == []


def test_concat_input_and_golden_argv(tmp_path: Path) -> None:
    segs = [Segment("seg1.m4s", 2.0, "init0.mp4", False), Segment("seg2.m4s", 2.0, "init0.mp4", False)]
    source = concat_input(Path("/data/rec/s1"), segs)
    assert source == "concat:/data/rec/s1/init0.mp4|/data/rec/s1/seg1.m4s|/data/rec/s1/seg2.m4s"
    with pytest.raises(ValueError):
        concat_input(Path("/data/a|b"), segs)
    ranges = [Segment(f"seg{i}.m4s", 2.0, "init0.mp4", False, "media.m4s", 100 * i, 100) for i in (1, 2, 4)]
    resumed = Segment("r1-seg0.m4s", 2.0, "init0.mp4", False, "r1-media.m4s", 0, 50)
    assert concat_input(Path("/r"), [*ranges, resumed]) == (  # adjacent ranges of one file read as one
        "concat:/r/init0.mp4|subfile,,start,100,end,300,,:/r/media.m4s|subfile,,start,400,end,500,,:/r/media.m4s"
        "|subfile,,start,0,end,50,,:/r/r1-media.m4s"
    )
    argv = remux_argv("ffmpeg", source, 4.0, Path("/c/x.mp4.tmp"), Path("/c/x.jpg.tmp"))
    assert argv == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-i", source,
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-t", "4.000",
        "-movflags", "+faststart", "-f", "mp4", "/c/x.mp4.tmp",
        "-map", "0:v:0", "-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-q:v", "4", "-f", "image2",
        "/c/x.jpg.tmp",
    ]  # fmt: skip

"""Which recorded segments make a clip, and the ffmpeg command that remuxes them (pure functions, no I/O).

A live session's recorder (media/recording.py) appends each finished fMP4 segment to the media file in
``<data-dir>/recordings/<session>/`` and then a journal line naming it and its byte range (media/journal.py), so
the last ``MAX_SECONDS`` of a stream are already on disk: a clip is read from there, and costs no memory per
stream. Recordings of the older layout (a file per segment, lines without ``f``) are read as whole files.
Segments are cut at keyframes (media/cmaf.py), so a clip made of whole segments starts at a keyframe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MIN_SECONDS = 5
MAX_SECONDS = 120
# The journal's tail that names the last MAX_SECONDS: a line is ~130 bytes, one per part (0.5 s) and one per
# segment, so 120 s is ~45 KB; 512 KB leaves room for very short segments and long names.
JOURNAL_TAIL_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Segment:
    """A complete segment of a recording, as its journal names it."""

    name: str
    duration: float
    init_name: str
    discontinuity: bool
    file: str = ""  # the media file holding it at ``offset`` (``size`` bytes); "" when the file ``name`` is it
    offset: int = 0
    size: int = 0


def parse_journal_tail(tail: bytes, *, cut_first: bool) -> list[Segment]:
    """The complete segments (``{"s": …}`` lines) in a journal's tail, in order.

    ``cut_first``: the tail starts mid-file, so its first line may be a fragment. Part lines (``{"p": …}``)
    describe a segment still being written and are left out: only a whole segment is remuxed.
    """
    lines = tail.split(b"\n")
    if cut_first:
        lines = lines[1:]
    found: list[Segment] = []
    for line in lines:
        if not line.startswith(b'{"s"'):
            continue
        try:
            record = json.loads(line)
            segment = Segment(
                str(record["s"]), float(record["d"]), str(record["i"]), bool(record["x"]),
                str(record.get("f", "")), int(record.get("o", 0)), int(record.get("b", 0)),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # the line being written as we read
        if "/" in segment.name + segment.init_name + segment.file or segment.duration <= 0:
            continue
        if segment.file and (segment.offset < 0 or segment.size <= 0):
            continue
        found.append(segment)
    return found


def pick_segments(segments: Sequence[Segment], seconds: float) -> list[Segment]:
    """The fewest latest segments covering ``seconds``, all of one continuous run (same init segment, no
    discontinuity inside): a publisher that reconnected restarted its clock and maybe its codec settings."""
    picked: list[Segment] = []
    total = 0.0
    for segment in reversed(segments):
        if picked and segment.init_name != picked[-1].init_name:
            break
        picked.append(segment)
        total += segment.duration
        if total >= seconds or segment.discontinuity:
            break
    picked.reverse()
    return picked


def concat_input(directory: Path, segments: Sequence[Segment]) -> str:
    """ffmpeg's ``concat:`` protocol input: the init segment, then the media segments, read back to back as one
    fragmented MP4 (ISO/IEC 14496-12 §8.8: a movie header followed by movie fragments), with no copy on disk.
    A segment in a media file is its byte range there, through ffmpeg's ``subfile`` protocol (``end`` is
    exclusive); consecutive ranges of one file are read as one."""
    sources = [str(directory / segments[0].init_name)]
    run: tuple[str, int, int] | None = None  # (file, start, end) of the media file range being extended
    for segment in segments:
        if not segment.file:
            run = None
            sources.append(str(directory / segment.name))
            continue
        if run is not None and run[0] == segment.file and run[2] == segment.offset:
            run = (run[0], run[1], run[2] + segment.size)
            sources.pop()
        else:
            run = (segment.file, segment.offset, segment.offset + segment.size)
        sources.append(f"subfile,,start,{run[1]},end,{run[2]},,:{directory / run[0]}")
    if any("|" in source for source in sources):
        raise ValueError("a recording path contains '|', which the concat protocol cannot name")
    return "concat:" + "|".join(sources)


def remux_argv(ffmpeg: str, source: str, seconds: float, video_out: Path, thumbnail_out: Path) -> list[str]:
    """One ffmpeg run, two outputs: the clip (packets copied, no re-encode; ``+faststart`` moves the moov box
    before mdat so a browser plays while it downloads) and a JPEG of its first frame (a keyframe)."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-i", source,
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-t", f"{seconds:.3f}",
        "-movflags", "+faststart", "-f", "mp4", str(video_out),
        "-map", "0:v:0", "-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-q:v", "4", "-f", "image2",
        str(thumbnail_out),
    ]  # fmt: skip

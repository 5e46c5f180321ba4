"""Which recorded segments make a clip, and the ffmpeg command that remuxes them (pure functions, no I/O).

A live session's recorder (media/recording.py) writes each finished fMP4 segment to
``<data-dir>/recordings/<session>/`` and then a journal line naming it (media/journal.py), so the last
``MAX_SECONDS`` of a stream are already on disk: a clip is read from there, and costs no memory per stream.
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
            segment = Segment(str(record["s"]), float(record["d"]), str(record["i"]), bool(record["x"]))
        except (ValueError, KeyError, TypeError):
            continue  # the line being written as we read
        if "/" in segment.name or "/" in segment.init_name or segment.duration <= 0:
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
    fragmented MP4 (ISO/IEC 14496-12 §8.8: a movie header followed by movie fragments), with no copy on disk."""
    files = [directory / segments[0].init_name, *(directory / s.name for s in segments)]
    if any("|" in str(path) for path in files):
        raise ValueError("a recording path contains '|', which the concat protocol cannot name")
    return "concat:" + "|".join(str(path) for path in files)


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

"""The recording journal: what of a recording is safely on disk, so the recording outlives its process.

While a session records, every part of the open segment is appended to the recording's media file
(``media.m4s``: every segment back to back) and then one line is appended to ``journal.jsonl`` (``{"p": ...}``:
the segment so far, with its byte offset ``o`` in the file ``f``), and one more (``{"s": ...}``) when the
segment is complete. Recordings made before the media file existed have one file per segment and lines
without ``f``: they are still read (their segments are whole files). The line always follows the bytes it
describes (one writer thread does both, in order), so after a ``kill -9`` the journal names only media that
reached the disk: a node that restarts builds the VOD playlist from it, cutting a half-written part off the
end of the media file. Nothing is fsynced: a killed process loses nothing the kernel already holds, and a
power cut costing the last seconds is the accepted price of not syncing every half second per stream.

A recorder that opens a folder which already holds a recording (a republish after a restart) continues it
under a new name prefix (``r1-``, ``r2-``, …), so no earlier file is ever overwritten, and its first segment
starts with ``EXT-X-DISCONTINUITY`` (the encoder's clock and codec parameters start over) [RFC 8216 §4.3.2.3].
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
SUMMARY_NAME = "recording.json"  # {"duration_seconds": …, "segments": …}, written with the VOD playlist
_PREFIX = re.compile(r"^r(\d+)-")
_MEDIA_SUFFIXES = (".m4s", ".mp4", ".tmp")


@dataclass(frozen=True, slots=True)
class RecordedSegment:
    """One segment of a recording as the VOD playlist lists it (names are the files' names on disk)."""

    name: str
    duration: float
    init_name: str
    discontinuity: bool
    program_date_time: float  # POSIX seconds
    size: int = 0
    # The file holding the segment's bytes at ``offset``: the recording's media file. "" for the old layout, in
    # which the segment is the whole file ``name``.
    file: str = ""
    offset: int = 0

    @property
    def stored_name(self) -> str:
        return self.file or self.name


def segment_line(entry: RecordedSegment, *, complete: bool) -> bytes:
    """The journal line for ``entry``: complete (``s``), or the open segment's bytes so far (``p``)."""
    record = {
        "s" if complete else "p": entry.name,
        "d": round(entry.duration, 6),
        "i": entry.init_name,
        "x": entry.discontinuity,
        "t": entry.program_date_time,
        "b": entry.size,
    }
    if entry.file:
        record["f"] = entry.file
        record["o"] = entry.offset
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def _parse(line: bytes) -> tuple[bool, RecordedSegment] | None:
    try:
        record: dict[str, Any] = json.loads(line)
        complete = "s" in record
        entry = RecordedSegment(
            name=str(record["s" if complete else "p"]),
            duration=float(record["d"]),
            init_name=str(record["i"]),
            discontinuity=bool(record["x"]),
            program_date_time=float(record["t"]),
            size=int(record["b"]),
            file=str(record.get("f", "")),
            offset=int(record.get("o", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # the line the crash cut in half (only ever the last one)
    if "/" in entry.name + entry.init_name + entry.file or entry.size < 0 or entry.offset < 0:
        return None
    return complete, entry


def load(directory: Path) -> list[RecordedSegment]:
    """The segments the journal in ``directory`` vouches for, in recording order.

    A segment still open at the crash is kept with the parts its last ``p`` line names; bytes after them
    (a part being written when the process died) are cut off its file. A segment whose file or init file is
    missing or shorter than the journal says is left out rather than listed broken.
    """
    try:
        raw = (directory / JOURNAL_NAME).read_bytes()
    except FileNotFoundError:
        return []
    latest: dict[str, tuple[bool, RecordedSegment]] = {}  # insertion order = first appearance
    for line in raw.splitlines():
        parsed = _parse(line)
        if parsed is not None and not latest.get(parsed[1].name, (False,))[0]:
            latest[parsed[1].name] = parsed
    entries = []
    sizes: dict[str, int | None] = {}
    ends: dict[str, int] = {}  # media file -> the end of the last byte the journal vouches for in it
    for complete, entry in latest.values():
        stored = entry.stored_name
        if stored not in sizes:
            try:
                sizes[stored] = (directory / stored).stat().st_size
            except FileNotFoundError:
                sizes[stored] = None
        size, end = sizes[stored], entry.offset + entry.size
        if size is None:
            continue
        # A segment file of the old layout is exactly the segment; the media file holds later segments too.
        whole = complete and not entry.file
        if size < end or (whole and size != end) or not (directory / entry.init_name).is_file():
            log.warning("recording %s: %s is not as the journal says; left out", directory, entry.name)
            continue
        ends[stored] = max(ends.get(stored, 0), end)
        entries.append(entry)
    for stored, end in ends.items():
        if (sizes[stored] or 0) > end:
            os.truncate(directory / stored, end)  # a part half-written at the crash
    return entries


def next_prefix(directory: Path) -> str:
    """Names for a recorder opening ``directory``: none in an empty folder, else a prefix no file uses yet."""
    generations = [-1]
    for child in directory.iterdir():
        if child.name.endswith(_MEDIA_SUFFIXES):
            match = _PREFIX.match(child.name)
            generations.append(int(match.group(1)) if match else 0)
    newest = max(generations)
    return "" if newest < 0 else f"r{newest + 1}-"


def summary(entries: list[RecordedSegment]) -> bytes:
    total = sum(e.duration for e in entries)
    return json.dumps({"duration_seconds": round(total, 3), "segments": len(entries)}).encode("utf-8")


@functools.lru_cache(maxsize=4096)  # a finished recording never changes: read each summary once
def recorded_seconds(directory: str) -> float | None:
    """The media duration of the finished recording in ``directory`` (its VOD), or None if unknown."""
    try:
        value = json.loads((Path(directory) / SUMMARY_NAME).read_bytes())["duration_seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) else None

"""LL-HLS packager: fMP4 segments cut at keyframes, parts, a sliding window and blocking reload.

Tag order and limits follow RFC 8216bis (draft-pantos-hls-rfc8216bis, "[HLS2]"): EXT-X-PART-INF and
EXT-X-SERVER-CONTROL [§4.4.3.7–8], EXT-X-PART [§4.4.4.9], EXT-X-PRELOAD-HINT [§4.4.5.3], blocking playlist
reload [§6.2.5.2]. Resource names end in .mp4/.m4s so ffmpeg's ``extension_picky`` accepts them.

With a :class:`~retake.media.recording.SegmentStore` (the stream's recorder, :meth:`HlsPackager.serve_from`)
only the open segment and the last ``memory_segments`` complete ones keep their bytes in memory; older listed
and retained segments (and their parts) are read back from the recording's media file, off the event loop.
Nine complete segments of a 1.6 Mbit/s stream were ~3.7 MB per stream (issue 14, RSS goal 2 MiB).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from retake.av.headers import Tracks
from retake.av.message import MediaMessage

from .cmaf import CmafInit, CmafPart, CmafSegmenter
from .errors import PlaylistRequestError
from .fmp4 import styp
from .playlist import format_duration, format_pdt, media_type_for
from .recording import FinishedPart, FinishedSegment, HlsRecorder, SegmentListener, SegmentStore

__all__ = [
    "FinishedPart",
    "FinishedSegment",
    "HlsConfig",
    "HlsPackager",
    "HlsRecorder",
    "SegmentListener",
    "SegmentStore",
    "media_type_for",
]

_NAME = re.compile(r"^(?:init(?P<init>\d+)\.mp4|seg(?P<seg>\d+)\.m4s|part(?P<pmsn>\d+)_(?P<part>\d+)\.m4s)$")


@dataclass(frozen=True, slots=True)
class HlsConfig:
    target_duration: int = 2  # EXT-X-TARGETDURATION, whole seconds; segments are cut to stay within it
    # EXT-X-PART-INF:PART-TARGET, seconds. Parts end on frame boundaries, and FLV's millisecond timestamps make
    # 10 frames at 30 fps last 333 or 334 ms: 0.334 keeps them whole (6 parts per 2 s GOP) and within the target,
    # so PART-HOLD-BACK, where LL-HLS players sit, is 1.002 s (it was 1.5 s at 0.5 s parts; issue 14 item 7).
    part_target: float = 0.334
    window_segments: int = 6  # complete segments listed in the playlist
    retained_segments: int = 3  # extra segments still fetchable after they left the playlist
    part_hold_back_factor: float = 3.0  # PART-HOLD-BACK = factor × PART-TARGET (Apple wants ≥ 3)
    # With a segment store: complete segments whose bytes stay in memory (the live edge players fetch now);
    # older ones are read from the store once it holds them.
    memory_segments: int = 1

    @property
    def part_hold_back(self) -> float:
        return self.part_hold_back_factor * self.part_target

    @property
    def advance_part_limit(self) -> int:
        # [HLS2 §6.2.5.2]: 3 ÷ PART-TARGET when PART-TARGET < 1 s, else 3.
        return math.ceil(3 / self.part_target) if self.part_target < 1 else 3


@dataclass
class _Part:
    name: str
    data: bytes  # b"" once released: its segment is read from the store
    duration: float
    independent: bool
    size: int


@dataclass
class _Segment:
    msn: int
    init_version: int
    discontinuity: bool
    program_date_time: float
    parts: list[_Part] = field(default_factory=list)
    stored: tuple[str, int, int] | None = None  # (path, offset, size) in the store, once its bytes are released

    @property
    def name(self) -> str:
        return f"seg{self.msn}.m4s"

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)

    def chunks(self) -> tuple[bytes, ...]:
        # A segment is its parts back to back, behind a styp [ISO/IEC 14496-12 §8.16.2].
        return (_STYP, *(p.data for p in self.parts))

    def data(self) -> bytes:
        return b"".join(self.chunks())

    def size(self) -> int:
        return len(_STYP) + sum(p.size for p in self.parts)

    def part_range(self, index: int) -> tuple[str, int, int] | None:
        """Where part ``index`` is in the store (after the styp and the parts before it)."""
        if self.stored is None:
            return None
        path, offset, _ = self.stored
        start = offset + len(_STYP) + sum(p.size for p in self.parts[:index])
        return path, start, self.parts[index].size


_STYP = styp()


def _init_name(version: int) -> str:
    return f"init{version}.mp4"


def _read_range(path: str, offset: int, size: int) -> bytes | None:
    """``size`` bytes of ``path`` at ``offset``; None if the file is gone or shorter (a removed recording)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.pread(fd, size, offset)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == size else None


Found = bytes | tuple[str, int, int] | None  # in memory, where in the store, or nothing


class HlsPackager:
    """One stream's LL-HLS state. Feed repaired messages with :meth:`push` (it is a ``MediaSink``)."""

    def __init__(self, config: HlsConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or HlsConfig()
        self._clock = clock
        self._segmenter = CmafSegmenter(
            segment_target_ms=self.config.target_duration * 1000,
            part_target_ms=round(self.config.part_target * 1000),
        )
        self._inits: dict[int, bytes] = {}
        self._init: CmafInit | None = None
        self._segments: deque[_Segment] = deque()  # complete, oldest first
        self._open: _Segment | None = None
        self._completed_through = -1  # highest complete MSN
        self._dropped_discontinuities = 0
        self._target_duration = self.config.target_duration
        self._anchor: tuple[float, int] | None = None  # (wall clock, media ms) of the first message
        self._listeners: list[SegmentListener] = []
        # Made by the first blocking playlist reload that waits, dropped when set: a stream nobody watches over
        # LL-HLS makes no Event per part.
        self._changed: asyncio.Event | None = None
        self._ended = False
        self._store: SegmentStore | None = None

    def serve_from(self, store: SegmentStore) -> None:
        """Release older complete segments' bytes once ``store`` holds them (see the module's doc)."""
        self._store = store

    # -- input -------------------------------------------------------------------------------------

    def add_listener(self, listener: SegmentListener) -> None:
        """Announce inits already made and every later init/segment/end (e.g. an :class:`HlsRecorder`)."""
        self._listeners.append(listener)
        for version, data in self._inits.items():
            listener.on_init(_init_name(version), data)

    def share_tracks(self, tracks: Tracks) -> None:
        """Read the codec headers from ``tracks`` (a :class:`~retake.media.stream.LiveStream`'s, which
        parses each sequence header first) instead of parsing them again."""
        self._segmenter.tracks = tracks

    def push(self, message: MediaMessage) -> None:
        if self._ended:
            return
        if self._anchor is None and message.kind != "script":
            self._anchor = (self._clock(), message.timestamp_ms)
        for event in self._segmenter.push(message):
            self._on_event(event)

    def end(self) -> None:
        """The stream ended: close the last segment, add EXT-X-ENDLIST, release all waiters."""
        if self._ended:
            return
        for event in self._segmenter.flush():
            self._on_event(event)
        self._ended = True
        for listener in self._listeners:
            listener.on_end()
        self._notify()

    def _on_event(self, event: CmafInit | CmafPart) -> None:
        if isinstance(event, CmafInit):
            self._init = event
            self._inits[event.version] = event.data
            for listener in self._listeners:
                listener.on_init(_init_name(event.version), event.data)
            return
        segment = self._open
        if segment is None:
            previous = self._segments[-1] if self._segments else None
            anchor_wall, anchor_ms = self._anchor or (self._clock(), event.start_ms)
            segment = _Segment(
                msn=self._completed_through + 1,
                init_version=event.init.version,
                # New codec parameters or tracks need EXT-X-DISCONTINUITY [RFC 8216 §4.3.2.3].
                discontinuity=previous is not None and previous.init_version != event.init.version,
                program_date_time=anchor_wall + (event.start_ms - anchor_ms) / 1000,
            )
            self._open = segment
        index = len(segment.parts)
        segment.parts.append(
            _Part(f"part{segment.msn}_{index}.m4s", event.data, event.duration, event.independent, len(event.data))
        )
        if self._listeners:  # a recorder keeps the open segment on disk part by part (media/journal.py)
            part = FinishedPart(
                segment_name=segment.name,
                index=index,
                chunks=(_STYP, event.data) if index == 0 else (event.data,),
                duration=event.duration,
                init_name=_init_name(segment.init_version),
                discontinuity=segment.discontinuity,
                program_date_time=segment.program_date_time,
            )
            for listener in self._listeners:
                listener.on_part(part)
        if event.ends_segment:
            self._complete(segment)
        self._notify()

    def _complete(self, segment: _Segment) -> None:
        self._open = None
        self._segments.append(segment)
        self._completed_through = segment.msn
        # EXT-X-TARGETDURATION must bound every rounded EXTINF [§4.4.3.1]; a publisher whose GOP is longer
        # than the target forces longer segments, so the value grows (only then) rather than lie.
        self._target_duration = max(self._target_duration, int(segment.duration + 0.5))
        while len(self._segments) > self.config.window_segments + self.config.retained_segments:
            dropped = self._segments.popleft()
            self._dropped_discontinuities += dropped.discontinuity
        live_inits = {s.init_version for s in self._segments} | {self._init.version if self._init else -1}
        for version in [v for v in self._inits if v not in live_inits]:
            del self._inits[version]
        finished = FinishedSegment(
            msn=segment.msn,
            name=segment.name,
            chunks=segment.chunks(),
            duration=segment.duration,
            init_name=_init_name(segment.init_version),
            discontinuity=segment.discontinuity,
            program_date_time=segment.program_date_time,
        )
        for listener in self._listeners:
            listener.on_segment(finished)
        if self._store is not None:
            self._release(self._store)

    def _release(self, store: SegmentStore) -> None:
        # Every complete segment but the newest few, once the store has written it (the writer is ~50 ms
        # behind; one it has not written yet is released at a later segment's end).
        keep = self.config.memory_segments
        for segment in list(self._segments)[: max(0, len(self._segments) - keep)]:
            if segment.stored is not None:
                continue
            found = store.stored(segment.name)
            if found is None or found[2] != segment.size():
                continue  # not written yet (or not as we made it): keep serving it from memory
            segment.stored = found
            for part in segment.parts:
                part.data = b""

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    # -- state -------------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def ready(self) -> bool:
        """True once the playlist lists a complete segment (or the stream ended)."""
        return bool(self._segments) or self._ended

    @property
    def held_bytes(self) -> int:
        """Media bytes this packager holds in memory (its open and complete segments not released)."""
        held = [*self._segments, self._open] if self._open is not None else self._segments
        return sum(len(p.data) for s in held for p in s.parts)

    @property
    def codecs(self) -> str:
        return self._init.codecs if self._init else ""

    @property
    def last_msn(self) -> int:
        """MSN of the newest segment in the playlist (the open one if it has parts); −1 before any."""
        return self._open.msn if self._open is not None else self._completed_through

    def _listed(self) -> list[_Segment]:
        return list(self._segments)[-self.config.window_segments :]

    def _preload_hint(self) -> str:
        if self._open is not None:
            return f"part{self._open.msn}_{len(self._open.parts)}.m4s"
        return f"part{self._completed_through + 1}_0.m4s"

    # -- playlists ---------------------------------------------------------------------------------

    def render_playlist(self) -> str:
        """The media playlist [HLS2 §4.4; tag order as in §9.11]."""
        cfg = self.config
        listed = self._listed()
        first_msn = listed[0].msn if listed else self._completed_through + 1
        unlisted = list(self._segments)[: len(self._segments) - len(listed)]
        discontinuity_sequence = self._dropped_discontinuities + sum(s.discontinuity for s in unlisted)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:6",
            f"#EXT-X-TARGETDURATION:{self._target_duration}",
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={format_duration(cfg.part_hold_back)}",
            f"#EXT-X-PART-INF:PART-TARGET={format_duration(cfg.part_target)}",
            f"#EXT-X-MEDIA-SEQUENCE:{first_msn}",
        ]
        if discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        shown = listed + ([self._open] if self._open is not None else [])
        # Part tags only for the last three target durations [HLS2 §6.2.2]; older segments are whole.
        part_horizon = 3 * self._target_duration
        remaining = sum(s.duration for s in shown)
        current_init = None
        for segment in shown:
            remaining -= segment.duration
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.init_version != current_init:
                lines.append(f'#EXT-X-MAP:URI="{_init_name(segment.init_version)}"')
                current_init = segment.init_version
            # PROGRAM-DATE-TIME goes before the segment's first EXT-X-PART [HLS2 §4.4.4.9].
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(segment.program_date_time)}")
            if segment is self._open or remaining < part_horizon:
                for part in segment.parts:
                    attrs = f'DURATION={format_duration(part.duration)},URI="{part.name}"'
                    lines.append(f"#EXT-X-PART:{attrs}{',INDEPENDENT=YES' if part.independent else ''}")
            if segment is not self._open:
                lines.append(f"#EXTINF:{format_duration(segment.duration)},")
                lines.append(segment.name)
        if self._ended:
            lines.append("#EXT-X-ENDLIST")
        else:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self._preload_hint()}"')
        return "\n".join(lines) + "\n"

    def render_multivariant(self, media_playlist_uri: str = "index.m3u8") -> str:
        """A one-variant multivariant playlist (CODECS, RESOLUTION, peak BANDWIDTH) [HLS2 §4.4.6.2]."""
        peak = max((s.size() * 8 / s.duration for s in self._segments if s.duration > 0), default=1_000_000)
        attrs = [f"BANDWIDTH={math.ceil(peak)}"]
        if self._init is not None:
            attrs.append(f'CODECS="{self._init.codecs}"')
            if self._init.has_video:
                attrs.append(f"RESOLUTION={self._init.width}x{self._init.height}")
        return f"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:{','.join(attrs)}\n{media_playlist_uri}\n"

    # -- blocking reload ---------------------------------------------------------------------------

    def _find(self, msn: int) -> _Segment | None:
        if self._open is not None and self._open.msn == msn:
            return self._open
        for segment in self._segments:
            if segment.msn == msn:
                return segment
        return None

    def _available(self, msn: int, part: int | None) -> bool:
        if part is None:
            return msn <= self._completed_through
        if msn <= self._completed_through:
            segment = self._find(msn)
            if segment is None or part < len(segment.parts):
                return True
            return self._available(msn + 1, 0)  # past the last part of M means part 0 of M+1
        return self._open is not None and self._open.msn == msn and part < len(self._open.parts)

    def check_request(self, msn: int | None, part: int | None) -> None:
        """Raise :class:`PlaylistRequestError` (400) for directives that can never be satisfied."""
        if msn is None:
            if part is not None:
                raise PlaylistRequestError("_HLS_part requires _HLS_msn", 400)
            return
        if msn < 0 or (part is not None and part < 0):
            raise PlaylistRequestError("negative _HLS_msn/_HLS_part", 400)
        if self._ended:
            return
        last = self.last_msn
        if msn > last + 2:
            raise PlaylistRequestError(f"_HLS_msn={msn} is more than two segments ahead of {last}", 400)
        if part is not None:
            if self._open is not None and msn == self._open.msn:
                ahead = part - (len(self._open.parts) - 1)
            else:
                ahead = part + 1 if msn > self._completed_through else 0
            if ahead > self.config.advance_part_limit:
                raise PlaylistRequestError(f"_HLS_part={part} is too far ahead", 400)

    # The timeout is the protocol's 503 rule, not a mere cancellation, hence the parameter.
    async def wait_for(
        self,
        msn: int | None,
        part: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Block until segment ``msn`` (or its part ``part``) is listed [HLS2 §6.2.5.2].

        Returns at once without directives or once the stream ended. Raises PlaylistRequestError with
        status_hint 400 for impossible directives and 503 after ``timeout`` (default 3 × target duration).
        """
        self.check_request(msn, part)
        if msn is None or self._ended:
            return
        limit = 3 * self._target_duration if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                while not self._ended and not self._available(msn, part):
                    if self._changed is None:
                        self._changed = asyncio.Event()
                    await self._changed.wait()
        except TimeoutError:
            raise PlaylistRequestError("blocking playlist request timed out", 503) from None

    # -- resources ---------------------------------------------------------------------------------

    def _locate(self, name: str) -> Found:
        match = _NAME.match(name)
        if match is None:
            return None
        if match["init"] is not None:
            return self._inits.get(int(match["init"]))
        if match["seg"] is not None:
            msn = int(match["seg"])
            segment = self._find(msn)
            if segment is None or msn > self._completed_through:
                return None
            return segment.stored if segment.stored is not None else segment.data()
        segment = self._find(int(match["pmsn"]))
        index = int(match["part"])
        if segment is None or index >= len(segment.parts):
            return None
        return segment.part_range(index) if segment.stored is not None else segment.parts[index].data

    def get(self, name: str) -> bytes | None:
        """Bytes of ``initN.mp4``, ``segM.m4s`` or ``partM_N.m4s`` if available now, else None. A segment
        released to the store is read here, blocking: on an event loop use :meth:`fetch`."""
        found = self._locate(name)
        return _read_range(*found) if isinstance(found, tuple) else found

    async def fetch(self, name: str, timeout: float | None = None) -> bytes | None:  # noqa: ASYNC109
        """Like :meth:`get`, but a request for the preload-hinted part is held until it exists [§6.2.6], and
        one for a released segment is read from the store in a thread (a cold page cache may block)."""
        found = self._locate(name)
        if isinstance(found, tuple):
            return await asyncio.to_thread(_read_range, *found)
        if found is not None or self._ended or name != self._preload_hint():
            return found
        match = _NAME.match(name)
        if match is None or match["pmsn"] is None:
            return None
        try:
            await self.wait_for(int(match["pmsn"]), int(match["part"]), timeout)
        except PlaylistRequestError:
            return None
        return self.get(name)

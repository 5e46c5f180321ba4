"""Timestamp repair between the ingest and every output (FLV relay, fMP4/HLS).

Encoders promise per-track monotonic time, not a global order, so each track is checked against its own
last output (one shared variable garbles A/V: ossrs/srs#1001) while one shared offset keeps the two tracks
aligned (rebasing each track separately shifts A/V: eerimoq/moblin#516).

- small backward steps (jitter, non-monotonic DTS) are clamped to last + 1 ms; for video the composition
  time shrinks by the same amount so the presentation time stays put where it can;
- a large step back (publisher restarted at 0) or forward (encoder clock jump) re-anchors the shared
  offset so output time continues just after the latest output of either track;
- :meth:`TimestampRepair.mark_discontinuity` forces that re-anchor for the next media message (publisher
  take-over), because a restart close to the old position could otherwise pass as jitter;
- sequence headers and script data take the current output time and never move the clock;
- RTMP timestamps are 32-bit and wrap (every 49.7 days, or soon after a publisher that starts near 2^32): a
  media timestamp is taken as the nearest value, mod 2^32, to the previous one, so a wrap is a small step;
- a timeline that starts far from 0 (at or past 2^30 ms, where 2^31 overflows signed 32-bit fields
  downstream) is rebased to start at 0.
"""

from __future__ import annotations

from retake.av.message import MediaMessage

_DEFAULT_STEP_MS = {"audio": 23, "video": 33}
_WRAP = 1 << 32
_HALF_WRAP = 1 << 31
_REBASE_FROM = 1 << 30


def is_config_payload(message: MediaMessage) -> bool:
    """True for script data and AVC/AAC sequence headers / end-of-sequence (no media time of their own)."""
    payload = message.payload
    if message.kind == "script":
        return True
    if len(payload) < 2:
        return True
    if message.kind == "video":
        # FrameType 5 = info/command frame; AVCPacketType 0/2 = sequence header / end of sequence.
        return payload[0] >> 4 == 5 or (payload[0] & 0x0F == 7 and payload[1] != 1)
    return payload[0] >> 4 == 10 and payload[1] == 0


def _with_cts_shift(payload: bytes, shift: int) -> bytes:
    """Reduce an AVC NALU packet's CompositionTime by ``shift`` ms (never below 0) [FLV E.4.3.2]."""
    if len(payload) < 5 or payload[0] & 0x0F != 7 or payload[1] != 1:
        return payload
    cts = int.from_bytes(payload[2:5], "big")
    if cts & 0x800000 or cts == 0:
        return payload
    new_cts = max(cts - shift, 0)
    return payload[:2] + new_cts.to_bytes(3, "big") + payload[5:]


class TimestampRepair:
    """Per-stream repair state; feed every message in arrival order through :meth:`repair`.

    A plain class with ``__slots__`` (not a dataclass) so that ``timestamps.pxd`` can make it a typed
    extension type when compiled; the constructor takes the same public fields the dataclass took."""

    __slots__ = (
        "_last",
        "_offset",
        "_raw",
        "_reanchor",
        "_step",
        "_unwrapped",
        "discontinuities",
        "max_backward_ms",
        "max_forward_gap_ms",
    )

    def __init__(self, max_backward_ms: int = 3000, max_forward_gap_ms: int = 10_000, discontinuities: int = 0) -> None:
        # Backward steps up to max_backward_ms are jitter and clamped; beyond it the encoder restarted its
        # clock. Wide enough for ±500 ms (a step of -1 s): re-anchoring on jitter moved the timeline forward
        # each time and stretched the recording (issue 12).
        self.max_backward_ms = max_backward_ms
        self.max_forward_gap_ms = max_forward_gap_ms
        self.discontinuities = discontinuities
        self._offset: int | None = None
        self._last: dict[str, int] = {}
        self._step: dict[str, int] = {}
        self._reanchor = False
        self._raw: int | None = None  # the previous media timestamp as received (mod 2^32)
        self._unwrapped = 0  # ... and unwrapped

    def _unwrap(self, ts: int) -> int:
        if not 0 <= ts < _WRAP:
            return ts  # not a 32-bit RTMP value (negative starts are shifted below)
        if self._raw is None:
            self._raw, self._unwrapped = ts, ts
            return ts
        delta = (ts - self._raw + _HALF_WRAP) % _WRAP - _HALF_WRAP
        self._raw = ts
        self._unwrapped += delta
        return self._unwrapped

    def mark_discontinuity(self) -> None:
        """The next media message starts a new timeline (e.g. a new publisher took over the stream)."""
        if self._offset is not None:
            self._reanchor = True
            self._raw = None  # the new timeline is unrelated to the old one: no unwrapping across them

    @property
    def current_ms(self) -> int:
        """The latest output time of any track (0 before the first media message)."""
        return max(self._last.values(), default=0)

    def repair(self, message: MediaMessage) -> MediaMessage:
        ts = message.timestamp_ms
        if is_config_payload(message):
            out = self.current_ms if self._offset is not None else (0 if ts >= _REBASE_FROM else max(ts, 0))
            return message if out == ts else message.with_timestamp(out)
        kind = message.kind
        ts = self._unwrap(ts)
        if self._offset is None:
            self._offset = -ts if ts < 0 or ts >= _REBASE_FROM else 0
        candidate = ts + self._offset
        last = self._last.get(kind)
        floor = -1 if last is None else last  # output time never goes below 0
        jumped = candidate < floor - self.max_backward_ms or (
            last is not None and candidate > last + self.max_forward_gap_ms
        )
        payload = message.payload
        if self._reanchor or jumped:
            # Continue one typical frame after the newest output of either track.
            base = self.current_ms + self._step.get(kind, _DEFAULT_STEP_MS[kind])
            self._offset = base - ts
            candidate = base
            self._reanchor = False
            self.discontinuities += 1
        elif candidate <= floor:
            shift = floor + 1 - candidate
            candidate = floor + 1
            if kind == "video":
                payload = _with_cts_shift(payload, shift)
        elif last is not None and candidate - last <= 1000:
            self._step[kind] = candidate - last
        self._last[kind] = candidate
        if candidate == message.timestamp_ms and payload is message.payload:
            return message
        return MediaMessage(kind, candidate, payload)

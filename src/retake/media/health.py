"""Stream health: what an ingest sends, measured from the FLV tag bodies alone (no decoding).

:class:`StreamHealth` is sans-IO: it is fed every media message with the wall-clock time it arrived
(``observe``) and told when a publisher (re)connects (``publish_started``); ``report(now)`` gives a frozen
:class:`HealthReport`. The per-message cost is a handful of attribute updates: byte and frame counters of the
current second, one size comparison per frame. Sequence headers (rare) are parsed for codecs, resolution and
audio layout; everything else is judged by size.

Rates are counted in wall-clock seconds of arrival, not media time, so a publisher that stalls reads as a
bitrate falling to zero. The heuristics, and why (measured with ffmpeg/libx264 and ffmpeg's AAC encoder):

* **frozen** — the picture did not change for ``frozen_seconds``. When nothing moves, x264 codes inter
  frames as (nearly) all-skip: a few dozen to ~170 bytes at 720p, against ≥ 1.2 KB for moving 800 kb/s video.
  An inter frame counts as motion when it is larger than 1/16 of the last keyframe and than
  ``64 + macroblocks/16`` bytes, except the first after a keyframe (x264 spends it refining the keyframe:
  up to 6.5 % of a still keyframe's size, while moving 100 kb/s video has inter frames of ~12 %). A keyframe
  counts as motion when its size differs from the previous one by more than 25 % (a still picture's
  keyframes grow by up to ~22 % a GOP while rate control lowers the QP). A picture that changes only exactly
  at keyframes (a slideshow switching on GOP boundaries to images of similar complexity) is misread as
  frozen. Hashing keyframes is not enough: under rate control x264 re-encodes a still picture into different
  keyframe bytes every GOP (a looped 720p still image at 1500 kb/s gave 10 distinct keyframes out of 10, a
  flat grey picture cycled through 4), so identical hashes would miss most frozen streams.
* **black** — keyframes of a black (or any flat single-colour) picture compress to almost nothing: ~280 bytes
  at 720p against ≥ 5 KB for a real picture even at 100 kb/s. Black = every keyframe for ``black_seconds``
  is at most ``macroblocks/4`` bytes. A black picture is also frozen; only the black warning is given then.
* **silent** — ffmpeg's AAC encoder turns digital silence into 6–8 byte frames (stereo 128 kb/s; rarely 25),
  against ~370 for a tone and ~50 for a tone at -50 dB. Silent = no AAC frame over
  :data:`SILENT_FRAME_BYTES` for ``silent_seconds``. An encoder that pads to a constant bitrate is never
  reported silent (its silent frames are not small).
* **low bitrate** — audio + video payload averaged over the last ``low_bitrate_seconds`` full seconds below
  ``low_bitrate_kbps``, once the current publisher has been connected that long. Not warned of while the
  picture is frozen or black: a still picture needs few bits, and that warning names the cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from retake.av.aac import AudioSpecificConfig
from retake.av.avc import AvcDecoderConfigurationRecord
from retake.av.errors import AvError
from retake.av.headers import AudioHeader, Tracks, VideoHeader
from retake.av.message import MediaMessage

from .errors import MediaError

SILENT_FRAME_BYTES = 32  # an AAC tag body (2-byte FLV header included) at most this big carries silence
_DEFAULT_MACROBLOCKS = 3600  # 1280x720, until a sequence header says otherwise
_RATE_WINDOW = 10  # seconds of the frame-rate and 10 s bitrate windows
_ARRIVING_SECONDS = 2  # a track whose last frame is older than this is not "arriving" (no frozen/silent verdict)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Thresholds. The defaults: frozen/black after 10 s, silent after 15 s, under 300 kb/s for 30 s."""

    frozen_seconds: float = 10.0
    black_seconds: float = 10.0
    silent_seconds: float = 15.0
    low_bitrate_kbps: int = 300
    low_bitrate_seconds: int = 30


@dataclass(frozen=True, slots=True)
class HealthWarning:
    """One condition the publisher should fix; ``since`` is when it was first met (Unix time)."""

    kind: str  # stream_frozen | stream_black | stream_silent | low_bitrate
    reason: str
    since: float


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A snapshot of one live stream. ``None`` fields are not known (yet): no such track, or under 1 s."""

    video_codec: str | None  # "h264"
    audio_codec: str | None  # "aac"
    codecs: str  # RFC 6381, e.g. "avc1.64001f,mp4a.40.2"
    width: int | None
    height: int | None
    frame_rate: float | None  # video frames per second over the last 10 s
    audio_sample_rate: int | None
    audio_channels: int | None
    bitrate_kbps_1s: int | None  # audio + video payload, last full second
    bitrate_kbps_10s: int | None  # audio + video payload, last 10 full seconds
    video_bitrate_kbps_10s: int | None
    audio_bitrate_kbps_10s: int | None
    keyframe_interval_seconds: float | None  # media time between the last two keyframes
    frozen: bool
    black: bool
    silent: bool
    low_bitrate: bool
    publishes: int  # publisher connections of this session on this node
    reconnects: int  # publishes after the first
    warnings: tuple[HealthWarning, ...]


class StreamHealth:
    """The meter of one stream's session; see the module docstring for what is measured and how."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self._ring_size = max(_RATE_WINDOW, self.config.low_bitrate_seconds) + 2
        size = self._ring_size
        # per second of arrival: [second, video bytes, audio bytes, video frames, audio frames]
        self._ring_sec = [-1] * size
        self._ring_vb = [0] * size
        self._ring_ab = [0] * size
        self._ring_vf = [0] * size
        self._ring_af = [0] * size
        self._sec = -1  # the second being counted now
        self._sec_end = float("-inf")  # when it ends (a float compare per message, no int())
        self._first_sec = -1  # the first second anything arrived (a partial second, never averaged)
        self._vb = self._ab = self._vf = self._af = 0
        self.publishes = 0
        self._publish_at = 0.0
        self._low_since: float | None = None
        # codecs
        self.tracks: Tracks | None = None  # the stream's parsed codec headers, when fed from a LiveStream
        self._video: AvcDecoderConfigurationRecord | None = None
        self._audio: AudioSpecificConfig | None = None
        self._width: int | None = None
        self._height: int | None = None
        self._motion_floor = 64 + _DEFAULT_MACROBLOCKS // 16
        self._black_bytes = _DEFAULT_MACROBLOCKS // 4
        # picture and sound
        self._key_bytes = 0
        self._key_ts: int | None = None
        self._key_interval_ms: int | None = None
        self._motion_bytes = self._motion_floor
        self._after_key = False
        self._motion_at = 0.0
        self._keys_since_motion = 0
        self._black_since: float | None = None
        self._sound_at = 0.0

    # -- input ----------------------------------------------------------------------------------------

    def publish_started(self, now: float) -> None:
        """A publisher connected (the first, or a reconnect): its picture and sound are judged afresh."""
        self.publishes += 1
        self._publish_at = now
        self._motion_at = now
        self._sound_at = now
        self._keys_since_motion = 0
        self._black_since = None
        self._key_ts = None
        self._key_bytes = 0
        self._low_since = None

    def observe(self, message: MediaMessage, now: float) -> None:
        """One repaired media message (an FLV tag body) that arrived at ``now`` (Unix time, seconds)."""
        if now >= self._sec_end:  # a clock stepping back keeps counting into the current second
            self._advance(int(now))
        payload = message.payload
        size = len(payload)
        kind = message.kind
        if kind == "video":
            self._vb += size
            if payload[1] != 1:  # not an AVC NALU: a sequence header (or end of sequence)
                if payload[1] == 0:
                    self._on_video_config(payload)
                return
            self._vf += 1
            if payload[0] >> 4 in (1, 4):  # key / generated key frame
                self._on_keyframe(size, message.timestamp_ms, now)
            elif self._after_key:
                self._after_key = False  # the frame after a keyframe mostly refines it (x264): not judged
            elif size > self._motion_bytes:
                self._motion_at = now
                self._keys_since_motion = 0
        elif kind == "audio":
            self._ab += size
            if payload[1] != 1:  # AAC sequence header
                self._on_audio_config(payload)
                return
            self._af += 1
            if size > SILENT_FRAME_BYTES:
                self._sound_at = now

    def _on_keyframe(self, size: int, timestamp_ms: int, now: float) -> None:
        previous = self._key_bytes
        if previous and abs(size - previous) * 4 > previous:
            self._motion_at = now
            self._keys_since_motion = 0
        else:
            self._keys_since_motion += 1
        if self._key_ts is not None:
            self._key_interval_ms = timestamp_ms - self._key_ts
        self._key_ts = timestamp_ms
        self._key_bytes = size
        self._motion_bytes = max(size >> 4, self._motion_floor)
        self._after_key = True
        if size > self._black_bytes:
            self._black_since = None
        elif self._black_since is None:
            self._black_since = now

    def _on_video_config(self, payload: bytes) -> None:
        # The stream's shared tracks parsed this header just before pushing it (retake.av.headers): read it there.
        shared = self.tracks.video if self.tracks is not None else None
        try:
            header = shared if shared is not None and shared.payload == payload else VideoHeader.parse(payload)
        except (AvError, MediaError, IndexError, ValueError):
            return  # the stream itself validated it; a header we cannot read only leaves the size unknown
        self._video = header.record
        sps = header.sps
        self._width, self._height = sps.width, sps.height
        macroblocks = max(1, ((sps.width + 15) // 16) * ((sps.height + 15) // 16))
        self._motion_floor = 64 + macroblocks // 16
        self._black_bytes = macroblocks // 4

    def _on_audio_config(self, payload: bytes) -> None:
        shared = self.tracks.audio if self.tracks is not None else None
        try:
            header = shared if shared is not None and shared.payload == payload else AudioHeader.parse(payload)
        except (AvError, MediaError, IndexError, ValueError):
            return
        self._audio = header.config

    def _advance(self, second: int) -> None:
        """Close the counted second(s); once a second, so the low-bitrate state is kept here."""
        if self._sec >= 0 and second > self._sec:
            self._store(self._sec, self._vb, self._ab, self._vf, self._af)
            for gap in range(max(self._sec + 1, second - self._ring_size), second):
                self._store(gap, 0, 0, 0, 0)  # nothing arrived in those seconds
        elif self._sec < 0:
            self._first_sec = second
        self._sec = second
        self._sec_end = second + 1.0
        self._vb = self._ab = self._vf = self._af = 0
        self._update_low_bitrate(second)

    def _store(self, second: int, vb: int, ab: int, vf: int, af: int) -> None:
        i = second % self._ring_size
        self._ring_sec[i] = second
        self._ring_vb[i], self._ring_ab[i], self._ring_vf[i], self._ring_af[i] = vb, ab, vf, af

    def _update_low_bitrate(self, second: int) -> None:
        window = self.config.low_bitrate_seconds
        if self.publishes == 0 or second - window <= int(self._publish_at):
            self._low_since = None  # not connected for a whole window yet
            return
        video, audio, _, _ = self._sums(second, window)
        if (video + audio) * 8 < self.config.low_bitrate_kbps * 1000 * window:
            if self._low_since is None:
                self._low_since = float(second)
        else:
            self._low_since = None

    def _sums(self, second: int, window: int) -> tuple[int, int, int, int]:
        """Video bytes, audio bytes, video frames, audio frames of the full seconds [second-window, second)."""
        vb = ab = vf = af = 0
        for s in range(second - window, second):
            i = s % self._ring_size
            if self._ring_sec[i] == s:
                vb += self._ring_vb[i]
                ab += self._ring_ab[i]
                vf += self._ring_vf[i]
                af += self._ring_af[i]
        return vb, ab, vf, af

    # -- output ---------------------------------------------------------------------------------------

    def report(self, now: float) -> HealthReport:
        """The stream's health at ``now`` (time moves the windows on even when no media arrives)."""
        second = int(now)
        if 0 <= self._sec < second:
            self._advance(second)
        full = min(_RATE_WINDOW, second - self._first_sec - 1) if self._first_sec >= 0 else 0
        vb, ab, vf, _ = self._sums(second, full) if full > 0 else (0, 0, 0, 0)
        last_vb, last_ab, last_vf, last_af = self._sums(second, 1)
        video_arriving = bool(self._vf or last_vf)
        audio_arriving = bool(self._af or last_af)
        if full <= 0:
            video_arriving = audio_arriving = False  # under a second of media: too early to judge
        cfg = self.config
        still_for = now - self._motion_at
        black = video_arriving and self._black_since is not None and now - self._black_since >= cfg.black_seconds
        frozen = video_arriving and self._keys_since_motion >= 2 and still_for >= cfg.frozen_seconds
        silent = audio_arriving and now - self._sound_at >= cfg.silent_seconds
        # A still picture needs few bits: its low bitrate is the frozen/black warning's, not the upload's.
        warnings = self._warnings(
            now, frozen=frozen and not black, black=black, silent=silent, low=self._low_since is not None and not frozen
        )
        has_video, has_audio = self._video is not None, self._audio is not None
        return HealthReport(
            video_codec="h264" if has_video else None,
            audio_codec="aac" if has_audio else None,
            codecs=",".join(c.codec_string for c in (self._video, self._audio) if c is not None),
            width=self._width,
            height=self._height,
            frame_rate=round(vf / full, 2) if full > 0 and has_video else None,
            audio_sample_rate=self._audio.output_sample_rate if self._audio else None,
            audio_channels=self._audio.channels if self._audio else None,
            bitrate_kbps_1s=_kbps(last_vb + last_ab, 1) if full > 0 else None,
            bitrate_kbps_10s=_kbps(vb + ab, full) if full > 0 else None,
            video_bitrate_kbps_10s=_kbps(vb, full) if full > 0 and has_video else None,
            audio_bitrate_kbps_10s=_kbps(ab, full) if full > 0 and has_audio else None,
            keyframe_interval_seconds=self._key_interval_ms / 1000 if self._key_interval_ms is not None else None,
            frozen=frozen,
            black=black,
            silent=silent,
            low_bitrate=self._low_since is not None,
            publishes=self.publishes,
            reconnects=max(0, self.publishes - 1),
            warnings=warnings,
        )

    def _warnings(self, now: float, *, frozen: bool, black: bool, silent: bool, low: bool) -> tuple[HealthWarning, ...]:
        cfg = self.config
        out: list[HealthWarning] = []
        if black and self._black_since is not None:
            out.append(
                HealthWarning(
                    "stream_black",
                    f"the picture has been black (or one flat colour) for {now - self._black_since:.0f} s: "
                    "check the capture source",
                    self._black_since + cfg.black_seconds,
                )
            )
        if frozen:
            out.append(
                HealthWarning(
                    "stream_frozen",
                    f"the picture has not changed for {now - self._motion_at:.0f} s: "
                    "check that the capture source is still updating",
                    self._motion_at + cfg.frozen_seconds,
                )
            )
        if silent:
            out.append(
                HealthWarning(
                    "stream_silent",
                    f"the audio has been silent for {now - self._sound_at:.0f} s",
                    self._sound_at + cfg.silent_seconds,
                )
            )
        if low and self._low_since is not None:
            out.append(
                HealthWarning(
                    "low_bitrate",
                    f"the stream's bitrate has been below {cfg.low_bitrate_kbps} kb/s for "
                    f"{cfg.low_bitrate_seconds} s: raise the encoder's bitrate or check the upload",
                    self._low_since,
                )
            )
        return tuple(out)


class HealthSink:
    """Feeds a :class:`StreamHealth` from a ``LiveStream`` as one of its sinks, stamping arrival times."""

    __slots__ = ("_clock", "meter")

    def __init__(self, meter: StreamHealth, clock: Callable[[], float]) -> None:
        self.meter = meter
        self._clock = clock

    def share_tracks(self, tracks: Tracks) -> None:
        self.meter.tracks = tracks

    def push(self, message: MediaMessage) -> None:
        self.meter.observe(message, self._clock())

    def end(self) -> None:
        return None  # the meter keeps its last state; the playback forgets it with the session


def _kbps(byte_count: int, seconds: int) -> int:
    return round(byte_count * 8 / 1000 / seconds)

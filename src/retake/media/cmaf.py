"""FLV messages → CMAF parts and segments (the timing half of the HLS packager).

Segments start at keyframes [RFC 8216bis §6.2.1]; parts are frame-aligned and never longer than the part
target [§4.4.4.9]. Timing is integer only and keeps the encoder's DTS and composition time (rebuilding DTS
from PTS broke B-frames in mediamtx#989); video runs at 90 kHz, audio at its sample rate, counting 1024 (or
960 / 2048 with SBR) samples per AAC frame from an anchor that is re-set only when it drifts more than a
frame from the millisecond stamps [media notes §3.4].
"""

from __future__ import annotations

from dataclasses import dataclass

from retake.av.aac import AudioSpecificConfig
from retake.av.headers import AudioHeader, Tracks, VideoHeader
from retake.av.message import MediaMessage

from .errors import FlvError
from .flv import (
    AAC_SEQUENCE_HEADER,
    AVC_NALU,
    AVC_SEQUENCE_HEADER,
    FRAME_GENERATED_KEY,
    FRAME_KEY,
    audio_packet_type,
    video_header,
)
from .fmp4 import (
    AUDIO_TRACK_ID,
    VIDEO_TRACK_ID,
    AudioTrack,
    Sample,
    TrackFragment,
    VideoTrack,
    init_segment,
    media_fragment,
)

_MS_TO_90K = 90
_DEFAULT_FRAME_MS = 33


@dataclass(frozen=True, slots=True)
class CmafInit:
    """One init segment; ``version`` grows whenever the tracks or codec configuration change."""

    version: int
    data: bytes
    codecs: str
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class CmafPart:
    """One moof+mdat. ``ends_segment`` is set on the last part of a segment."""

    data: bytes
    start_ms: int
    duration: float  # seconds, measured on the track that drives the cuts (video if present)
    independent: bool
    ends_segment: bool
    init: CmafInit


class _OpenPart:
    """The part being filled. A plain class with ``__slots__`` (not a dataclass) so that ``cmaf.pxd`` can make
    it a typed extension type when compiled."""

    __slots__ = ("audio", "audio_base", "audio_samples", "independent", "start_ms", "video", "video_base")

    def __init__(self, start_ms: int | None = None, independent: bool = False) -> None:
        self.start_ms = start_ms  # decode time of the first video sample (or audio, without video)
        self.video: list[Sample] = []
        self.audio: list[Sample] = []
        self.video_base: int | None = None
        self.audio_base: int | None = None
        self.independent = independent
        self.audio_samples = 0  # duration in audio samples (audio-only streams)

    def empty(self) -> bool:
        return not self.video and not self.audio


class _PendingVideo:
    """The newest video frame, held until the next one gives its duration (a plain class, as _OpenPart)."""

    __slots__ = ("cts_ms", "data", "dts_ms", "is_key")

    def __init__(self, dts_ms: int, cts_ms: int, data: bytes, is_key: bool) -> None:
        self.dts_ms = dts_ms
        self.cts_ms = cts_ms
        self.data = data
        self.is_key = is_key


class CmafSegmenter:
    """Feed repaired messages with :meth:`push`; collect :class:`CmafInit` / :class:`CmafPart` events.

    Codec headers come from ``tracks`` (:class:`retake.av.headers.Tracks`): shared with the stream's FLV
    fan-out, which has parsed a sequence header by the time it reaches here, or the segmenter's own.
    """

    def __init__(self, segment_target_ms: int = 2000, part_target_ms: int = 334, tracks: Tracks | None = None) -> None:
        if part_target_ms <= 0 or segment_target_ms < part_target_ms:
            raise ValueError("need 0 < part target <= segment target")
        self.segment_target_ms = segment_target_ms
        self.part_target_ms = part_target_ms
        self.tracks = tracks or Tracks()
        self._video: VideoHeader | None = None  # the newest headers taken: the next init segment is made of them
        self._audio: AudioHeader | None = None
        self._audio_config: AudioSpecificConfig | None = None  # self._audio.config, read per audio frame
        self._config_changed = False
        self._init: CmafInit | None = None
        self._sequence = 0
        self._part = _OpenPart()
        self._segment_start_ms: int | None = None
        self._last_gop_ms = 0
        self._last_key_ms: int | None = None
        self._pending: _PendingVideo | None = None
        self._frame_ms = _DEFAULT_FRAME_MS
        self._audio_next: int | None = None  # next audio decode time, in audio samples

    @property
    def init(self) -> CmafInit | None:
        return self._init

    def push(self, message: MediaMessage) -> list[CmafInit | CmafPart]:
        if message.kind == "video":
            return self._push_video(message)
        if message.kind == "audio":
            return self._push_audio(message)
        return []

    def flush(self) -> list[CmafInit | CmafPart]:
        """End of stream: emit what is buffered as the final part of the final segment."""
        out: list[CmafInit | CmafPart] = []
        if self._pending is not None:
            end_ms = self._pending.dts_ms + self._frame_ms
            self._advance(end_ms, out)
            self._close_part(end_ms, ends_segment=True, out=out)
        elif not self._part.empty():
            self._close_part(None, ends_segment=True, out=out)
        return out

    # -- configuration ---------------------------------------------------------------------------

    def _new_init(self) -> CmafInit:
        video_header, audio_header = self._video, self._audio
        video = VideoTrack(video_header.record, sps=video_header.sps) if video_header is not None else None
        audio = AudioTrack(audio_header.config) if audio_header is not None else None
        width = height = 0
        if video_header is not None:
            width, height = video_header.sps.width, video_header.sps.height
        codecs = ",".join(h.codec_string for h in (video_header, audio_header) if h is not None)
        version = 0 if self._init is None else self._init.version + 1
        self._config_changed = False
        return CmafInit(
            version=version,
            data=init_segment(video, audio),
            codecs=codecs,
            has_video=video is not None,
            has_audio=audio is not None,
            width=width,
            height=height,
        )

    # -- video -----------------------------------------------------------------------------------

    def _push_video(self, message: MediaMessage) -> list[CmafInit | CmafPart]:
        payload = message.payload
        frame_type, packet_type = video_header(payload)  # no tag body object per frame: this runs ~30 times/s
        if packet_type == AVC_SEQUENCE_HEADER:
            header = self.tracks.update_video(payload)  # parsed already when the tracks are shared
            if header is not self._video:
                self._video = header
                self._config_changed = True
            return []
        if packet_type != AVC_NALU or self._video is None:
            return []
        out: list[CmafInit | CmafPart] = []
        t = message.timestamp_ms
        key = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
        if self._segment_start_ms is None and self._pending is None and not key:
            return out  # the first segment must start decodable, at a keyframe
        if self._pending is not None:
            if t <= self._pending.dts_ms:
                t = self._pending.dts_ms + 1  # repaired input is monotonic; stay safe anyway
            self._frame_ms = min(t - self._pending.dts_ms, 1000)
            self._advance(t, out)
        if key:
            if self._should_cut(t):
                self._close_part(t, ends_segment=True, out=out)
            if self._last_key_ms is not None and t > self._last_key_ms:
                self._last_gop_ms = t - self._last_key_ms
            self._last_key_ms = t
            if self._init is None or (self._config_changed and self._segment_start_ms is None):
                self._init = self._new_init()
                out.append(self._init)
        if self._segment_start_ms is None:
            self._segment_start_ms = t
        # CompositionTime, SI24 [FLV E.4.3.2]
        cts = (payload[2] << 16) | (payload[3] << 8) | payload[4]
        if cts & 0x800000:
            cts -= 1 << 24
        self._pending = _PendingVideo(t, cts, payload[5:], key)
        return out

    def _advance(self, t: int, out: list[CmafInit | CmafPart]) -> None:
        """The pending frame turns out to end at ``t``: put it in the open part, or start a new part with it
        when it would push the open one past PART-TARGET [RFC 8216bis §4.4.4.9]. Waiting for the next frame
        costs one frame of latency but keeps every part within the target without guessing durations."""
        pending = self._pending
        if pending is None:
            return
        start = self._part.start_ms
        if self._part.video and start is not None and t - start > self.part_target_ms:
            self._close_part(pending.dts_ms, ends_segment=False, out=out)
        self._commit_pending(t)

    def _should_cut(self, t: int) -> bool:
        if self._segment_start_ms is None or self._part.empty():
            return False
        if self._config_changed:
            return True  # a new init must start a new segment (with EXT-X-DISCONTINUITY + EXT-X-MAP)
        elapsed = t - self._segment_start_ms
        # Cut once another GOP would make the rounded EXTINF exceed the target [RFC 8216bis §4.4.3.1].
        return elapsed >= self.segment_target_ms or elapsed + self._last_gop_ms >= self.segment_target_ms + 500

    def _commit_pending(self, next_dts_ms: int) -> None:
        pending = self._pending
        if pending is None:
            return
        if not self._part.video:
            self._part.start_ms = pending.dts_ms
            self._part.independent = pending.is_key
            self._part.video_base = pending.dts_ms * _MS_TO_90K
        duration = (next_dts_ms - pending.dts_ms) * _MS_TO_90K
        self._part.video.append(Sample(pending.data, duration, pending.is_key, pending.cts_ms * _MS_TO_90K))
        self._pending = None

    # -- audio -----------------------------------------------------------------------------------

    def _push_audio(self, message: MediaMessage) -> list[CmafInit | CmafPart]:
        payload = message.payload
        if audio_packet_type(payload) == AAC_SEQUENCE_HEADER:
            header = self.tracks.update_audio(payload)
            if header is not self._audio:
                self._audio = header
                self._audio_config = header.config
                self._config_changed = True
                self._audio_next = None
            return []
        config = self._audio_config
        if config is None:
            return []
        if self._video is not None:
            # A/V stream: audio joins the open part; nothing before the first keyframe.
            if self._init is None or not self._init.has_audio or self._segment_start_ms is None:
                return []
            self._add_audio(payload[2:], message.timestamp_ms, config)
            return []
        return self._push_audio_only(payload[2:], message.timestamp_ms, config)

    def _add_audio(self, data: bytes, ts_ms: int, config: AudioSpecificConfig) -> None:
        rate = config.output_sample_rate
        frame = config.samples_per_frame
        actual = (ts_ms * rate + 500) // 1000
        if self._audio_next is None or abs(actual - self._audio_next) > frame:
            self._audio_next = actual
        part = self._part
        if part.audio_base is None:
            part.audio_base = self._audio_next
        part.audio.append(Sample(data, frame))
        part.audio_samples += frame
        self._audio_next += frame

    def _push_audio_only(self, data: bytes, t: int, config: AudioSpecificConfig) -> list[CmafInit | CmafPart]:
        out: list[CmafInit | CmafPart] = []
        rate = config.output_sample_rate
        frame = config.samples_per_frame
        if not self._part.empty():
            if self._config_changed or self._should_cut(t):
                self._close_part(None, ends_segment=True, out=out)
            elif (self._part.audio_samples + frame) * 1000 > self.part_target_ms * rate:
                self._close_part(None, ends_segment=False, out=out)  # keep parts within PART-TARGET
        if self._init is None or (self._config_changed and self._part.empty()):
            self._init = self._new_init()
            out.append(self._init)
        if self._part.empty():
            self._part = _OpenPart(start_ms=t, independent=True)
            if self._segment_start_ms is None:
                self._segment_start_ms = t
        self._last_gop_ms = frame * 1000 // rate
        self._add_audio(data, t, config)
        return out

    # -- parts -----------------------------------------------------------------------------------

    def _close_part(self, end_ms: int | None, ends_segment: bool, out: list[CmafInit | CmafPart]) -> None:
        part = self._part
        init = self._init
        if part.empty() or init is None:
            return
        fragments = []
        if part.video and part.video_base is not None:
            fragments.append(TrackFragment(VIDEO_TRACK_ID, part.video_base, part.video, True))
        if part.audio and part.audio_base is not None:
            fragments.append(TrackFragment(AUDIO_TRACK_ID, part.audio_base, part.audio, False))
        if end_ms is not None and part.start_ms is not None and init.has_video:
            duration = (end_ms - part.start_ms) / 1000
        elif self._audio_config is not None:
            duration = part.audio_samples / self._audio_config.output_sample_rate
        else:
            raise FlvError("cannot time a part without video end time or audio configuration")
        self._sequence += 1
        data = media_fragment(self._sequence, fragments)
        out.append(CmafPart(data, part.start_ms or 0, duration, part.independent, ends_segment, init))
        self._part = _OpenPart()
        if ends_segment:
            self._segment_start_ms = None

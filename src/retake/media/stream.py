"""Live FLV fan-out: one :class:`LiveStream` per stream id, many :class:`Subscriber` viewers.

The publisher path never awaits a viewer (mediamtx#5162, Red5/red5-server#479): ``publish()`` is
synchronous, and each viewer has a bounded queue. A viewer that falls behind is skipped ahead to the next
keyframe, and one that keeps falling behind is dropped, so memory never grows with slow readers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple, Protocol

from retake.av import amf0
from retake.av.errors import AmfError
from retake.av.headers import Tracks
from retake.av.message import MediaMessage

from .flv import (
    AAC_SEQUENCE_HEADER,
    AVC_NALU,
    AVC_SEQUENCE_HEADER,
    FRAME_GENERATED_KEY,
    FRAME_KEY,
    TAG_AUDIO,
    TAG_HEADER_SIZE,
    TAG_SCRIPT,
    TAG_VIDEO,
    FlvTag,
    ScriptData,
    audio_packet_type,
    stream_start,
    tag_bytes,
    video_header,
)
from .hls import HlsPackager
from .timestamps import TimestampRepair

_SKIP_WINDOW_MS = 60_000


class MediaSink(Protocol):
    """Something fed with every repaired message of a stream, e.g. :class:`retake.media.hls.HlsPackager`."""

    def share_tracks(self, tracks: Tracks) -> None:
        """Called when the sink is added: the stream's codec headers, parsed before each sequence header
        is pushed, for the sink to read rather than parse its own."""

    def push(self, message: MediaMessage) -> None: ...

    def end(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Memory bounds of one stream and of each of its viewers."""

    gop_max_bytes: int = 4 * 1024 * 1024  # GOP cache; past it the cache waits for the next keyframe
    gop_max_duration_ms: int = 10_000
    queue_max_bytes: int = 8 * 1024 * 1024  # per viewer, bootstrap included (keep > gop_max_bytes)
    queue_max_lag_ms: int = 4_000  # media time queued behind the live edge (bootstrap GOP not counted)
    max_skips: int = 3  # skip-aheads tolerated within a minute before the viewer is dropped


class Keyframe(NamedTuple):
    """The newest cached AVC keyframe and what it takes to decode it alone (preview images)."""

    avc_config: bytes  # AVCDecoderConfigurationRecord [ISO/IEC 14496-15 §5.3.3.1], the decoder's extradata
    data: bytes  # the keyframe's length-prefixed NAL units: its AVC tag body after the 5-byte header
    timestamp_ms: int


class _Tag:
    """One frame as an FLV tag, shared by every viewer's queue and the GOP cache.

    Serialized on first use, and from then on only the serialized tag is kept (it contains the body): a stream
    nobody watches over FLV (LL-HLS viewers, or none) never pays for its tags, and one that is watched holds
    each frame once. A plain class, not a dataclass: one is made per frame, ~73 times a second per stream.
    """

    __slots__ = ("_body", "_data", "is_sync", "size", "tag_type", "timestamp_ms")

    def __init__(self, tag_type: int, timestamp_ms: int, body: bytes, is_sync: bool) -> None:
        self.tag_type = tag_type
        self.timestamp_ms = timestamp_ms
        self.is_sync = is_sync  # a point a new or skipped viewer may start at
        self.size = TAG_HEADER_SIZE + len(body) + 4  # bytes of the serialized tag [FLV E.3]
        self._body: bytes | None = body
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """The serialized FLV tag."""
        data = self._data
        if data is None:
            assert self._body is not None
            data = self._data = tag_bytes(self.tag_type, self.timestamp_ms, self._body)
            self._body = None
        return data

    @property
    def body(self) -> bytes:
        """The FLV tag body (a copy once the tag was serialized)."""
        if self._body is not None:
            return self._body
        assert self._data is not None
        return self._data[TAG_HEADER_SIZE:-4]


class Subscriber:
    """One viewer: ``async for chunk in subscriber`` yields FLV bytes (header first) until the end.

    Iteration ends when the stream closes (after the queue drains), when :meth:`close` is called, or when
    the viewer is dropped for being too slow (``close_reason`` says which).
    """

    def __init__(self, stream: LiveStream, limits: StreamLimits) -> None:
        self._stream = stream
        self._limits = limits
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._oldest_ts: int | None = None
        self._started = False
        self._waiting_for_sync = False
        self._skips: deque[int] = deque()
        self._event = asyncio.Event()
        self._closed = False
        self._close_reason: str | None = None
        self.skipped_bytes = 0

    # -- viewer side -------------------------------------------------------------------------------

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> bytes:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        chunk = b"".join(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._oldest_ts = None
        return chunk

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, reason: str = "viewer closed") -> None:
        """Stop receiving; pending bytes are discarded. Safe to call more than once."""
        self._queue.clear()
        self._queued_bytes = 0
        self._finish(reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def started(self) -> bool:
        """True once the FLV header and bootstrap went into the queue."""
        return self._started

    # -- stream side --------------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            self._stream._forget(self)
        self._event.set()

    def _bootstrap(self, head: list[bytes], gop: list[_Tag]) -> None:
        self._started = True
        for data in head:
            self._append(data, None)
        for tag in gop:
            self._append(tag.data, None)  # the cached GOP is not counted as lag

    def _append(self, data: bytes, timestamp_ms: int | None) -> None:
        self._queue.append(data)
        self._queued_bytes += len(data)
        if timestamp_ms is not None and self._oldest_ts is None:
            self._oldest_ts = timestamp_ms
        self._event.set()

    def _offer_config(self, data: bytes) -> None:
        """Sequence headers and metadata are always delivered (they are small and needed to decode)."""
        if self._started and not self._closed:
            self._append(data, None)

    def _offer(self, tag: _Tag) -> None:
        if not self._started or self._closed:
            return
        if self._waiting_for_sync:
            if not tag.is_sync:
                self.skipped_bytes += tag.size
                return
            self._waiting_for_sync = False
        lag = tag.timestamp_ms - self._oldest_ts if self._oldest_ts is not None else 0
        if self._queued_bytes + tag.size > self._limits.queue_max_bytes or lag > self._limits.queue_max_lag_ms:
            self._skip_ahead(tag)
            return
        self._append(tag.data, tag.timestamp_ms)

    def _skip_ahead(self, tag: _Tag) -> None:
        # Too far behind: drop what is queued and resume at the next keyframe (never mid-GOP, which would
        # not decode); too many skips in a minute means the viewer cannot keep up at all.
        self._skips.append(tag.timestamp_ms)
        while self._skips and self._skips[0] < tag.timestamp_ms - _SKIP_WINDOW_MS:
            self._skips.popleft()
        self.skipped_bytes += self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        self._oldest_ts = None
        if len(self._skips) > self._limits.max_skips:
            self._finish("too slow")
            return
        self._waiting_for_sync = True
        self._stream._resend_config(self)
        self._offer(tag)


class LiveStream:
    """Per-stream state: codec headers (:attr:`tracks`, shared with the sinks), metadata, the latest GOP,
    viewers and sinks.

    Feed it the ingest's messages in order with :meth:`publish`; timestamps are repaired first, and sinks
    (HLS packager, recorders) receive the repaired messages.
    """

    def __init__(
        self,
        stream_id: str,
        limits: StreamLimits | None = None,
        repair: TimestampRepair | None = None,
        hls: HlsPackager | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.limits = limits or StreamLimits()
        self.repair = repair or TimestampRepair()
        self.tracks = Tracks()  # sequence headers, parsed once here; their payloads are re-stamped per use
        self.metadata: dict[str, amf0.AmfValue] = {}
        self._gop: list[_Tag] = []
        self._gop_bytes = 0
        self._subscribers: list[Subscriber] = []
        self._sinks: list[MediaSink] = []
        self._closed = False
        self.hls = hls  # the stream's LL-HLS packager, if any (also registered as a sink)
        if hls is not None:
            self.add_sink(hls)

    # -- properties --------------------------------------------------------------------------------

    @property
    def has_video(self) -> bool:
        return self.tracks.video is not None or "videocodecid" in self.metadata

    @property
    def has_audio(self) -> bool:
        return self.tracks.audio is not None or "audiocodecid" in self.metadata

    @property
    def codecs(self) -> str:
        """RFC 6381 CODECS list of the known tracks, e.g. ``avc1.64001f,mp4a.40.2``."""
        return self.tracks.codecs

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def gop_bytes(self) -> int:
        return self._gop_bytes

    def latest_keyframe(self) -> Keyframe | None:
        """The keyframe that starts the cached GOP, with the current AVC config; None without one."""
        video = self.tracks.video
        if video is None or not self._gop:
            return None
        first = self._gop[0]
        if first.tag_type != TAG_VIDEO:  # audio-only GOPs start with an AAC frame
            return None
        # [FLV E.4.3.1] the 5-byte AVC video header, then the length-prefixed NAL units
        return Keyframe(video.avc_config, first.body[5:], first.timestamp_ms)

    # -- publisher side ----------------------------------------------------------------------------

    def begin_publish(self) -> None:
        """A (new) publisher starts: its timeline continues after ours and its GOPs start fresh."""
        self.repair.mark_discontinuity()
        self._gop = []
        self._gop_bytes = 0

    def publish(self, message: MediaMessage) -> None:
        """Take one ingest message. Raises :class:`~.errors.UnsupportedCodecError` / ``FlvError``."""
        if self._closed:
            return
        message = self.repair.repair(message)
        kind = message.kind
        if kind == "video":
            self._on_video(message)
        elif kind == "audio":
            self._on_audio(message)
        else:
            self._on_script(message)
        for sink in self._sinks:
            sink.push(message)

    def _on_script(self, message: MediaMessage) -> None:
        try:
            script = ScriptData.parse(message.payload)
        except AmfError:
            return  # metadata is advisory; a broken one must not end the stream
        if script.name != "onMetaData" or not isinstance(script.value, dict):
            return
        self.metadata = dict(script.value)
        data = self._metadata_tag()
        for sub in self._subscribers:
            sub._offer_config(data)

    def _on_video(self, message: MediaMessage) -> None:
        frame_type, packet_type = video_header(message.payload)
        if packet_type == AVC_NALU:
            key = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
            self._on_frame(TAG_VIDEO, message, is_sync=key, resets_gop=key)
        elif packet_type == AVC_SEQUENCE_HEADER:
            self.tracks.update_video(message.payload)  # the one parse of this header (SPS included)
            self._broadcast_config(message)
        # end-of-sequence and command frames are not relayed

    def _on_audio(self, message: MediaMessage) -> None:
        if audio_packet_type(message.payload) == AAC_SEQUENCE_HEADER:
            self.tracks.update_audio(message.payload)
            self._broadcast_config(message)
        else:
            # Without video every AAC frame is a random access point.
            video = self.tracks.video is not None or "videocodecid" in self.metadata
            self._on_frame(TAG_AUDIO, message, is_sync=not video, resets_gop=not video)

    def _broadcast_config(self, message: MediaMessage) -> None:
        data = FlvTag.from_message(message).serialize()
        for sub in self._subscribers:
            sub._offer_config(data)

    def _on_frame(self, tag_type: int, message: MediaMessage, is_sync: bool, resets_gop: bool) -> None:
        timestamp_ms = message.timestamp_ms
        tag = _Tag(tag_type, timestamp_ms, message.payload, is_sync)
        size = tag.size
        if resets_gop:
            self._gop = [tag]
            self._gop_bytes = size
        elif self._gop:
            span = timestamp_ms - self._gop[0].timestamp_ms
            if self._gop_bytes + size > self.limits.gop_max_bytes or span > self.limits.gop_max_duration_ms:
                self._gop = []  # too long to cache: new viewers wait for the next keyframe
                self._gop_bytes = 0
            else:
                self._gop.append(tag)
                self._gop_bytes += size
        if self._subscribers:
            for sub in list(self._subscribers):
                if sub.started:
                    sub._offer(tag)
                elif is_sync and self._gop:
                    sub._bootstrap(self._bootstrap_head(), self._gop)

    # -- viewer side -------------------------------------------------------------------------------

    def subscribe(self) -> Subscriber:
        """A new viewer; it starts at once from the cached GOP, or at the next keyframe."""
        sub = Subscriber(self, self.limits)
        if self._closed:
            sub._finish("stream ended")
            return sub
        self._subscribers.append(sub)
        if self._gop:
            sub._bootstrap(self._bootstrap_head(), self._gop)
        return sub

    def _bootstrap_head(self) -> list[bytes]:
        # FLV header with the real tracks → onMetaData → AVC then AAC sequence headers, stamped with the
        # first GOP tag's time so per-track time never goes backwards on this connection [media notes §2].
        start = self._gop[0].timestamp_ms if self._gop else self.repair.current_ms
        head = [stream_start(has_audio=self.has_audio, has_video=self.has_video)]
        if self.metadata:
            head.append(self._metadata_tag())
        head += self._config_tags(start)
        return head

    def _config_tags(self, timestamp_ms: int) -> list[bytes]:
        tags = []
        video, audio = self.tracks.video, self.tracks.audio
        if video is not None:
            tags.append(FlvTag(9, timestamp_ms, video.payload).serialize())
        if audio is not None:
            tags.append(FlvTag(8, timestamp_ms, audio.payload).serialize())
        return tags

    def _resend_config(self, sub: Subscriber) -> None:
        # Queued sequence headers may have been dropped by a skip; the viewer needs the current ones.
        for data in self._config_tags(self.repair.current_ms):
            sub._append(data, None)

    def _metadata_tag(self) -> bytes:
        # hasAudio/hasVideo are honoured by mpegts.js and keep MSE from waiting for an absent track. Time 0:
        # ffmpeg's FLV demuxer treats onMetaData at any other time as a subtitle stream (flvdec.c).
        value = amf0.EcmaArray(self.metadata)
        value["hasAudio"] = self.has_audio
        value["hasVideo"] = self.has_video
        return FlvTag(TAG_SCRIPT, 0, ScriptData("onMetaData", value).serialize()).serialize()

    def _forget(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    # -- sinks and lifecycle -----------------------------------------------------------------------

    def add_sink(self, sink: MediaSink) -> Callable[[], None]:
        """Feed ``sink`` every later message; returns a function that detaches it."""
        sink.share_tracks(self.tracks)
        self._sinks.append(sink)

        def remove() -> None:
            if sink in self._sinks:
                self._sinks.remove(sink)

        return remove

    def close(self, reason: str = "stream ended") -> None:
        """End the stream: viewers drain their queues and stop; sinks get ``end()``."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscribers):
            sub._finish(reason)
        for sink in self._sinks:
            sink.end()
        self._gop = []
        self._gop_bytes = 0


class StreamRegistry:
    """stream_id → :class:`LiveStream`, for the live streams of this process."""

    def __init__(self, factory: Callable[[str], LiveStream] | None = None) -> None:
        self._factory = factory or LiveStream
        self._streams: dict[str, LiveStream] = {}

    def get(self, stream_id: str) -> LiveStream | None:
        return self._streams.get(stream_id)

    def open(self, stream_id: str) -> LiveStream:
        """The live stream for ``stream_id``, created on first use."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.closed:
            stream = self._factory(stream_id)
            self._streams[stream_id] = stream
        return stream

    def close(self, stream_id: str, reason: str = "stream ended") -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.close(reason)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._streams))

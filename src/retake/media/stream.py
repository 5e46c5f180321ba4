"""Live FLV fan-out: one :class:`LiveStream` per stream id, many :class:`Subscriber` viewers.

The publisher path never awaits a viewer (mediamtx#5162, Red5/red5-server#479): ``publish()`` is
synchronous, and each viewer has a bounded queue. A viewer that falls behind is skipped ahead to the next
keyframe, and one that keeps falling behind is dropped, so memory never grows with slow readers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType

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
    TAG_SCRIPT,
    TAG_VIDEO,
    FlvTag,
    ScriptData,
    audio_packet_type,
    stream_start,
    video_header,
)
from .hls import HlsPackager
from .stream_types import Keyframe, MediaSink, StreamLimits
from .timestamps import TimestampRepair
from .viewer_io import DirectWriter, SharedTag

__all__ = ["Keyframe", "LiveStream", "MediaSink", "StreamLimits", "StreamRegistry", "Subscriber"]

_SKIP_WINDOW_MS = 60_000
RESUME_BELOW_BYTES = 64 * 1024  # a skipped direct viewer resumes once its connection took all but this


class Subscriber:
    """One viewer: ``async for chunk in subscriber`` yields FLV bytes (header first) until the end.

    Iteration ends when the stream closes (after the queue drains), when :meth:`close` is called, or when
    the viewer is dropped for being too slow (``close_reason`` says which). After :meth:`attach` the bytes go
    to a :class:`~.viewer_io.DirectWriter` instead; the connection's write buffer is then the queue.
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
        self._writer: DirectWriter | None = None
        self._skip_ts = 0  # direct: media time of the last skip (or keyframe passed while still behind)
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

    def attach(self, writer: DirectWriter) -> None:
        """Write to ``writer`` from the publish path from now on; what is queued (the bootstrap) goes first."""
        self._writer = writer
        if self._queue:
            data = b"".join(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._oldest_ts = None
            self._write(data)

    async def wait_closed(self) -> None:
        """Until the stream ends, :meth:`close` is called or the viewer is dropped (for attached viewers)."""
        while not self._closed:
            self._event.clear()
            await self._event.wait()

    def _write(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        if not writer.write(writer.framing(data)):
            self._finish("viewer left")

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

    def _bootstrap(self, head: list[bytes], gop: list[SharedTag]) -> None:
        self._started = True
        if self._writer is not None:
            self._write(b"".join([*head, *(tag.data for tag in gop)]))
            return
        for data in head:
            self._append(data, None)
        for tag in gop:
            self._append(tag.data, None)  # the cached GOP is not counted as lag

    def _append(self, data: bytes, timestamp_ms: int | None) -> None:
        if self._writer is not None:
            self._write(data)
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        if timestamp_ms is not None and self._oldest_ts is None:
            self._oldest_ts = timestamp_ms
        self._event.set()

    def _offer_config(self, data: bytes) -> None:
        """Sequence headers and metadata are always delivered (they are small and needed to decode)."""
        if self._started and not self._closed:
            self._append(data, None)

    def _offer(self, tag: SharedTag) -> None:
        if not self._started or self._closed:
            return
        if self._writer is not None:
            self._offer_direct(tag, self._writer)
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

    def _offer_direct(self, tag: SharedTag, writer: DirectWriter) -> None:
        # The lag is media time written since the connection last had nothing buffered; the bytes already
        # written stay (whole tags: the stream stays valid), so a skipped viewer waits for a keyframe that
        # comes when it has taken nearly all of them, and one that stays stuck counts a skip per lag period.
        buffered = writer.buffered()
        if not buffered and not self._waiting_for_sync:  # the connection keeps up: the common case, kept short
            self._oldest_ts = tag.timestamp_ms
            if not writer.write(tag.framed(writer.framing)):
                self._finish("viewer left")
            return
        if self._waiting_for_sync:
            if not tag.is_sync or buffered > RESUME_BELOW_BYTES:
                self.skipped_bytes += tag.size
                if tag.is_sync and tag.timestamp_ms - self._skip_ts > self._limits.queue_max_lag_ms:
                    self._count_skip(tag.timestamp_ms)
                return
            self._waiting_for_sync = False
            self._oldest_ts = tag.timestamp_ms
        elif self._oldest_ts is None:
            self._oldest_ts = tag.timestamp_ms
        lag = tag.timestamp_ms - self._oldest_ts
        if buffered + tag.size > self._limits.queue_max_bytes or lag > self._limits.queue_max_lag_ms:
            self.skipped_bytes += tag.size
            self._waiting_for_sync = True
            self._count_skip(tag.timestamp_ms)
        elif not writer.write(tag.framed(writer.framing)):
            self._finish("viewer left")

    def _count_skip(self, timestamp_ms: int) -> bool:
        """Note a skip; too many in a minute means the viewer cannot keep up at all (it is dropped)."""
        self._skip_ts = timestamp_ms
        self._skips.append(timestamp_ms)
        while self._skips and self._skips[0] < timestamp_ms - _SKIP_WINDOW_MS:
            self._skips.popleft()
        if len(self._skips) > self._limits.max_skips:
            self._finish("too slow")
            return True
        return False

    def _skip_ahead(self, tag: SharedTag) -> None:
        # Too far behind: drop what is queued and resume at the next keyframe (never mid-GOP, which would
        # not decode).
        self.skipped_bytes += self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        self._oldest_ts = None
        if self._count_skip(tag.timestamp_ms):
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
        self._gop: list[SharedTag] = []
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
        tag = SharedTag(tag_type, timestamp_ms, message.payload, is_sync)
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
                if sub._started:
                    sub._offer(tag)
                elif is_sync and self._gop:
                    sub._bootstrap(self._bootstrap_head(), self._gop)
            tag.drop_framed()

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
